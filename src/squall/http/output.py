"""Output: the write side of one connection. Every byte sent goes through it, in order."""

from __future__ import annotations

import asyncio
from typing import Final

__all__ = ("OUT_LIMIT", "Output")

OUT_LIMIT: Final = 65536  # bytes gathered during one read before they are written anyway


class Output:
    """Writes to the transport, gathering what is answered while one read is handled.

    While the connection handles the bytes of one read (``gather()`` ... ``release()``), the
    answers made on the spot are joined and written once: a pipelined batch costs one syscall,
    not one per response. It also owns the write-side flow control (``write_paused``,
    ``drain()``), the bookkeeping of a client that stops reading (``stall_since``), and the
    "connection lost" future.
    """

    __slots__ = (
        "_drain_waiters",
        "_gathering",
        "_loop",
        "_lost",
        "_parts",
        "_size",
        "stall_looked",
        "stall_since",
        "stall_size",
        "transport",
        "write_paused",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop  # None: the running loop, when one is needed (a mocked request's)
        self.transport: asyncio.Transport | None = None
        self._gathering = False
        self._parts: list[bytes] = []
        self._size = 0
        self.write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._lost: asyncio.Future[None] | None = None
        self.stall_since = 0.0  # when the write buffer filled up without draining since; 0: not
        self.stall_looked = False  # whether the tick has looked at it since it filled up
        self.stall_size = 0  # its size at the tick's last look

    def write(self, data: bytes) -> None:
        """Send ``data``; raises ConnectionResetError once the connection is gone."""
        transport = self.transport
        if transport is None:
            raise ConnectionResetError("Cannot write to closing transport")
        if self._gathering:
            self._parts.append(data)
            self._size += len(data)
            if self._size > OUT_LIMIT:  # a big body written eagerly: let backpressure see it
                self.flush()
        else:
            transport.write(data)

    def gather(self) -> None:
        """Hold what is written until :meth:`release` (one read's answers, one write)."""
        self._gathering = True

    def release(self) -> None:
        """Write what was gathered, and write straight through again."""
        self._gathering = False
        if self._parts:
            self.flush()

    def flush(self) -> None:
        """Write what is gathered now (before bytes that bypass the transport: sendfile)."""
        parts = self._parts
        if parts:
            transport = self.transport
            if transport is not None:
                transport.write(parts[0] if len(parts) == 1 else b"".join(parts))
            parts.clear()
            self._size = 0

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self.transport is None:
            raise ConnectionResetError("Connection lost")
        if not self.write_paused:
            return
        fut = self._get_loop().create_future()
        self._drain_waiters.append(fut)
        await fut

    def lost(self) -> asyncio.Future[None]:
        """A future (shared: never cancel it) that completes when the connection is lost."""
        fut = self._lost
        if fut is None:
            fut = self._lost = self._get_loop().create_future()
            if self.transport is None:
                fut.set_result(None)
        return fut

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop or asyncio.get_running_loop()

    # -- the transport's callbacks, relayed by the connection ---------------------------------

    def pause_writing(self) -> None:
        self.write_paused = True
        self.stall_since = self._get_loop().time()
        self.stall_looked = False

    def resume_writing(self) -> None:
        self.write_paused = False
        self.stall_since = 0.0
        waiters = self._drain_waiters
        self._drain_waiters = []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def connection_lost(self) -> None:
        self.transport = None
        self._parts.clear()
        self._size = 0
        self.stall_since = 0.0
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        lost = ConnectionResetError("Connection lost")
        for fut in self._drain_waiters:
            if not fut.done():
                fut.set_exception(lost)
        self._drain_waiters.clear()

    def half_close(self, peer_done: bool) -> bool:
        """Close gently after what is written: half-close (``write_eof``) and return True, so
        that the connection keeps reading (and dropping) briefly, since closing with the
        client's bytes unread would reset the connection and lose the answer; or close at once
        (the client has closed its side, or the transport cannot half-close) and return False."""
        transport = self.transport
        if transport is None:
            return False
        if peer_done or not transport.can_write_eof():
            transport.close()
            return False
        try:
            transport.write_eof()
        except OSError:
            transport.close()
            return False
        return True

    def stalled_for(self, now: float) -> float:
        """Seconds the client has read none of a full write buffer (0.0 while it reads)."""
        transport = self.transport
        if transport is None:
            self.stall_since = 0.0
            return 0.0
        size = transport.get_write_buffer_size()
        if not self.stall_looked or size < self.stall_size:  # first look, or the client read
            if self.stall_looked:
                self.stall_since = now
            self.stall_looked = True
            self.stall_size = size
            return 0.0
        return now - self.stall_since
