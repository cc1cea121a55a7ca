"""Request bodies sent with ``Content-Encoding: gzip`` or ``deflate``, decompressed as aiohttp does.

The decompressed stream pulls compressed bytes from the connection's stream only when the
handler reads, and inflates at most ``CHUNK`` bytes per step: a small body that inflates to
gigabytes (a "zip bomb") never sits in memory beyond what the handler asked for, and
``client_max_size`` (checked by ``read()``/``post()`` on the decompressed size) stops it at 413.
"""

from __future__ import annotations

import zlib
from typing import Any

from ..http.errors import RequestPayloadError
from ..http.streams import StreamReader

__all__ = ("CHUNK", "InflatingStreamReader", "inflating")

CHUNK = 2**16  # the most decompressed bytes made per step

# aiohttp's codings, less br and zstd: their streaming decoders cannot bound the output of one
# step, so a small body could inflate without limit before client_max_size is checked.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def inflating(body: StreamReader, content_encoding: str | None) -> StreamReader:
    """``body`` decompressed if its Content-Encoding is gzip or deflate, else ``body`` itself."""
    if not content_encoding:
        return body
    coding = content_encoding.strip().lower()
    if coding not in _WBITS:
        return body  # identity, or a coding we do not decode: the bytes as sent
    return InflatingStreamReader(body, coding)


def _zlib_header(data: bytes) -> bool:
    """Whether ``data`` starts with a zlib header (RFC 1950: method 8, check bits)."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class InflatingStreamReader(StreamReader):
    """A StreamReader whose bytes are inflated from another one, on demand."""

    __slots__ = ("_coding", "_decompressor", "_source", "_tail")

    def __init__(self, source: StreamReader, coding: str) -> None:
        super().__init__(None)
        self._source = source
        self._coding = coding
        # "deflate" is the zlib format (RFC 9110), but raw deflate is common: decided on the
        # first bytes, as aiohttp does.
        self._decompressor: Any = None
        self._tail = b""

    def __repr__(self) -> str:
        return f"<InflatingStreamReader {self._coding} {self._source!r}>"

    async def _wait(self) -> None:
        if self._exception is not None:
            raise self._exception
        data = self._tail
        self._tail = b""
        if not data:
            data = await self._source.readany()
            if not data:
                self._finish()
                return
        dec = self._decompressor
        if dec is None:
            wbits = _WBITS[self._coding]
            if self._coding == "deflate" and not _zlib_header(data):
                wbits = -zlib.MAX_WBITS  # raw deflate
            dec = self._decompressor = zlib.decompressobj(wbits)
        try:
            out = dec.decompress(data, CHUNK)
        except zlib.error as exc:
            raise self._fail(f"Cannot decode {self._coding} body: {exc}") from None
        self._tail = dec.unconsumed_tail
        if dec.eof and dec.unused_data.strip(b"\x00"):
            raise self._fail(f"Bytes after the end of the {self._coding} body")
        if out:
            self._buffer.append(out)
            self._size += len(out)
            self._total += len(out)

    def _finish(self) -> None:
        dec = self._decompressor
        if dec is not None:
            rest = dec.flush()
            if rest:
                self._buffer.append(rest)
                self._size += len(rest)
                self._total += len(rest)
            if not dec.eof:
                raise self._fail(f"The {self._coding} body is cut short")
        self._eof = True

    def _fail(self, message: str) -> RequestPayloadError:
        exc = RequestPayloadError(message)
        self._exception = exc
        return exc

    async def wait_eof(self) -> None:
        while not self._eof:  # nothing feeds this stream: reading is what moves it on
            await self._wait()

    def is_eof(self) -> bool:
        return self._eof

    def feed_data(self, data: bytes) -> None:  # pragma: no cover - pulled, never fed
        raise RuntimeError("An inflating stream is read from its source, not fed")
