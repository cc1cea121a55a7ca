"""What ``Response(body=...)`` takes besides bytes and str, as aiohttp's payload system does.

- an async iterable of bytes (an async generator): streamed, chunked;
- an open binary file: streamed from a thread, with its remaining size as Content-Length, its
  type guessed from its name and ``Content-Disposition: attachment; filename=...``, closed once
  sent;
- an open text file: read whole from a thread and sent encoded (UTF-8 unless the file says
  otherwise), typed ``text/plain; charset=...``, closed once read;
- ``io.BytesIO`` / ``io.StringIO``: their remaining content, read when the body is set.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import mimetypes
import os
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

from .multipart import BodyPartReader

__all__ = ("Payload", "to_payload")

CHUNK = 65536  # bytes read from a file per step


class Payload:
    """A body produced while the response is sent."""

    __slots__ = ("ctype", "disposition", "size", "source")

    def __init__(
        self, source: Any, size: int, ctype: str | None, disposition: str | None = None
    ) -> None:
        self.source = source
        self.size = size  # -1: not known before it is sent (chunked on HTTP/1.1)
        self.ctype = ctype
        self.disposition = disposition

    @property
    def is_text_file(self) -> bool:
        return isinstance(self.source, io.TextIOBase)

    async def read_text(self) -> bytes:
        """A text file's whole content, encoded; the file is closed."""
        source = self.source
        try:
            text = await asyncio.get_running_loop().run_in_executor(None, source.read)
        finally:
            source.close()
        return str(text).encode(getattr(source, "encoding", None) or "utf-8")

    def decode(self, encoding: str = "utf-8") -> str:
        """The body as text, for ``response.text``, as aiohttp's payloads' ``decode()``: a
        file is read (blocking) from where it stands, and put back there if it can seek; a
        body that exists only as it is sent (an async iterable, a multipart part) raises
        TypeError."""
        source = self.source
        decode = getattr(source, "decode", None)
        if decode is not None and self.writes_itself:  # aiohttp's payload objects
            return str(decode(encoding))
        if hasattr(source, "__aiter__") or not hasattr(source, "read"):
            raise TypeError("Unable to decode: the body is made only as it is sent")
        try:
            start: int | None = source.tell()
        except (AttributeError, OSError, ValueError):
            start = None
        data = source.read()
        if start is not None:
            source.seek(start)
        return data if isinstance(data, str) else bytes(data).decode(encoding)

    @property
    def writes_itself(self) -> bool:
        """An aiohttp payload object: sent by its own ``write(writer)``."""
        return hasattr(self.source, "write_with_length")

    async def send(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Send the body's bytes through ``write``; the source is closed at the end."""
        if not self.writes_itself:
            async for chunk in self.chunks():
                await write(chunk)
            return
        try:
            await self.source.write(_Writer(write))
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the source unread (a response without a body: HEAD, 204, 304)."""
        close = getattr(self.source, "close", None)
        if close is not None and not hasattr(self.source, "__aiter__"):
            result = close()
            if inspect.isawaitable(result):
                await result

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes, piece by piece; a file is closed at the end (or on an error)."""
        source = self.source
        if hasattr(source, "__aiter__"):
            async for chunk in source:
                if isinstance(chunk, str):
                    chunk = chunk.encode("utf-8")
                yield bytes(chunk)
            return
        loop = asyncio.get_running_loop()
        try:
            while True:
                chunk = await loop.run_in_executor(None, source.read, CHUNK)
                if not chunk:
                    return
                yield bytes(chunk)
        finally:
            source.close()


def _registered(body: Any) -> Any:
    """What aiohttp's payload registry makes of ``body`` when the application has imported
    aiohttp (a ``@aiohttp.streamer`` body, say), else None; squall never imports aiohttp."""
    registry = getattr(sys.modules.get("aiohttp.payload"), "PAYLOAD_REGISTRY", None)
    if registry is None:
        return None
    try:
        return registry.get(body)
    except Exception:  # aiohttp.payload.LookupError: a body aiohttp does not take either
        return None


def to_payload(body: Any) -> Payload | bytes | None:
    """The payload for ``body`` (bytes for what can be read on the spot), None if unsupported."""
    if hasattr(body, "write_with_length") and hasattr(body, "headers"):
        # aiohttp's own payload objects (aiohttp.get_payload(...), MultipartWriter, ...): they
        # write themselves (send()), with the size, type and disposition they were given
        size = body.size
        headers = body.headers
        return Payload(
            body,
            -1 if size is None else int(size),
            headers.get("Content-Type") or body.content_type,
            headers.get("Content-Disposition"),
        )
    if isinstance(body, BodyPartReader):
        return Payload(_part_chunks(body), -1, None, _part_disposition(body))
    if isinstance(body, io.StringIO):
        return body.read().encode("utf-8")
    if isinstance(body, io.BytesIO):
        return body.read()
    if hasattr(body, "__aiter__"):
        return Payload(body, -1, None)
    if not (hasattr(body, "read") and hasattr(body, "close")):
        registered = _registered(body)
        return None if registered is None else to_payload(registered)
    name = getattr(body, "name", None)
    filename = os.path.basename(name) if isinstance(name, str) else None
    disposition = f'attachment; filename="{filename}"' if filename else None
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    if isinstance(body, io.TextIOBase):
        encoding = getattr(body, "encoding", None) or "utf-8"
        ctype = f"{guessed or 'text/plain'}; charset={encoding.lower()}"
        return Payload(body, -1, ctype, disposition)
    return Payload(body, _remaining(body), guessed, disposition)


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    """A multipart part's content, decoded, streamed as it arrives (never read whole)."""
    while chunk := await part.read_chunk(CHUNK):
        yield part.decode(chunk)


def _part_disposition(part: BodyPartReader) -> str | None:
    """``attachment`` with the part's name and filename, as aiohttp's BodyPartReaderPayload."""
    params = [(key, value) for key in ("name", "filename") if (value := getattr(part, key))]
    if not params:
        return None
    fields = []
    for key, value in params:
        if key == "filename":
            fields.append(f'filename="{quote(value, "")}"')
        elif value.isascii() and value.isprintable():
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            fields.append(f'{key}="{escaped}"')
        else:
            fields.append(f"{key}*=utf-8''{quote(value, '')}")
    return "; ".join(["attachment", *fields])


class _Writer:
    """The ``AbstractStreamWriter`` an aiohttp payload object writes itself to."""

    __slots__ = ("_write", "buffer_size", "output_size")

    def __init__(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        self._write = write
        self.buffer_size = 0
        self.output_size = 0

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self.output_size += len(chunk)
        await self._write(bytes(chunk))

    async def drain(self) -> None:
        """Each write has already waited for the connection."""


def _remaining(file: Any) -> int:
    """Bytes left to read in a regular file, -1 if that cannot be known."""
    try:
        st = os.fstat(file.fileno())
        if not stat.S_ISREG(st.st_mode):
            return -1
        return max(int(st.st_size) - int(file.tell()), 0)
    except (AttributeError, OSError, ValueError):
        return -1
