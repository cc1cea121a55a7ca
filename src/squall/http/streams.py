"""StreamReader: a request body as aiohttp's ``request.content``, with read-side backpressure;
BodyWatch: the server tick's look at a body still arriving (``body_timeout``, ``min_body_rate``)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Final, Protocol

from .._mypyc import mypyc_attr

if TYPE_CHECKING:
    from .limits import Limits

log = logging.getLogger("squall.server")


class EofStream(Exception):
    """Raised by ``readchunk``-style loops internally when the stream has ended."""


class FlowControl(Protocol):
    """What a stream needs from its connection: pause and resume reading the socket."""

    def pause_reading_body(self) -> None: ...
    def resume_reading_body(self) -> None: ...


@mypyc_attr(allow_interpreted_subclasses=True)
class StreamReader:
    """Buffered body bytes fed by the protocol and read by the handler.

    The API is aiohttp's ``StreamReader`` (``read``, ``readany``, ``readexactly``, ``readline``,
    ``readchunk``, the ``iter_*`` helpers). When more than ``high_water`` bytes are buffered the
    connection stops reading the socket until the handler has consumed half of them.
    """

    __slots__ = (
        "_buffer",
        "_continue",
        "_eof",
        "_eof_waiters",
        "_exception",
        "_flow",
        "_high_water",
        "_low_water",
        "_paused",
        "_size",
        "_total",
        "_waiter",
    )

    def __init__(self, flow: FlowControl | None, high_water: int = 2**18) -> None:
        self._flow = flow
        self._high_water = high_water
        self._low_water = high_water // 2
        self._buffer: deque[bytes] = deque()
        self._size = 0
        self._total = 0
        self._eof = False
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._eof_waiters: list[asyncio.Future[None]] = []
        self._exception: BaseException | None = None
        self._continue: Callable[[], None] | None = None

    def __repr__(self) -> str:
        state = "eof" if self._eof else f"{self._size} bytes"
        return f"<StreamReader {state}>"

    # -- the producer side (the protocol) -------------------------------------------------

    def set_continue(self, send_continue: Callable[[], None]) -> None:
        """Arrange for ``100 Continue`` to be sent the first time the reader waits for data."""
        self._continue = send_continue

    def take_continue(self) -> bool:
        """Whether a ``100 Continue`` was still owed; it no longer is (the caller sends it)."""
        pending = self._continue is not None
        self._continue = None
        return pending

    def get_read_buffer_limits(self) -> tuple[int, int]:
        """(low, high) water marks in bytes: reading pauses past high, resumes at low."""
        return (self._low_water, self._high_water)

    def send_continue(self) -> None:
        """Send a still-owed ``100 Continue`` now rather than at the first wait for data (an
        application's expect handler that answers the expectation itself)."""
        send = self._continue
        if send is not None:
            self._continue = None
            send()

    def drop_unread(self) -> bool:
        """Forget what the reader left unread (its request is answered); True if the buffer
        had paused the connection's reading, which the caller then resumes."""
        self._buffer.clear()
        self._size = 0
        paused = self._paused
        self._paused = False
        return paused

    def feed_data(self, data: bytes) -> None:
        if not data:
            return
        self._buffer.append(data)
        self._size += len(data)
        self._total += len(data)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self._size > self._high_water and not self._paused and self._flow is not None:
            self._paused = True
            self._flow.pause_reading_body()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake_all(None)

    def set_exception(self, exc: BaseException) -> None:
        self._exception = exc
        self._wake_all(exc)

    def _wake_all(self, exc: BaseException | None) -> None:
        """The body ended (``exc`` None) or failed: wake the reader and every wait_eof()."""
        self._continue = None
        waiters = self._eof_waiters
        if self._waiter is not None:
            waiters.append(self._waiter)
            self._waiter = None
        # Woken with a result, never the exception: the readers raise it themselves (below),
        # so a reader that is cancelled meanwhile leaves no "exception never retrieved".
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        waiters.clear()

    def exception(self) -> BaseException | None:
        return self._exception

    # -- state ----------------------------------------------------------------------------

    def is_eof(self) -> bool:
        """True once the body has been fully received (bytes may still be buffered)."""
        return self._eof

    def at_eof(self) -> bool:
        """True once the body has been fully received and fully read."""
        return self._eof and not self._buffer

    @property
    def total_bytes(self) -> int:
        return self._total

    @property
    def continue_owed(self) -> bool:
        """Whether a ``100 Continue`` is still to be sent (the client waits for it)."""
        return self._continue is not None

    @property
    def awaited(self) -> bool:
        """Whether the reader is waiting for more bytes right now."""
        return self._waiter is not None

    async def wait_eof(self) -> None:
        if self._eof:
            return
        fut = asyncio.get_running_loop().create_future()
        self._eof_waiters.append(fut)
        await fut
        exc = self.exception()
        if exc is not None:
            raise exc

    # -- the consumer side (the handler) --------------------------------------------------

    async def _wait(self) -> None:
        if self._exception is not None:
            raise self._exception
        send_continue = self._continue
        if send_continue is not None:
            self._continue = None
            send_continue()
        fut = asyncio.get_running_loop().create_future()
        self._waiter = fut
        try:
            await fut
        finally:
            self._waiter = None
        # (through the method: a compiled build narrows the attribute to None after the test
        # above, across the await, and would reject the exception set meanwhile)
        exc = self.exception()
        if exc is not None:
            raise exc

    def _take(self, n: int) -> bytes:
        """Remove and return up to ``n`` bytes (all if ``n < 0``) from the buffer."""
        buf = self._buffer
        if n < 0 or n >= self._size:
            data = buf[0] if len(buf) == 1 else b"".join(buf)
            buf.clear()
        else:
            first = buf[0]
            if len(first) > n:
                data = first[:n]
                buf[0] = first[n:]
            else:
                parts = []
                need = n
                while need:
                    chunk = buf[0]
                    if len(chunk) <= need:
                        parts.append(buf.popleft())
                        need -= len(chunk)
                    else:
                        parts.append(chunk[:need])
                        buf[0] = chunk[need:]
                        need = 0
                data = b"".join(parts)
        self._size -= len(data)
        if self._paused and self._size <= self._low_water and self._flow is not None:
            self._paused = False
            self._flow.resume_reading_body()
        return data

    def read_nowait(self, n: int = -1) -> bytes:
        if self._exception is not None:
            raise self._exception
        return self._take(n) if self._buffer else b""

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes, or everything until EOF when ``n`` is -1."""
        if n == 0:
            return b""
        if n < 0:
            # Take the bytes as they come (as aiohttp does): a body larger than the high-water
            # mark would otherwise pause reading for good, and its EOF would never come.
            parts: list[bytes] = []
            while not self._eof:
                if self._buffer:
                    parts.append(self._take(-1))
                await self._wait()
            if self._exception is not None:
                raise self._exception
            if self._buffer:
                parts.append(self._take(-1))
            return parts[0] if len(parts) == 1 else b"".join(parts)
        while not self._buffer and not self._eof:
            await self._wait()
        return self.read_nowait(n)

    async def readany(self) -> bytes:
        """Read whatever is buffered, waiting for at least one byte unless at EOF."""
        while not self._buffer and not self._eof:
            await self._wait()
        return self.read_nowait(-1)

    async def readchunk(self) -> tuple[bytes, bool]:
        """Read the next received piece; the flag is aiohttp's end-of-HTTP-chunk marker."""
        while not self._buffer and not self._eof:
            await self._wait()
        if not self._buffer:
            return b"", False
        return self._take(len(self._buffer[0])), False

    async def readexactly(self, n: int) -> bytes:
        while self._size < n and not self._eof:
            await self._wait()
        if self._size < n:
            partial = self._take(-1) if self._buffer else b""
            raise asyncio.IncompleteReadError(partial, n)
        return self._take(n)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        if not separator:
            raise ValueError("Separator should be at least one-byte string")
        while True:
            if self._buffer:
                joined = b"".join(self._buffer)
                self._buffer.clear()
                self._buffer.append(joined)
                idx = joined.find(separator)
                if idx >= 0:
                    return self._take(idx + len(separator))
                if self._size > self._high_water:
                    raise ValueError("Chunk too big")
            if self._eof:
                return self._take(-1) if self._buffer else b""
            await self._wait()

    async def readline(self) -> bytes:
        return await self.readuntil(b"\n")

    def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        """Yield pieces of at most ``n`` bytes."""
        return _Iter(lambda: self.read(n))

    def iter_any(self) -> AsyncIterator[bytes]:
        """Yield pieces as they arrive."""
        return _Iter(self.readany)

    def iter_chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        """Yield ``(data, end_of_http_chunk)`` pairs as ``readchunk`` returns them."""
        return _ChunkIter(self)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Iter(self.readline)


class _Iter:
    __slots__ = ("_read",)

    def __init__(self, read: Callable[[], object]) -> None:
        self._read = read

    def __aiter__(self) -> _Iter:
        return self

    async def __anext__(self) -> bytes:
        data: bytes = await self._read()  # type: ignore[misc]
        if not data:
            raise StopAsyncIteration
        return data


class _ChunkIter:
    __slots__ = ("_stream",)

    def __init__(self, stream: StreamReader) -> None:
        self._stream = stream

    def __aiter__(self) -> _ChunkIter:
        return self

    async def __anext__(self) -> tuple[bytes, bool]:
        data, end = await self._stream.readchunk()
        if not data and not end:
            raise StopAsyncIteration
        return data, end


class _EmptyStreamReader(StreamReader):
    """The body of a request that has none: always at EOF, shared by all such requests."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(None)
        self._eof = True

    def feed_data(self, data: bytes) -> None:  # pragma: no cover - never fed
        raise RuntimeError("EMPTY_PAYLOAD cannot be fed")

    def feed_eof(self) -> None:
        pass


EMPTY_PAYLOAD: Final[StreamReader] = _EmptyStreamReader()


class BodyWatch:
    """Whether a request body still arriving may go on, looked at once a tick (HTTP/1.1: one
    per connection, reused; HTTP/2: one per stream with a body).

    Two rules, both answered 408: the handler has waited ``body_timeout`` for a byte; or, once
    ``body_grace`` has passed, the body has come slower than ``min_body_rate`` (Apache
    mod_reqtimeout's MinRate: after ``body_grace + n / min_body_rate`` seconds, n bytes are not
    enough). The seconds in which the server was not reading (its backpressure, a 100 Continue
    not sent yet) are not the client's: ``start`` moves later by them, to the tick's precision.
    """

    __slots__ = ("seen", "since", "start", "tick")

    def __init__(self) -> None:
        self.seen = 0  # body bytes at the last look
        self.since = 0.0  # when they last grew (or nobody waited for them)
        self.start = 0.0  # when the body began, moved later by the server's own pauses
        self.tick = 0.0  # the last look

    def begin(self, now: float) -> None:
        """A body begins (its head has just arrived)."""
        self.seen = 0
        self.start = self.tick = self.since = now

    def verdict(self, limits: Limits, body: StreamReader, now: float, paused: bool) -> str:
        """ "" if the body may go on, else why it fails. ``paused``: the server is not reading
        it now (backpressure)."""
        seen = body.total_bytes
        if paused or body.continue_owed:
            self.start += now - self.tick
        self.tick = now
        if seen != self.seen or not body.awaited:  # progress, or no one waits
            self.seen = seen
            self.since = now
        elif now - self.since >= limits.body_timeout:
            return "Request body not received in time"
        rate = limits.min_body_rate
        if rate > 0:
            late = now - self.start - limits.body_grace
            if late > 0.0 and seen < late * rate:
                log.info(
                    "Request body too slow: %d bytes in %.0f s (min_body_rate %d): 408",
                    seen,
                    now - self.start,
                    rate,
                )
                return "Request body too slow"
        return ""
