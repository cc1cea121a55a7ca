"""aiohttp's low-level server: ``web.Server(handler)`` and ``web.ServerRunner``, no routing.

The handler gets every request as a :class:`BaseRequest` and returns a response, as in
aiohttp's "Low Level Server" documentation; everything under it is squall's own server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..http.errors import RequestPayloadError
from ..http.limits import Limits
from ..http.server import HttpServer
from .exceptions import HTTPException, HTTPInternalServerError
from .handler import _internal_error
from .request import BaseRequest, payload_error
from .response import StreamResponse
from .runner import BaseRunner

if TYPE_CHECKING:
    from ..http.connection import Connection
    from ..http.exchange import Exchange

__all__ = ("Server", "ServerRunner")

log = logging.getLogger("squall.server")

LowLevelHandler = Callable[[BaseRequest], Awaitable[StreamResponse]]
_LIMIT_KEYS = ("max_line_size", "max_field_size", "max_headers", "keepalive_timeout")


class _Bridge:
    """Runs the user's handler for one request and writes what it returns."""

    __slots__ = ("client_max_size", "handler", "server")

    def __init__(self, handler: LowLevelHandler, client_max_size: int) -> None:
        self.handler = handler
        self.client_max_size = client_max_size
        self.server: Server | None = None

    async def __call__(self, raw: Exchange, conn: Connection) -> None:
        if self.server is not None:
            self.server.requests_count += 1
        request = BaseRequest(raw, conn, None, self.client_max_size)  # type: ignore[arg-type]
        try:
            resp: Any = await self.handler(request)
        except HTTPException as exc:
            resp = exc
        except RequestPayloadError as exc:
            raw.keep_alive = False
            if raw.started:
                return
            resp = payload_error(exc)
        except Exception as exc:
            raw.keep_alive = False
            log.error("Error handling request", exc_info=exc)
            if raw.started:
                return
            resp = _internal_error(request)
        finally:
            request._close_files()  # post()'s temporary files, as aiohttp
        if not isinstance(resp, StreamResponse):  # a 500, logged with aiohttp's words
            if resp is None:
                log.error("Missing return statement on request handler")
            else:
                log.error("Web-handler should return a response instance, got %r", resp)
            resp = HTTPInternalServerError()
        try:
            if not resp.prepared:
                await resp.prepare(request)
            await resp.write_eof()
        except (ConnectionResetError, RequestPayloadError):
            raw.keep_alive = False


class Server(HttpServer):
    """``web.Server(handler)``: a protocol factory serving ``handler`` for every request.

    Keyword arguments as aiohttp's: ``handler_cancellation``, ``keepalive_timeout``,
    ``max_line_size``, ``max_field_size``, ``max_headers``, ``client_max_size``; ``access_log*``
    are accepted and ignored (no access log here). aiohttp's ``request_factory`` builds requests
    from aiohttp's own protocol objects and has no squall equivalent: it is refused.
    """

    # Counted by the bridge on every request, from the start (HttpServer's property counts
    # only once read).
    requests_count = 0

    def __init__(
        self,
        handler: LowLevelHandler,
        *,
        request_factory: Any = None,
        handler_cancellation: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
        **kwargs: Any,
    ) -> None:
        if request_factory is not None:
            raise TypeError("request_factory is not supported by squall's web.Server")
        limits = Limits()
        for key in (*_LIMIT_KEYS, "header_timeout"):
            if key in kwargs:
                setattr(limits, key, kwargs.pop(key))
        client_max_size = int(kwargs.pop("client_max_size", 1024**2))
        for key in ("access_log", "access_log_class", "access_log_format", "logger"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"Unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        bridge = _Bridge(handler, client_max_size)
        super().__init__(
            bridge, limits=limits, loop=loop, handler_cancellation=handler_cancellation
        )
        bridge.server = self
        self.request_handler = handler
        self.requests_count = 0

    def pre_shutdown(self) -> None:
        """Stop answering with keep-alive: connections close after their current response."""
        self.closing = True
        for conn in list(self.connections):
            conn.shutdown()


class ServerRunner(BaseRunner):
    """Runs a low-level :class:`Server`: ``await runner.setup()``, sites, ``cleanup()``."""

    def __init__(self, web_server: Server, *, handle_signals: bool = False, **kwargs: Any) -> None:
        super().__init__(handle_signals=handle_signals, **kwargs)
        self._web_server = web_server

    async def _make_server(self) -> HttpServer:
        return self._web_server
