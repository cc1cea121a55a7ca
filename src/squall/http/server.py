"""HttpServer: the protocol factory, the per-second tick, and graceful shutdown."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .._mypyc import mypyc_attr
from .clock import CLOCK
from .exchange import Exchange
from .limits import Limits
from .preface import ALPN, h2_available
from .protocol import HttpProtocol
from .proxy import TrustedProxies
from .shared import Shared
from .stats import KINDS, tcp_bytes

RequestHandler = Callable[[Exchange, HttpProtocol], Coroutine[Any, Any, None]]
"""What an application layer gives the wire: a coroutine per request that writes its response."""


class _Counting:
    """A server's handler, counting the requests it is given (``requests_count``)."""

    def __init__(self, inner: RequestHandler) -> None:
        self.inner = inner
        self.count = 0

    def __call__(self, exchange: Exchange, conn: HttpProtocol) -> Coroutine[Any, Any, None]:
        self.count += 1
        return self.inner(exchange, conn)


@mypyc_attr(allow_interpreted_subclasses=True)
class HttpServer:
    """Creates an :class:`HttpProtocol` per accepted connection and keeps the connection set.

    Timeouts are checked by one tick per second for all connections rather than a timer per
    request, and the same tick refreshes the cached Date header. ``proxy_protocol``: the peers
    (:class:`~.proxy.TrustedProxies`) whose connections must begin with a PROXY protocol
    header, which then gives the client's address (http/proxy_protocol.py); None: off.
    """

    def __init__(
        self,
        handler: RequestHandler,
        *,
        limits: Limits | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        handler_cancellation: bool = False,
        http2: bool = True,
        proxy_protocol: TrustedProxies | None = None,
    ) -> None:
        self.shared = Shared(
            handler,
            limits or Limits(),
            loop or asyncio.get_running_loop(),
            handler_cancellation,
            http2,
            proxy_protocol,
        )
        self._tick_handle: asyncio.TimerHandle | None = None
        self._tick()

    # What the connections share, as attributes of the server (http/shared.py).

    @property
    def handler(self) -> RequestHandler:
        return self.shared.handler

    @handler.setter
    def handler(self, handler: RequestHandler) -> None:
        """(For the connections made from now on.)"""
        self.shared.handler = handler

    @property
    def limits(self) -> Limits:
        return self.shared.limits

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.shared.loop

    @property
    def handler_cancellation(self) -> bool:
        return self.shared.handler_cancellation

    @property
    def http2(self) -> bool:
        """Whether connections may speak HTTP/2 (ALPN ``h2``, or the preface in cleartext)."""
        return self.shared.http2

    @property
    def proxy_protocol(self) -> TrustedProxies | None:
        """The peers whose connections begin with a PROXY protocol header (None: off)."""
        return self.shared.proxy_protocol

    @property
    def connections(self) -> set[Any]:
        """The open connections: HttpProtocol, or H2Protocol for those speaking HTTP/2."""
        return self.shared.connections

    @property
    def admitted(self) -> int:
        """Connections counted against ``limits.max_connections``."""
        return self.shared.admitted

    @property
    def closing(self) -> bool:
        return self.shared.closing

    @closing.setter
    def closing(self, value: bool) -> None:
        self.shared.closing = value

    @property
    def errors(self) -> dict[str, int]:
        """Refusals and timeouts so far, by kind (http/stats.py's ``KINDS``)."""
        return dict(zip(KINDS, self.shared.errors, strict=True))

    @property
    def count_bytes(self) -> bool:
        """Whether closing connections add their bytes to :meth:`wire_bytes` (metrics on)."""
        return self.shared.count_bytes

    @count_bytes.setter
    def count_bytes(self, value: bool) -> None:
        self.shared.count_bytes = value

    def wire_bytes(self) -> tuple[int, int]:
        """(received, sent) bytes so far, of TCP connections: those closed while
        :attr:`count_bytes` was set, and those open now (read from the kernel, ``TCP_INFO``)."""
        shared = self.shared
        received, sent = shared.received, shared.sent
        for conn in shared.connections:
            counts = tcp_bytes(conn.transport)
            if counts is not None:
                received += counts[0]
                sent += counts[1]
        return received, sent

    @property
    def now(self) -> float:
        """The loop's clock at the last tick (see TICK)."""
        return self.shared.now

    def tls(self, context: ssl.SSLContext | None) -> ssl.SSLContext | None:
        """The context to listen with: with HTTP/2 on, ALPN ``h2`` and ``http/1.1`` are set on
        ``context`` (replacing the list it had), so TLS clients can choose HTTP/2; with it off,
        ``context`` is left as given. Sites and ``squall.asgi.serve`` call this once."""
        if context is not None and self.shared.http2 and h2_available():
            context.set_alpn_protocols(list(ALPN))
        return context

    def __call__(self) -> HttpProtocol:
        return HttpProtocol(self.shared)

    @property
    def requests_count(self) -> int:
        """Requests taken so far (aiohttp's ``web.Server.requests_count``), counted from the
        first time this is read, on the connections made from then on: nothing is counted per
        request unless asked for."""
        handler = self.shared.handler
        if isinstance(handler, _Counting):
            return handler.count
        self.shared.handler = _Counting(handler)
        return 0

    def _tick(self) -> None:
        shared = self.shared
        now = shared.now = shared.loop.time()
        CLOCK.update()
        for conn in [
            c for c in shared.connections if (c.deadline and c.deadline <= now) or c.stalled
        ]:
            if conn.deadline and conn.deadline <= now:
                conn.on_timeout(now)
            if conn.stalled:
                conn.on_write_stall(now)
        # Fire just after the next wall-clock second so the Date header is never stale.
        self._tick_handle = shared.loop.call_later(1.0005 - time.time() % 1.0, self._tick)

    def busy(self) -> bool:
        """True while any connection has a request in flight or queued."""
        return any(c.busy for c in self.connections)

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
        workers = [c.worker for c in self.connections if c.worker is not None]
        for conn in list(self.connections):
            conn.abort()
        if workers:  # let cancelled handlers unwind before the application's cleanup runs
            await asyncio.wait(workers, timeout=1.0)
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
