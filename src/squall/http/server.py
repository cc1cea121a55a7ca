"""HttpServer: the protocol factory, the per-second tick, and graceful shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .._mypyc import mypyc_attr
from .clock import CLOCK
from .exchange import Exchange
from .limits import Limits
from .protocol import HttpProtocol

RequestHandler = Callable[[Exchange, HttpProtocol], Coroutine[Any, Any, None]]
"""What an application layer gives the wire: a coroutine per request that writes its response."""


@mypyc_attr(allow_interpreted_subclasses=True)
class HttpServer:
    """Creates an :class:`HttpProtocol` per accepted connection and keeps the connection set.

    Timeouts are checked by one tick per second for all connections rather than a timer per
    request, and the same tick refreshes the cached Date header.
    """

    def __init__(
        self,
        handler: RequestHandler,
        *,
        limits: Limits | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        handler_cancellation: bool = False,
    ) -> None:
        self.handler = handler
        self.limits = limits or Limits()
        self.loop = loop or asyncio.get_running_loop()
        self.handler_cancellation = handler_cancellation
        self.connections: set[HttpProtocol] = set()
        self.admitted = 0  # connections counted against limits.max_connections
        self.closing = False
        self.now = 0.0  # the loop's clock at the last tick (see TICK)
        self._tick_handle: asyncio.TimerHandle | None = None
        self._tick()

    def __call__(self) -> HttpProtocol:
        return HttpProtocol(self)

    def _tick(self) -> None:
        loop = self.loop
        now = self.now = loop.time()
        CLOCK.update()
        for conn in [
            c
            for c in self.connections
            if (c._deadline and c._deadline <= now) or c._output.stall_since
        ]:
            if conn._deadline and conn._deadline <= now:
                conn.on_timeout(now)
            if conn._output.stall_since:
                conn.on_write_stall(now)
        # Fire just after the next wall-clock second so the Date header is never stale.
        self._tick_handle = loop.call_later(1.0005 - time.time() % 1.0, self._tick)

    def busy(self) -> bool:
        """True while any connection has a request in flight or queued."""
        return any(c._active is not None or c._pipeline for c in self.connections)

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop taking requests, let those in flight finish within ``timeout``, then close all."""
        self.closing = True
        for conn in list(self.connections):
            conn.shutdown()
            conn.going_away()
        if timeout is None:
            timeout = self.limits.shutdown_timeout
        deadline = self.loop.time() + timeout
        while self.busy() and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        workers = [c._worker for c in self.connections if c._worker is not None]
        for conn in list(self.connections):
            conn.abort()
        if workers:  # let cancelled handlers unwind before the application's cleanup runs
            await asyncio.wait(workers, timeout=1.0)
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
