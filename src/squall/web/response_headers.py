"""A response's header accessors: ``headers`` and the typed views of single headers.

:class:`HeadersMixin` is part of :class:`~squall.web.response.StreamResponse`. While no one has
touched ``.headers``, the only header a response has is its Content-Type, kept as a plain string
(``_ctype``); the mapping is made on first access.
"""

from __future__ import annotations

import calendar
import datetime
import math
import re
from email.utils import formatdate
from typing import Any

from multidict import CIMultiDict

from .headers import ETAG_ANY, ETag, validate_etag_value

_QUOTED_ETAG = re.compile(r'(W/)?"([!\x23-\x7E\x80-\xff]+)"')


def _parse_ctype(value: str | None) -> tuple[str, dict[str, str]]:
    if not value:
        return "application/octet-stream", {}
    mime, _, rest = value.partition(";")
    if mime.count("/") != 1:  # not a media type: what aiohttp (and email) make of it
        mime = "application/octet-stream"
    params: dict[str, str] = {}
    for item in rest.split(";"):
        key, sep, val = item.partition("=")
        if sep:
            params[key.strip().lower()] = val.strip().strip('"')
    return mime.strip().lower(), params


class HeadersMixin:
    """``headers`` and its typed views: content type, charset, length, Last-Modified, ETag."""

    _headers: CIMultiDict[str] | None = None
    _ctype: str | None = None  # the Content-Type value while no header mapping exists yet
    _chunked: bool  # StreamResponse's
    _plain: Any  # StreamResponse's
    # Set while on_response_prepare receivers run on a response with no mapping yet: one that
    # reads ``headers`` finds Date and Server there, as aiohttp's do; one that does not leaves
    # the response its pre-made head.
    _defaults_on_read = False

    @property
    def headers(self) -> CIMultiDict[str]:
        headers = self._headers
        if headers is None:
            headers = self._headers = CIMultiDict()
            self._plain = False
            if self._ctype is not None:
                headers["Content-Type"] = self._ctype
                self._ctype = None
            if self._defaults_on_read:
                self._show_head_defaults()
        return headers

    def _show_head_defaults(self) -> None: ...  # StreamResponse's

    def _get_ctype(self) -> str | None:
        if self._headers is None:
            return self._ctype
        return self._headers.get("Content-Type")

    def _set_ctype(self, value: str) -> None:
        if self._headers is None:
            self._ctype = value
            self._plain = False  # (it holds the head of the type it was made with)
        else:
            self._headers["Content-Type"] = value

    @property
    def content_type(self) -> str:
        return _parse_ctype(self._get_ctype())[0]

    @content_type.setter
    def content_type(self, value: str) -> None:
        params = _parse_ctype(self._get_ctype())[1] if self._get_ctype() else {}
        charset = params.get("charset")
        self._set_ctype(f"{value}; charset={charset}" if charset else str(value))

    @property
    def charset(self) -> str | None:
        return _parse_ctype(self._get_ctype())[1].get("charset")

    @charset.setter
    def charset(self, value: str | None) -> None:
        ctype = self.content_type
        if ctype == "application/octet-stream":
            raise RuntimeError(
                "Setting charset for application/octet-stream doesn't make sense, "
                "setup content_type first"
            )
        self._set_ctype(f"{ctype}; charset={value.lower()}" if value else ctype)

    @property
    def content_length(self) -> int | None:
        value = self._headers.get("Content-Length") if self._headers is not None else None
        return int(value) if value is not None else None

    @content_length.setter
    def content_length(self, value: int | None) -> None:
        if value is None:
            self.headers.pop("Content-Length", None)
        else:
            if self._chunked:
                raise RuntimeError("You can't set content length when chunked encoding is enable")
            self.headers["Content-Length"] = str(int(value))

    @property
    def last_modified(self) -> datetime.datetime | None:
        from email.utils import parsedate_to_datetime

        value = self._headers.get("Last-Modified") if self._headers is not None else None
        if value is None:
            return None
        try:
            return parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None

    @last_modified.setter
    def last_modified(self, value: int | float | datetime.datetime | str | None) -> None:
        # Rounded up to the second, as aiohttp does: Last-Modified is never earlier than the
        # file's true modification time, which would defeat revalidation.
        if value is None:
            self.headers.pop("Last-Modified", None)
        elif isinstance(value, (int, float)):
            self.headers["Last-Modified"] = formatdate(math.ceil(value), usegmt=True)
        elif isinstance(value, datetime.datetime):
            seconds = calendar.timegm(value.utctimetuple()) + (1 if value.microsecond else 0)
            self.headers["Last-Modified"] = formatdate(seconds, usegmt=True)
        elif isinstance(value, str):
            self.headers["Last-Modified"] = value
        else:
            raise TypeError(f"Unsupported type for last_modified: {type(value).__name__}")

    @property
    def etag(self) -> ETag | None:
        """The ETag header as an :class:`ETag` (``W/`` prefix for weak tags)."""
        value = self._headers.get("ETag") if self._headers is not None else None
        if not value:
            return None
        if value == ETAG_ANY:
            return ETag(value=ETAG_ANY)
        match = _QUOTED_ETAG.fullmatch(value)  # one tag, as aiohttp reads it (else None)
        return None if match is None else ETag(value=match.group(2), is_weak=bool(match.group(1)))

    @etag.setter
    def etag(self, value: ETag | str | None) -> None:
        """Set from a tag's value (quoted here) or an :class:`ETag` (aiohttp's too); a value
        outside RFC 9110's etagc characters raises ``ValueError``."""
        if value is None:
            self.headers.pop("ETag", None)
            return
        tag = getattr(value, "value", None) if not isinstance(value, str) else value
        if not isinstance(tag, str):
            raise ValueError(
                f"Unsupported etag type: {type(value)}. etag must be str, ETag or None"
            )
        if tag == ETAG_ANY:
            self.headers["ETag"] = ETAG_ANY
            return
        validate_etag_value(tag)
        weak = not isinstance(value, str) and bool(getattr(value, "is_weak", False))
        self.headers["ETag"] = f'W/"{tag}"' if weak else f'"{tag}"'
