"""Response content codings: Accept-Encoding negotiation and the codecs.

Negotiation is aiohttp 3.14's: deflate whenever the client accepts it, else gzip, else none;
q-values do not reorder, ``identity`` and ``*`` never select a compression. Unlike aiohttp, a
coding refused with ``q=0`` is never used. aiohttp's server compresses with deflate and gzip
only; squall also offers ``br`` (the ``brotli`` or ``brotlicffi`` package) and ``zstd`` (the
``zstandard`` package) when installed, but only on request (``force=ContentCoding.br``), so an
aiohttp application answers exactly as it does on aiohttp.
"""

from __future__ import annotations

import asyncio
import enum
import importlib
import zlib
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multidict import CIMultiDict

__all__ = (
    "EXECUTOR_THRESHOLD",
    "Compressor",
    "ContentCoding",
    "available",
    "negotiate",
    "vary_on_encoding",
)

# aiohttp's default zlib_executor_size: inputs longer than this are compressed in an executor.
EXECUTOR_THRESHOLD = 4096


class ContentCoding(enum.Enum):
    """The content codings a response can be compressed with (aiohttp's enum)."""

    deflate = "deflate"
    gzip = "gzip"
    identity = "identity"
    br = "br"  # squall's: with force= only, when brotli/brotlicffi is installed
    zstd = "zstd"  # squall's: with force= only, when zstandard is installed


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


def available(coding: ContentCoding) -> bool:
    """Whether this process can compress with ``coding`` (br and zstd need their packages)."""
    if coding is ContentCoding.br:
        return _brotli() is not None
    if coding is ContentCoding.zstd:
        return _zstandard() is not None
    return True


def _brotli() -> Any:
    for name in ("brotli", "brotlicffi"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _zstandard() -> Any:
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        return None


class _Brotli:
    """brotli's streaming compressor with zlib's compress()/flush() names."""

    __slots__ = ("_c",)

    def __init__(self) -> None:
        self._c = _brotli().Compressor()

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        out: bytes = self._c.process(bytes(data))
        return out

    def flush(self) -> bytes:
        out: bytes = self._c.finish()
        return out


class _Zstd:
    """zstandard's streaming compressor with zlib's compress()/flush() names."""

    __slots__ = ("_c",)

    def __init__(self) -> None:
        self._c = _zstandard().ZstdCompressor().compressobj()

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        out: bytes = self._c.compress(bytes(data))
        return out

    def flush(self) -> bytes:
        out: bytes = self._c.flush()
        return out


class Compressor:
    """One compressed stream. Inputs longer than ``threshold`` bytes are compressed in
    ``executor`` (None: the loop's default executor; a threshold of None: never), as aiohttp."""

    __slots__ = ("_executor", "_threshold", "_zobj")

    def __init__(
        self,
        coding: ContentCoding,
        strategy: int | None = None,
        threshold: int | None = EXECUTOR_THRESHOLD,
        executor: Executor | None = None,
    ) -> None:
        self._zobj: Any
        if coding is ContentCoding.br:
            self._zobj = _Brotli()
        elif coding is ContentCoding.zstd:
            self._zobj = _Zstd()
        elif strategy is None:
            self._zobj = zlib.compressobj(wbits=_WBITS[coding])
        else:
            self._zobj = zlib.compressobj(wbits=_WBITS[coding], strategy=strategy)
        self._threshold = threshold
        self._executor = executor

    async def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        """Compress a piece of the body; the output may be empty (zlib keeps it for later)."""
        return await self._run(self._zobj.compress, data)

    async def compress_all(self, data: bytes | bytearray | memoryview) -> bytes:
        """Compress a whole body and finish the stream, in one executor hop if it is large."""
        return await self._run(self._all, data)

    def finish(self) -> bytes:
        """The end of the stream: whatever the codec still holds, and the trailer."""
        out: bytes = self._zobj.flush()
        return out

    def _all(self, data: bytes | bytearray | memoryview) -> bytes:
        out: bytes = self._zobj.compress(data) + self._zobj.flush()
        return out

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
