"""Response content codings: Accept-Encoding negotiation and the codecs.

Negotiation is aiohttp 3.14's: deflate whenever the client accepts it, else gzip, else none;
q-values do not reorder, ``identity`` and ``*`` never select a compression. Unlike aiohttp, a
coding refused with ``q=0`` is never used. aiohttp's server compresses with deflate and gzip
only; squall also offers ``br`` (the ``brotli`` or ``brotlicffi`` package) and ``zstd`` (the
``zstandard`` package) when installed, but only on request, so an aiohttp application answers
exactly as it does on aiohttp: ``force=ContentCoding.br``, or for negotiation the application's
:data:`COMPRESSION_PREFERENCE` (the codings it prefers, in order; the client's q-values rank
first, the application's order breaks ties).
"""

from __future__ import annotations

import asyncio
import enum
import importlib
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Final

from .keys import AppKey

if TYPE_CHECKING:
    from multidict import CIMultiDict

__all__ = (
    "COMPRESSION_PREFERENCE",
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
    br = "br"  # squall's: forced or preferred only, when brotli/brotlicffi is installed
    zstd = "zstd"  # squall's: forced or preferred only, when zstandard is installed


Preference = tuple["str | ContentCoding", ...]

COMPRESSION_PREFERENCE: Final[AppKey[Preference]] = AppKey("COMPRESSION_PREFERENCE", tuple)
"""squall's extension: the codings ``enable_compression()`` negotiates, in the application's
order of preference, e.g. ``app[web.COMPRESSION_PREFERENCE] = ("zstd", "br", "gzip")``. Of those
the client accepts and this process can make, the one with the highest q-value wins, ties going
to the earlier; codings not listed are never chosen. Unset: aiohttp's negotiation. Read from
``request.config_dict`` (a sub-application may set its own)."""


_WBITS = {
    ContentCoding.deflate: zlib.MAX_WBITS,  # RFC 9110 "deflate": the zlib format
    ContentCoding.gzip: 16 + zlib.MAX_WBITS,
}

_ALIASES = {"x-gzip": "gzip"}  # RFC 9110 8.4.1.3
_CHOSEN: dict[str, ContentCoding | None] = {}
_PREFERRED: dict[tuple[tuple[Any, ...], str], ContentCoding | None] = {}


def negotiate(
    accept_encoding: str, preference: Sequence[str | ContentCoding] | None = None
) -> ContentCoding | None:
    """The coding to compress with for this Accept-Encoding value, or None for none;
    ``preference``: see :data:`COMPRESSION_PREFERENCE` (None: aiohttp's choice)."""
    if preference is not None:
        return _preferred(accept_encoding, tuple(preference))
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


def _preferred(accept_encoding: str, preference: tuple[Any, ...]) -> ContentCoding | None:
    key = (preference, accept_encoding)
    try:
        return _PREFERRED[key]
    except KeyError:
        pass
    try:
        codings = [ContentCoding(c) if isinstance(c, str) else c for c in preference]
    except ValueError as exc:
        raise ValueError(f"COMPRESSION_PREFERENCE: {exc}") from None
    qvalues: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        name = name.strip()
        qvalues[_ALIASES.get(name, name)] = _qvalue(params)
    chosen: ContentCoding | None = None
    best = 0.0  # q=0: refused
    for coding in codings:
        q = qvalues.get(coding.value, 0.0)
        if q > best and coding is not ContentCoding.identity and available(coding):
            chosen, best = coding, q
    if len(_PREFERRED) < 256:
        _PREFERRED[key] = chosen
    return chosen


def _qvalue(params: str) -> float:
    """A coding's q-value (RFC 9110 12.4.2): 1 when absent or malformed."""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 1.0
            return q if 0.0 <= q <= 1.0 else 1.0
    return 1.0


def _refused(params: str) -> bool:
    """Whether a coding's parameters carry ``q=0`` (a malformed q-value does not refuse)."""
    return _qvalue(params) == 0.0


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
