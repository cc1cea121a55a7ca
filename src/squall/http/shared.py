"""What the connections of one server share: the handler, the limits, the clock, the count."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from .limits import Limits
from .proxy import TrustedProxies

__all__ = ("Shared",)


class Shared:
    """Held by :class:`~squall.http.server.HttpServer` and every connection it makes.

    ``handler`` makes the coroutine answering one request (``handler(exchange, connection)``);
    ``now`` is the loop's clock at the server's last tick; ``admitted`` counts the connections
    counted against ``limits.max_connections``; ``closing`` is set once the server shuts down;
    ``connections`` holds the open ones (HTTP/1.x and HTTP/2 protocols alike); ``http2``: whether
    a connection may speak HTTP/2 (http/preface.py); ``proxy_protocol``: the peers whose
    connections begin with a PROXY protocol header (None: off; http/proxy_protocol.py).
    """

    __slots__ = (
        "admitted",
        "closing",
        "connections",
        "handler",
        "handler_cancellation",
        "http2",
        "limits",
        "loop",
        "now",
        "proxy_protocol",
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
