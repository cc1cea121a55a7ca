"""Response content codings: Accept-Encoding negotiation and the zlib codecs (gzip, deflate).

The codings are aiohttp 3.14's: its server compresses with ``deflate`` and ``gzip`` only (brotli
and zstd it can only decode, as a client), and so does squall. The choice follows aiohttp's: deflate
whenever the client accepts it, else gzip, else none; q-values do not reorder, ``identity`` and
``*`` never select a compression. Unlike aiohttp, a coding refused with ``q=0`` is never used.
"""

from __future__ import annotations

import asyncio
import enum
import zlib
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multidict import CIMultiDict

__all__ = ("EXECUTOR_THRESHOLD", "Compressor", "ContentCoding", "negotiate", "vary_on_encoding")

# aiohttp's default zlib_executor_size: inputs longer than this are compressed in an executor.
EXECUTOR_THRESHOLD = 4096


class ContentCoding(enum.Enum):
    """The content codings a response can be compressed with (aiohttp's enum)."""

    deflate = "deflate"
    gzip = "gzip"
    identity = "identity"


_WBITS = {
    ContentCoding.deflate: zlib.MAX_WBITS,  # RFC 9110 "deflate": the zlib format
    ContentCoding.gzip: 16 + zlib.MAX_WBITS,
}

_ALIASES = {"x-gzip": "gzip"}  # RFC 9110 8.4.1.3
_CHOSEN: dict[str, ContentCoding | None] = {}


def negotiate(accept_encoding: str) -> ContentCoding | None:
    """The coding to compress with for this Accept-Encoding value, or None for none."""
    try:
        return _CHOSEN[accept_encoding]
    except KeyError:
        pass
    accepted = set()
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        name = name.strip()
        if not _refused(params):
            accepted.add(_ALIASES.get(name, name))
    if "deflate" in accepted:
        coding: ContentCoding | None = ContentCoding.deflate
    elif "gzip" in accepted:
        coding = ContentCoding.gzip
    else:
        coding = None
    if len(_CHOSEN) < 256:
        _CHOSEN[accept_encoding] = coding
    return coding


def _refused(params: str) -> bool:
    """Whether a coding's parameters carry ``q=0`` (a malformed q-value does not refuse)."""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip() == "q":
            try:
                return float(value.strip()) == 0.0
            except ValueError:
                return False
    return False


def vary_on_encoding(headers: CIMultiDict[str]) -> None:
    """Add ``Accept-Encoding`` to Vary, unless Vary already names it (or is ``*``)."""
    values = headers.getall("Vary", ())
    for value in values:
        for token in value.split(","):
            if token.strip().lower() in ("accept-encoding", "*"):
                return
    if values:
        headers["Vary"] = ", ".join([*values, "Accept-Encoding"])
    else:
        headers["Vary"] = "Accept-Encoding"


class Compressor:
    """One zlib stream. Inputs longer than ``threshold`` bytes are compressed in ``executor``
    (None: the loop's default executor; a threshold of None: never), as aiohttp does."""

    __slots__ = ("_executor", "_threshold", "_zobj")

    def __init__(
        self,
        coding: ContentCoding,
        strategy: int | None = None,
        threshold: int | None = EXECUTOR_THRESHOLD,
        executor: Executor | None = None,
    ) -> None:
        wbits = _WBITS[coding]
        if strategy is None:
            self._zobj = zlib.compressobj(wbits=wbits)
        else:
            self._zobj = zlib.compressobj(wbits=wbits, strategy=strategy)
        self._threshold = threshold
        self._executor = executor

    async def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        """Compress a piece of the body; the output may be empty (zlib keeps it for later)."""
        return await self._run(self._zobj.compress, data)

    async def compress_all(self, data: bytes | bytearray | memoryview) -> bytes:
        """Compress a whole body and finish the stream, in one executor hop if it is large."""
        return await self._run(self._all, data)

    def finish(self) -> bytes:
        """The end of the stream: whatever zlib still holds, and the trailer."""
        return self._zobj.flush()

    def _all(self, data: bytes | bytearray | memoryview) -> bytes:
        return self._zobj.compress(data) + self._zobj.flush()

    async def _run(
        self,
        work: Callable[[bytes | bytearray | memoryview], bytes],
        data: bytes | bytearray | memoryview,
    ) -> bytes:
        threshold = self._threshold
        if threshold is not None and len(data) > threshold:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, work, data)
        return work(data)
