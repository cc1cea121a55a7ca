"""What the connections of one server share: the handler, the limits, the clock, the count."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from .limits import Limits
from .proxy import TrustedProxies
from .stats import KINDS, tcp_bytes

__all__ = ("Shared",)


class Shared:
    """Held by :class:`~squall.http.server.HttpServer` and every connection it makes.

    ``handler`` makes the coroutine answering one request (``handler(exchange, connection)``);
    ``now`` is the loop's clock at the server's last tick; ``admitted`` counts the connections
    counted against ``limits.max_connections``; ``closing`` is set once the server shuts down;
    ``connections`` holds the open ones (HTTP/1.x and HTTP/2 protocols alike); ``http2``: whether
    a connection may speak HTTP/2 (http/preface.py); ``proxy_protocol``: the peers whose
    connections begin with a PROXY protocol header (None: off; http/proxy_protocol.py).
    ``errors`` counts refusals and timeouts by kind (http/stats.py's indexes); ``received``
    and ``sent`` the bytes of the connections closed so far, counted only while
    ``count_bytes`` is set (metrics on).
    """

    __slots__ = (
        "admitted",
        "closing",
        "connections",
        "count_bytes",
        "errors",
        "handler",
        "handler_cancellation",
        "http2",
        "limits",
        "loop",
        "now",
        "proxy_protocol",
        "received",
        "sent",
    )

    def __init__(
        self,
        handler: Callable[..., Coroutine[Any, Any, None]],
        limits: Limits,
        loop: asyncio.AbstractEventLoop,
        handler_cancellation: bool,
        http2: bool = False,
        proxy_protocol: TrustedProxies | None = None,
    ) -> None:
        self.handler = handler
        self.limits = limits
        self.loop = loop
        self.handler_cancellation = handler_cancellation
        self.http2 = http2
        self.proxy_protocol = proxy_protocol
        self.connections: set[Any] = set()
        self.admitted = 0
        self.closing = False
        self.now = 0.0
        self.errors = [0] * len(KINDS)
        self.count_bytes = False
        self.received = 0
        self.sent = 0

    def closed(self, transport: Any) -> None:
        """A connection on ``transport`` is closing: add its bytes to the totals."""
        counts = tcp_bytes(transport)
        if counts is not None:
            self.received += counts[0]
            self.sent += counts[1]
