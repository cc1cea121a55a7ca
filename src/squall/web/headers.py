"""Parsing request header values: cookies, HTTP dates, entity tags, Range and Forwarded."""

from __future__ import annotations

import datetime
import logging
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = (
    "ETAG_ANY",
    "ETag",
    "parse_cookies",
    "parse_etags",
    "parse_forwarded",
    "parse_http_date",
    "parse_range",
)

ETAG_ANY = "*"

log = logging.getLogger("squall.web")


@dataclass(frozen=True, eq=False)
class ETag:
    """An entity tag from If-Match / If-None-Match (aiohttp's ``ETag``).

    Equal to any entity tag with the same ``value`` and ``is_weak``, aiohttp's own included
    (``aiohttp.helpers.ETag``, which an application under ``install_as_aiohttp()`` may use).
    """

    value: str
    is_weak: bool = False

    def __eq__(self, other: object) -> bool:
        try:
            return bool(self.value == other.value and self.is_weak == other.is_weak)  # type: ignore[attr-defined]
        except AttributeError:
            return NotImplemented

    def __hash__(self) -> int:
        return hash((self.value, self.is_weak))


_ETAG_CHARS = re.compile(r"[!\x23-\x7E\x80-\xff]+")


def validate_etag_value(value: str) -> None:
    """Raise ``ValueError`` unless ``value`` can stand between an entity tag's quotes."""
    if value != ETAG_ANY and not _ETAG_CHARS.fullmatch(value):
        raise ValueError(f"Value {value!r} is not a valid etag. Maybe it contains '\"'?")


# RFC 6265 5.4 pairs, lenient as browsers and aiohttp are: a malformed pair is skipped, never the
# pairs after it.
_COOKIE_NAME = re.compile(r"[!#$%&'()*+\-./0-9:<=>?@A-Z\[\]^_`a-z{|}~]+")


def parse_cookies(header: str) -> dict[str, str]:
    """``name=value; name2=value2`` into a dict; quoted values lose their quotes and escapes.

    A ``;`` inside a quoted value belongs to the value, as in aiohttp.
    """
    cookies: dict[str, str] = {}
    invalid: list[str] = []
    pos, end = 0, len(header)
    while pos < end:
        semi = header.find(";", pos)
        if semi < 0:
            semi = end
        eq = header.find("=", pos, semi)
        if eq >= 0:
            quoted = _QUOTED_VALUE.match(header, eq + 1)
            if quoted is not None and quoted.end() > semi:  # the quoted value holds a ";"
                semi = header.find(";", quoted.end())
                if semi < 0:
                    semi = end
        pair = header[pos:semi]
        pos = semi + 1
        name, eq_sign, value = pair.partition("=")
        name = name.strip()
        if not name:
            continue
        if not eq_sign:
            for word in name.split():  # a bare word is a name with an empty value
                if _COOKIE_NAME.fullmatch(word):
                    cookies.setdefault(word, "")
            continue
        if not _COOKIE_NAME.fullmatch(name):
            invalid.append(name)
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = _unescape_cookie(value[1:-1])
        cookies[name] = value
    if invalid:  # one record per header, as aiohttp (a header of many cannot flood the log)
        log.debug("Cannot load cookie. Illegal cookie names: %r", invalid)
    return cookies


_QUOTED_VALUE = re.compile(r'[ \t]*"(?:[^"\\]|\\.)*"(?=[ \t]*(?:;|$))')
# http.cookies' escapes, which aiohttp reads too: an octal byte (\054 is ",") or a quoted char.
_COOKIE_ESCAPE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))")


def _unescape_cookie(value: str) -> str:
    if "\\" not in value:
        return value
    return _COOKIE_ESCAPE.sub(lambda m: chr(int(m[1], 8)) if m[1] else m[2], value)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value) if "\\" in value else value


def parse_http_date(value: str | None) -> datetime.datetime | None:
    """An HTTP-date as an aware UTC datetime, or None when absent or unparsable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


_ETAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


def parse_etags(value: str | None) -> tuple[ETag, ...] | None:
    """If-Match / If-None-Match: ``*`` or a list of (weak) quoted tags; None when absent."""
    if value is None:
        return None
    if value.strip() == ETAG_ANY:
        return (ETag(value=ETAG_ANY),)
    tags = []
    pos = 0
    while pos < len(value):
        match = _ETAG.match(value, pos)
        if match is None:
            break
        tags.append(ETag(value=match.group(2)[1:-1], is_weak=bool(match.group(1))))
        pos = match.end()
    return tuple(tags)


_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII | re.IGNORECASE)


def parse_range(value: str | None) -> slice:
    """A single-range ``Range: bytes=a-b`` as a slice (end exclusive); ValueError if malformed."""
    if value is None:
        return slice(None, None, 1)
    match = _RANGE.fullmatch(value.strip())
    if match is None:
        raise ValueError("range not in acceptable format")
    start = int(match.group(1)) if match.group(1) else None
    end = int(match.group(2)) if match.group(2) else None
    if start is None and end is not None:  # the last `end` bytes
        return slice(-end, None, 1)
    if start is not None and end is not None:
        end += 1
        if start >= end:
            raise ValueError("start cannot be after end")
    if start is None and end is None:
        raise ValueError("No start or end of range specified")
    return slice(start, end, 1)


_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t !-~\x80-\xff])*"'
_FORWARDED_PAIR = re.compile(rf"({_TOKEN})=({_TOKEN}|{_QUOTED})(:\d{{1,4}})?")


def parse_forwarded(values: Iterable[str]) -> tuple[Mapping[str, str], ...]:
    """RFC 7239 ``Forwarded`` fields: one read-only dict per forwarded-element, in order.

    Pair syntax is checked (token or quoted-string values, unescaped); the meaning of ``for``,
    ``by``, ``host`` and ``proto`` is not. A malformed part skips to the next comma.
    """
    elements: list[Mapping[str, str]] = []
    for field in values:
        element: dict[str, str] = {}
        elements.append(types.MappingProxyType(element))
        pos, length = 0, len(field)
        need_separator = False
        while 0 <= pos < length:
            match = _FORWARDED_PAIR.match(field, pos)
            char = field[pos]
            if match is not None and not need_separator:
                name, value, port = match.groups()
                if value[0] == '"':
                    value = _unescape(value[1:-1])
                element[name.lower()] = value + (port or "")
                pos = match.end()
                need_separator = True
            elif char == ",":
                element = {}
                elements.append(types.MappingProxyType(element))
                need_separator = False
                pos += 1
            elif char == ";":
                need_separator = False
                pos += 1
            elif char in " \t":
                pos += 1
            else:  # bad syntax: skip to the next element
                pos = field.find(",", pos)
    return tuple(elements)
