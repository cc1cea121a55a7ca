"""MIME header parameters: Content-Type parameters and Content-Disposition (RFC 6266, 2231, 5987).

Parsing follows what aiohttp's ``parse_content_disposition`` and ``content_disposition_filename``
give for well-formed headers (``filename*`` wins over ``filename``, ``name*0``/``name*1``
continuations are joined, quoted values lose backslash escapes and leading slashes); a malformed
header gives ``(None, {})`` with a :class:`BadContentDispositionHeader` warning, a single bad
parameter is dropped with a :class:`BadContentDispositionParam` warning. Quoted values are read
as quoted strings, so a ``;`` inside quotes needs no special case.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from urllib.parse import unquote

__all__ = (
    "BadContentDispositionHeader",
    "BadContentDispositionParam",
    "content_disposition_filename",
    "parse_content_disposition",
    "parse_content_type",
)


class BadContentDispositionHeader(RuntimeWarning):
    """A Content-Disposition header that could not be parsed at all."""


class BadContentDispositionParam(RuntimeWarning):
    """A Content-Disposition parameter that was dropped."""


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_ESCAPE = re.compile(r"\\([\x00-\x7f])")
_CONTINUATION = re.compile(r"[^*]*\*(\d+)\*?")
_OWS = " \t"


def _is_token(value: str) -> bool:
    return _TOKEN.fullmatch(value) is not None


def _unescape(value: str) -> str:
    return _ESCAPE.sub(r"\1", value)


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """``'Multipart/Form-Data; boundary="a b"'`` -> ``('multipart/form-data', {...})``.

    Parameter names are lower-cased; quoted values are unquoted (a ``;`` may appear inside).
    """
    fulltype, _, rest = value.partition(";")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        eq = rest.find("=", pos)
        semi = rest.find(";", pos)
        if eq < 0 or (0 <= semi < eq):  # a parameter without a value: skip it
            if semi < 0:
                break
            pos = semi + 1
            continue
        key = rest[pos:eq].strip(_OWS).lower()
        start = eq + 1
        while start < len(rest) and rest[start] in _OWS:
            start += 1
        quoted = _QUOTED.match(rest, start)
        if quoted:
            val = _unescape(quoted.group(1))
            end = rest.find(";", quoted.end())
        else:
            end = rest.find(";", start)
            val = rest[start : end if end >= 0 else len(rest)].strip(' \t"')
        if key:
            params.setdefault(key, val)
        if end < 0:
            break
        pos = end + 1
    return fulltype.strip(_OWS).lower(), params


def parse_content_disposition(header: str | None) -> tuple[str | None, dict[str, str]]:
    """Split a Content-Disposition header into its (lower-cased) type and parameters.

    Extended parameters (``filename*=UTF-8''caf%C3%A9``) are decoded; continuations
    (``name*0``, ``name*1*``) are kept raw for :func:`content_disposition_filename` to join.
    """
    if not header:
        return None, {}
    disptype, sep, rest = header.partition(";")
    disptype = disptype.strip(_OWS)
    if not _is_token(disptype):
        warnings.warn(BadContentDispositionHeader(header), stacklevel=2)
        return None, {}
    if not sep:
        return disptype.lower(), {}
    params: dict[str, str] = {}
    size = len(rest)
    pos = 0
    while True:
        while pos < size and rest[pos] in _OWS:
            pos += 1
        if pos >= size or rest[pos] == ";":  # an empty item (";;" or a trailing ";")
            warnings.warn(BadContentDispositionHeader(header), stacklevel=2)
            if pos >= size:
                break
            pos += 1
            continue
        eq = rest.find("=", pos)
        semi = rest.find(";", pos)
        if eq < 0 or (0 <= semi < eq):  # an item without "="
            warnings.warn(BadContentDispositionHeader(header), stacklevel=2)
            return None, {}
        key = rest[pos:eq].strip(_OWS).lower()
        start = eq + 1
        while start < size and rest[start] in _OWS:
            start += 1
        quoted = _QUOTED.match(rest, start)
        if quoted:
            end = quoted.end()
            while end < size and rest[end] in _OWS:
                end += 1
            if end < size and rest[end] != ";":  # text after the closing quote
                warnings.warn(BadContentDispositionHeader(header), stacklevel=2)
                return None, {}
            raw = quoted.group(0)
        else:
            end = semi if semi >= 0 else size
            raw = rest[start:end].strip(_OWS)
        if key in params:
            warnings.warn(BadContentDispositionHeader(header), stacklevel=2)
            return None, {}
        value = _param_value(key, raw, quoted is not None)
        if value is _MALFORMED:
            warnings.warn(BadContentDispositionHeader(header), stacklevel=2)
            return None, {}
        if value is None:
            warnings.warn(BadContentDispositionParam(f"{key}={raw}"), stacklevel=2)
        else:
            params[key] = value
        if end >= size:
            break
        pos = end + 1
    return disptype.lower(), params


_MALFORMED = "\x00malformed"


def _param_value(key: str, raw: str, quoted: bool) -> str | None:
    """The value of one parameter; None to drop the parameter, ``_MALFORMED`` to drop all."""
    if not _is_token(key):
        return None
    if _CONTINUATION.fullmatch(key):
        if quoted:
            return _unescape(raw[1:-1])
        return raw if _is_token(raw) else None
    if key.endswith("*"):
        if quoted or not _is_token(raw) or raw.count("'") != 2:
            return None
        charset, _, encoded = raw.split("'", 2)
        try:
            return unquote(encoded, charset or "utf-8", "strict")
        except (LookupError, UnicodeDecodeError):
            return None
    if quoted:
        return _unescape(raw[1:-1].lstrip("\\/"))
    return raw if _is_token(raw) else _MALFORMED


def content_disposition_filename(params: Mapping[str, str], name: str = "filename") -> str | None:
    """The value of ``name`` among parsed parameters: ``name*``, else ``name``, else the joined
    RFC 2231 continuations ``name*0``, ``name*1``... (decoded when the first one is extended)."""
    if not params:
        return None
    extended = f"{name}*"
    if extended in params:
        return params[extended]
    if name in params:
        return params[name]
    pieces: dict[int, tuple[str, str]] = {}
    for key, value in params.items():
        if key.startswith(extended):
            match = _CONTINUATION.fullmatch(key)
            if match and key[: match.start(1) - 1] == name:
                pieces[int(match.group(1))] = (key, value)
    parts = []
    for num in range(len(pieces)):
        if num not in pieces:
            break
        parts.append(pieces[num][1])
    if not parts:
        return None
    value = "".join(parts)
    if pieces[0][0].endswith("*") and value.count("'") >= 2:
        charset, _, value = value.split("'", 2)
        try:
            return unquote(value, charset or "utf-8", "strict")
        except (LookupError, UnicodeDecodeError):
            return None
    return value
