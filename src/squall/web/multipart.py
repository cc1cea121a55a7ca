"""Streaming multipart reader: aiohttp's ``MultipartReader`` and ``BodyPartReader``.

The body is read ahead from its source (``request.content``, or the enclosing part of a nested
multipart) in pieces of at most 64 KiB into one buffer that holds only what has not been handed
out yet: the part being parsed never has to fit in memory, and a boundary split across network
reads is found all the same. Part headers are bounded per line (``max_field_size``), in number
(``max_headers``) and in total (``max_head_size``).

A malformed body raises :class:`MultipartError`, which is both a ``ValueError`` (what aiohttp
raises, so handlers written for aiohttp catch it) and a :class:`RequestPayloadError`: a handler
that lets it escape answers 400, where aiohttp answers 500.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

from multidict import CIMultiDict, CIMultiDictProxy

from ..http.errors import RequestPayloadError
from .mime import content_disposition_filename, parse_content_disposition, parse_content_type

__all__ = ("BodyPartReader", "MultipartError", "MultipartReader", "UnknownEncodingError")

_PULL = 65536
"""Most bytes taken from the source at once."""

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_NOT_B64 = bytes(b for b in range(256) if b not in _B64_ALPHABET)
_HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class MultipartError(RequestPayloadError, ValueError):
    """A malformed multipart body: a ``ValueError`` as in aiohttp; 400 if a handler lets it out."""


class UnknownEncodingError(RequestPayloadError, RuntimeError):
    """A part in a Content-Transfer-Encoding or Content-Encoding that cannot be decoded.

    A ``RuntimeError``, as aiohttp raises; 400 if a handler lets it out.
    """


class _Feed:
    """The bytes of one multipart body, pulled from ``read(n)`` as the parser needs them.

    ``_buf[_pos:]`` is what has been pulled and not handed out. ``_clean`` is a buffer index
    before which no part delimiter starts, so a search never scans the same bytes twice.
    """

    __slots__ = ("_buf", "_clean", "_eof", "_pos", "_read")

    def __init__(self, read: Callable[[int], Awaitable[bytes]]) -> None:
        self._read = read
        self._buf = bytearray()
        self._pos = 0
        self._clean = 0
        self._eof = False

    async def _more(self) -> bool:
        """Pull the next piece; False at the end of the source."""
        if self._eof:
            return False
        data = await self._read(_PULL)
        if not data:
            self._eof = True
            return False
        pos = self._pos
        if pos:  # only the unconsumed tail is kept: at most a header line or a delimiter
            del self._buf[:pos]
            self._clean = max(0, self._clean - pos)
            self._pos = 0
        self._buf += data
        return True

    def _take(self, end: int) -> bytes:
        data = bytes(self._buf[self._pos : end])
        self._pos = end
        return data

    async def skip_prefix(self, prefix: bytes) -> bool:
        """Consume ``prefix`` if the unread bytes start with it."""
        while len(self._buf) - self._pos < len(prefix):
            if not await self._more():
                return False
        if self._buf.startswith(prefix, self._pos):
            self._pos += len(prefix)
            return True
        return False

    async def readline(self, limit: int, *, skip: bool = False) -> bytes | None:
        """The next line with its ``\\n``; what is left (maybe ``b""``) at the end of the source.

        A line longer than ``limit`` bytes (its CRLF aside) raises, or with ``skip`` is dropped
        as it arrives and gives None.
        """
        searched = 0  # bytes after _pos known to hold no newline
        dropped = False
        while True:
            buf, pos = self._buf, self._pos
            idx = buf.find(b"\n", pos + searched)
            if idx >= 0:
                if not dropped and idx - pos <= limit + 1:
                    return self._take(idx + 1)
                if not skip:
                    raise MultipartError(f"Got more than {limit} bytes in a multipart line")
                self._pos = idx + 1
                return None
            searched = len(buf) - pos
            if searched > limit + 1:
                if not skip:
                    raise MultipartError(f"Got more than {limit} bytes in a multipart line")
                self._pos = len(buf)
                searched = 0
                dropped = True
            if not await self._more():
                return None if dropped else self._take(len(self._buf))

    async def read_until(self, delim: bytes, size: int) -> tuple[bytes, bool]:
        """Up to ``size`` bytes before ``delim``; the flag is True once ``delim`` was consumed."""
        span = len(delim)
        while True:
            buf, pos = self._buf, self._pos
            idx = buf.find(delim, max(pos, self._clean))
            if idx >= 0:
                self._clean = idx
                if idx - pos > size:
                    return self._take(pos + size), False
                data = self._take(idx)
                self._pos += span
                return data, True
            safe = len(buf) - span + 1  # a delimiter may still start at or after this index
            if safe > pos:
                self._clean = safe
                return self._take(min(safe, pos + size)), False
            if not await self._more():
                raise MultipartError("Unexpected end of multipart body: no closing boundary")

    async def read_line_until(self, delim: bytes, limit: int) -> tuple[bytes, bool]:
        """The next line of a part (with its ``\\n``), or its last one (flag True) up to ``delim``,
        which is then consumed."""
        span = len(delim)
        while True:
            buf, pos = self._buf, self._pos
            idx = buf.find(delim, max(pos, self._clean))
            end = idx if idx >= 0 else len(buf)
            newline = buf.find(b"\n", pos, end)
            if newline >= 0:
                cr = newline - 1
                # "\r\n" at the end of the buffer may begin the delimiter: wait to know
                pending = (
                    idx < 0
                    and cr >= pos
                    and len(buf) - cr < span
                    and delim.startswith(bytes(buf[cr:]))
                )
                if not pending or self._eof:
                    return self._take(newline + 1), False
            elif idx >= 0:
                self._clean = idx
                data = self._take(idx)
                self._pos += span
                return data, True
            elif end - pos > limit:
                raise MultipartError(f"Got more than {limit} bytes in a multipart line")
            if not await self._more():
                raise MultipartError("Unexpected end of multipart body: no closing boundary")


class BodyPartReader:
    """One part of a multipart body, read as a stream (aiohttp's ``BodyPartReader``)."""

    chunk_size = 8192

    def __init__(
        self,
        boundary: bytes,
        headers: CIMultiDictProxy[str],
        content: Any,
        *,
        subtype: str = "mixed",
        default_charset: str | None = None,
        client_max_size: int = sys.maxsize,
        max_size_error_cls: type[Exception] = ValueError,
    ) -> None:
        self.headers = headers
        self._boundary = boundary
        self._delim = b"\r\n" + boundary
        self._feed = content if isinstance(content, _Feed) else _Feed(content.read)
        self._is_form_data = subtype == "form-data"
        self._default_charset = default_charset
        self._client_max_size = client_max_size
        self._max_size_error_cls = max_size_error_cls
        self._started = False
        self._at_eof = False
        self._carry = b""  # the tail of an encoded chunk that cannot be decoded on its own

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} filename={self.filename!r}>"

    def __aiter__(self) -> BodyPartReader:
        return self

    async def __anext__(self) -> bytes:
        data = await self.next()
        if data is None:
            raise StopAsyncIteration
        return data

    async def next(self) -> bytes | None:
        """The whole remaining content, or None at the end (aiohttp's iteration over a part)."""
        data = await self.read()
        return data or None

    def at_eof(self) -> bool:
        """True once the part's closing boundary was reached."""
        return self._at_eof

    async def _read_raw(self, size: int) -> bytes:
        """Up to ``size`` bytes of the part as sent; ``b""`` at its end."""
        if self._at_eof or (not self._started and await self._starts_at_boundary()):
            return b""
        data, found = await self._feed.read_until(self._delim, size)
        if found:
            self._at_eof = True
        return data

    async def _starts_at_boundary(self) -> bool:
        """At the first read: is the part empty, its delimiter lacking the CRLF? (aiohttp takes
        such a part, so squall does too.)"""
        self._started = True
        if await self._feed.skip_prefix(self._boundary):
            self._at_eof = True
        return self._at_eof

    async def read_chunk(self, size: int = chunk_size) -> bytes:
        """Up to about ``size`` bytes of the part as sent; ``b""`` at its end.

        With a base64 or quoted-printable Content-Transfer-Encoding, a chunk never ends inside
        an encoded unit, so ``decode()`` works chunk by chunk.
        """
        encoding = self.headers.get("Content-Transfer-Encoding", "").lower()
        aligned = encoding in ("base64", "quoted-printable")
        chunk = self._carry
        self._carry = b""
        while True:
            chunk += await self._read_raw(max(size - len(chunk), 1))
            if not aligned or self._at_eof:
                return chunk
            cut = _b64_cut(chunk) if encoding == "base64" else _qp_cut(chunk)
            if cut:
                self._carry = chunk[cut:]
                return chunk[:cut]

    async def read(self, *, decode: bool = False) -> bytes:
        """The rest of the part, decoded when ``decode`` is true; beyond ``client_max_size``
        raises ``max_size_error_cls`` (413 for ``request.multipart()``)."""
        if self._at_eof and not self._carry:
            return b""
        data = bytearray()
        while chunk := await self.read_chunk(_PULL):
            data += chunk
            if len(data) > self._client_max_size:
                raise self._max_size_error_cls(self._client_max_size)
        raw = bytes(data)
        return self.decode(raw) if decode else raw

    async def readline(self) -> bytes:
        """The next line of the part (the last one without the CRLF before the boundary)."""
        if self._at_eof or (not self._started and await self._starts_at_boundary()):
            return b""
        line, found = await self._feed.read_line_until(self._delim, _PULL)
        if found:
            self._at_eof = True
        return line

    async def release(self) -> None:
        """Read the rest of the part to the void."""
        while not self._at_eof:
            await self._read_raw(_PULL)
        self._carry = b""

    async def text(self, *, encoding: str | None = None) -> str:
        """The decoded content as text, in ``encoding``, the part's charset, or UTF-8."""
        data = await self.read(decode=True)
        return data.decode(encoding or self.get_charset(default="utf-8"))

    async def json(self, *, encoding: str | None = None) -> Any:
        """The decoded content parsed as JSON; None for an empty part."""
        data = await self.read(decode=True)
        if not data:
            return None
        return json.loads(data.decode(encoding or self.get_charset(default="utf-8")))

    async def form(self, *, encoding: str | None = None) -> list[tuple[str, str]]:
        """The decoded content parsed as an urlencoded form."""
        data = await self.read(decode=True)
        if not data:
            return []
        charset = encoding or self.get_charset(default="utf-8")
        try:
            text = data.rstrip().decode(charset)
        except UnicodeDecodeError:
            raise ValueError(f"data cannot be decoded with {charset} encoding") from None
        return parse_qsl(text, keep_blank_values=True, encoding=charset)

    def decode(self, data: bytes) -> bytes:
        """Undo the part's Content-Transfer-Encoding and (outside form-data) Content-Encoding."""
        encoding = self.headers.get("Content-Transfer-Encoding")
        if encoding is not None:
            data = _decode_transfer(data, encoding.lower())
        if not self._is_form_data and "Content-Encoding" in self.headers:
            data = self._decompress(data, self.headers["Content-Encoding"].lower())
        return data

    async def decode_iter(self, data: bytes) -> AsyncIterator[bytes]:
        """``decode(data)`` as an async iterator (aiohttp's API for large payloads)."""
        yield self.decode(data)

    def _decompress(self, data: bytes, encoding: str) -> bytes:
        if encoding == "identity":
            return data
        if encoding not in ("gzip", "deflate"):
            raise UnknownEncodingError(f"unknown content encoding: {encoding}")
        limit = self._client_max_size
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else -zlib.MAX_WBITS
        try:
            out = zlib.decompressobj(wbits).decompress(
                data, limit + 1 if limit < sys.maxsize else 0
            )
        except zlib.error as exc:
            raise MultipartError(f"Cannot decompress part: {exc}") from None
        if len(out) > limit:
            raise self._max_size_error_cls(limit)
        return out

    def get_charset(self, default: str) -> str:
        """The charset of the part's Content-Type, else the form's ``_charset_``, else default."""
        _, params = parse_content_type(self.headers.get("Content-Type", ""))
        return params.get("charset", self._default_charset or default)

    @cached_property
    def name(self) -> str | None:
        """The ``name`` of the Content-Disposition header (None if missing or malformed)."""
        _, params = parse_content_disposition(self.headers.get("Content-Disposition"))
        return content_disposition_filename(params, "name")

    @cached_property
    def filename(self) -> str | None:
        """The ``filename`` (or ``filename*``) of the Content-Disposition header."""
        _, params = parse_content_disposition(self.headers.get("Content-Disposition"))
        return content_disposition_filename(params, "filename")


def _decode_transfer(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        try:
            return base64.b64decode(data)
        except binascii.Error as exc:
            raise MultipartError(f"Invalid base64 part: {exc}") from None
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    if encoding in ("binary", "8bit", "7bit"):
        return data
    raise UnknownEncodingError(f"unknown content transfer encoding: {encoding}")


def _b64_cut(chunk: bytes) -> int:
    """Where to cut ``chunk`` so that it holds whole base64 quartets (0: nowhere)."""
    left = len(chunk.translate(None, _NOT_B64)) % 4
    cut = len(chunk)
    while left and cut:
        cut -= 1
        if chunk[cut] not in _NOT_B64:
            left -= 1
    return cut


def _qp_cut(chunk: bytes) -> int:
    """Where to cut ``chunk`` so that no ``=XX`` escape or soft line break is split."""
    idx = chunk.rfind(b"=", max(0, len(chunk) - 2))
    return len(chunk) if idx < 0 else idx


class _PartStream:
    """The raw content of one part, as the source of the multipart reader nested in it."""

    __slots__ = ("_part",)

    def __init__(self, part: BodyPartReader) -> None:
        self._part = part

    async def read(self, n: int = _PULL) -> bytes:
        return await self._part._read_raw(n)


class MultipartReader:
    """A multipart body as a stream of parts (aiohttp's ``MultipartReader``).

    ``content`` is anything with an awaitable ``read(n)`` (normally ``request.content``);
    ``async for part in reader`` or ``await reader.next()`` gives each part in turn, a
    :class:`BodyPartReader` or, for a ``multipart/*`` part, a nested :class:`MultipartReader`.
    """

    #: The class of nested readers (None: this reader's own class).
    multipart_reader_cls: type[MultipartReader] | None = None
    #: The class of the other parts.
    part_reader_cls: type[BodyPartReader] = BodyPartReader

    def __init__(
        self,
        headers: Mapping[str, str],
        content: Any,
        *,
        client_max_size: int = sys.maxsize,
        max_field_size: int = 8190,
        max_headers: int = 128,
        max_size_error_cls: type[Exception] = ValueError,
        max_head_size: int = 65536,
    ) -> None:
        ctype, params = parse_content_type(headers.get("Content-Type", ""))
        kind, _, subtype = ctype.partition("/")
        if kind != "multipart":
            raise MultipartError(f"multipart/* content type expected, got {ctype!r}")
        boundary = params.get("boundary")
        if not boundary:
            raise MultipartError(f"boundary missed for Content-Type: {headers.get('Content-Type')}")
        if len(boundary) > 70:
            raise MultipartError(f"boundary {boundary!r} is too long (70 chars max)")
        self.headers = headers
        self._subtype = subtype
        self._boundary = b"--" + boundary.encode("utf-8", "surrogateescape")
        self._feed = content if isinstance(content, _Feed) else _Feed(content.read)
        self._client_max_size = client_max_size
        self._max_field_size = max_field_size
        self._max_headers = max_headers
        self._max_head_size = max_head_size
        self._max_size_error_cls = max_size_error_cls
        self._default_charset: str | None = None
        self._last: MultipartReader | BodyPartReader | None = None
        self._last_body: BodyPartReader | None = None  # what a nested reader reads from
        self._at_bof = True
        self._at_eof = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} boundary={self._boundary[2:]!r}>"

    def __aiter__(self) -> MultipartReader:
        return self

    async def __anext__(self) -> MultipartReader | BodyPartReader:
        part = await self.next()
        if part is None:
            raise StopAsyncIteration
        return part

    def at_eof(self) -> bool:
        """True once the closing boundary was read."""
        return self._at_eof

    async def next(self) -> MultipartReader | BodyPartReader | None:
        """The next part (the previous one is read to the void first); None after the last."""
        if self._at_eof:
            return None
        await self._finish_last()
        if self._at_bof:
            self._at_bof = False
            at_end = await self._read_first_boundary()
        else:
            at_end = await self._read_boundary_end()
        if at_end:
            return None
        part = await self.fetch_next_part()
        # RFC 7578 4.6: a "_charset_" field names the default charset of the text fields.
        while (
            self._subtype == "form-data"
            and isinstance(part, BodyPartReader)
            and part.name == "_charset_"
        ):
            self._default_charset = await _read_charset(part)
            if await self._read_boundary_end():
                return None
            part = await self.fetch_next_part()
        self._last = part
        return part

    async def release(self) -> None:
        """Read every remaining part to the void, up to the closing boundary."""
        while not self._at_eof:
            part = await self.next()
            if part is None:
                break
            await part.release()

    async def fetch_next_part(self) -> MultipartReader | BodyPartReader:
        """Read the next part's headers and return its reader."""
        return self._get_part_reader(await self._read_headers())

    def _get_part_reader(self, headers: CIMultiDictProxy[str]) -> MultipartReader | BodyPartReader:
        ctype, _ = parse_content_type(headers.get("Content-Type", ""))
        if ctype.startswith("multipart/"):
            body = BodyPartReader(self._boundary, headers, self._feed, subtype=self._subtype)
            self._last_body = body
            cls = self.multipart_reader_cls or type(self)
            return cls(
                headers,
                _PartStream(body),
                client_max_size=self._client_max_size,
                max_field_size=self._max_field_size,
                max_headers=self._max_headers,
                max_size_error_cls=self._max_size_error_cls,
                max_head_size=self._max_head_size,
            )
        return self.part_reader_cls(
            self._boundary,
            headers,
            self._feed,
            subtype=self._subtype,
            default_charset=self._default_charset,
            client_max_size=self._client_max_size,
            max_size_error_cls=self._max_size_error_cls,
        )

    async def _finish_last(self) -> None:
        last, body = self._last, self._last_body
        self._last = self._last_body = None
        if last is not None and not last.at_eof():
            await last.release()
        if body is not None:  # the epilogue of a nested multipart
            await body.release()

    async def _read_first_boundary(self) -> bool:
        """Skip the preamble up to the first boundary line; True if it was the closing one."""
        boundary = self._boundary
        while True:
            line = await self._feed.readline(self._max_field_size, skip=True)
            if line is None:
                continue
            if not line:
                raise MultipartError(f"Could not find starting boundary {boundary!r}")
            line = line.rstrip()
            if line == boundary:
                return False
            if line == boundary + b"--":
                self._at_eof = True
                return True

    async def _read_boundary_end(self) -> bool:
        """Read the rest of a boundary line whose ``CRLF--boundary`` the last part consumed;
        True if it was the closing one."""
        line = await self._feed.readline(self._max_field_size)
        assert line is not None
        if not line:
            raise MultipartError("Unexpected end of multipart body after a boundary")
        tail = line.rstrip()
        if tail == b"--":
            self._at_eof = True
        elif tail:
            raise MultipartError(
                f"Invalid boundary {self._boundary + tail!r}, expected {self._boundary!r}"
            )
        return self._at_eof

    async def _read_headers(self) -> CIMultiDictProxy[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        total = 0
        while True:
            line = await self._feed.readline(self._max_field_size)
            assert line is not None
            total += len(line)
            if total > self._max_head_size:
                raise MultipartError(f"Part headers longer than {self._max_head_size} bytes")
            if not line.endswith(b"\n"):
                raise MultipartError("Unexpected end of multipart body in part headers")
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
            if not line:
                return CIMultiDictProxy(headers)
            if len(headers) >= self._max_headers:
                raise MultipartError("Too many headers received")
            name, colon, value = line.partition(b":")
            value = value.strip(b" \t")
            if not colon or not _HEADER_NAME.fullmatch(name) or _BAD_VALUE.search(value):
                raise MultipartError(f"Invalid HTTP header: {line!r}")
            headers.add(name.decode("ascii"), value.decode("utf-8", "surrogateescape"))


async def _read_charset(part: BodyPartReader) -> str:
    """The value of a ``_charset_`` field: a known encoding name of at most 31 bytes."""
    value = b""
    while chunk := await part.read_chunk(32):
        value += chunk
        if len(value) > 31:
            raise MultipartError("Invalid default charset")
    try:
        charset = value.strip().decode("ascii")
        codecs.lookup(charset)
    except (UnicodeDecodeError, LookupError):
        raise MultipartError(f"Invalid default charset {value!r}") from None
    return charset
