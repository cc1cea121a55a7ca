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
import io
import mimetypes
import os
import stat
from collections.abc import AsyncIterator
from typing import Any

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


def to_payload(body: Any) -> Payload | bytes | None:
    """The payload for ``body`` (bytes for what can be read on the spot), None if unsupported."""
    value = getattr(body, "value", None)
    if value is not None and hasattr(body, "content_type") and hasattr(body, "headers"):
        # aiohttp's own payload objects (aiohttp.payload.get_payload(...)): their value, with
        # the type and disposition they were given
        inner = to_payload(value) if not isinstance(value, (bytes, bytearray, str)) else None
        if inner is None:
            data = (
                value.encode(getattr(body, "encoding", None) or "utf-8")
                if isinstance(value, str)
                else bytes(value)
            )
            inner = Payload(io.BytesIO(data), len(data), None)
        elif isinstance(inner, bytes):
            inner = Payload(io.BytesIO(inner), len(inner), None)
        headers = body.headers
        return Payload(
            inner.source,
            inner.size,
            headers.get("Content-Type") or inner.ctype,
            headers.get("Content-Disposition") or inner.disposition,
        )
    if isinstance(body, io.StringIO):
        return body.read().encode("utf-8")
    if isinstance(body, io.BytesIO):
        return body.read()
    if hasattr(body, "__aiter__"):
        return Payload(body, -1, None)
    if not (hasattr(body, "read") and hasattr(body, "close")):
        return None
    name = getattr(body, "name", None)
    filename = os.path.basename(name) if isinstance(name, str) else None
    disposition = f'attachment; filename="{filename}"' if filename else None
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    if isinstance(body, io.TextIOBase):
        encoding = getattr(body, "encoding", None) or "utf-8"
        ctype = f"{guessed or 'text/plain'}; charset={encoding.lower()}"
        return Payload(body, -1, ctype, disposition)
    return Payload(body, _remaining(body), guessed, disposition)


def _remaining(file: Any) -> int:
    """Bytes left to read in a regular file, -1 if that cannot be known."""
    try:
        st = os.fstat(file.fileno())
        if not stat.S_ISREG(st.st_mode):
            return -1
        return max(int(st.st_size) - int(file.tell()), 0)
    except (AttributeError, OSError, ValueError):
        return -1
