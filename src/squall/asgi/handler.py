"""ASGIHandler: the ``http`` scope of ASGI 3 served straight from squall's wire layer.

It builds the scope and runs the application with one :class:`~.cycle.Cycle` per request (the
``receive``/``send`` pair over the request's :class:`~squall.http.exchange.Exchange`). No Task
is created per request: the handler runs in the connection's task, eagerly while it does not
suspend.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_to_bytes

from ..http.exchange import FIXED_LENGTH, NO_BODY
from ..http.proxy import TrustedProxies, forwarding
from ..jsonlog import REQUEST_ID_HEADER, access_json
from ..metrics import Metrics, asgi_route_label
from .cycle import Cycle
from .types import ASGI_VERSION, ASGIApp, Message, Scope, Send
from .websocket import WebSocketSession, handshake_refused, is_websocket

if TYPE_CHECKING:
    from ..http.connection import Connection
    from ..http.exchange import Exchange

__all__ = ("ASGIHandler",)

_PATH_CACHE_MAX: Final = 1024
_INFO: Final = logging.INFO


class ASGIHandler:
    """Serve an ASGI 3 application's ``http`` scope; give it to :class:`~squall.http.HttpServer`.

    ``root_path`` is the prefix the application is mounted at (it is prepended to ``path`` and
    ``raw_path``, as uvicorn does). ``state`` is the lifespan state: every request's scope gets a
    shallow copy of it under ``"state"``; with ``None`` (no lifespan), scopes have no ``state``.

    ``access_log``: the logger of one line per request (None: none), at info level;
    ``access_log_format`` ``"default"`` is uvicorn's line, ``"json"`` one JSON object (squall's
    jsonlog.py) with the value of the ``request_id_header`` request header as ``request_id``.
    """

    __slots__ = (
        "_access_log",
        "_app",
        "_conn",
        "_conn_info",
        "_json_log",
        "_metrics",
        "_paths",
        "_request_id",
        "_root",
        "_root_raw",
        "_trusted",
        "root_path",
        "state",
    )

    def __init__(
        self,
        app: ASGIApp,
        root_path: str = "",
        *,
        state: dict[str, Any] | None = None,
        trusted_proxies: TrustedProxies | None = None,
        access_log: logging.Logger | None = None,
        access_log_format: str = "default",
        request_id_header: str | None = REQUEST_ID_HEADER,
        metrics: Metrics | None = None,
    ) -> None:
        if access_log_format not in ("default", "json"):
            raise ValueError(f"access_log_format: 'default' or 'json', not {access_log_format!r}")
        self._app = app
        self._metrics = metrics  # (squall/metrics.py; None: off)
        self._access_log = access_log
        self._json_log = access_log_format == "json"
        self._request_id = request_id_header.lower().encode("latin-1") if request_id_header else b""
        self._trusted = trusted_proxies
        self.root_path = root_path
        self.state = state
        self._root = root_path
        self._root_raw = root_path.encode("utf-8")
        self._paths: dict[bytes, tuple[str, bytes]] = {}
        # The scope parts fixed per connection, for the connection seen last (keep-alive and
        # pipelined requests come in runs on one connection).
        self._conn: Connection | None = None
        self._conn_info: tuple[str, Any, Any] = ("http", None, None)

    async def __call__(self, raw: Exchange, conn: Connection) -> None:
        """Run the application for one request; every outcome ends as a response or a close."""
        if raw.upgrade and is_websocket(raw):
            await self._websocket(raw, conn)
            return
        logger = self._access_log
        if (logger is not None and logger.isEnabledFor(_INFO)) or self._metrics is not None:
            await self._logged(raw, conn)
            return
        cycle = Cycle(raw, conn)
        try:
            await self._app(self.scope(raw, conn), cycle.receive, cycle.send)
        except Exception as exc:
            cycle.crashed(exc)
        else:
            if not raw.complete:
                cycle.unfinished()

    async def _logged(self, raw: Exchange, conn: Connection) -> None:
        """:meth:`__call__` with the access log or metrics on: timed, and (JSON) the body bytes
        counted."""
        start = time.perf_counter()
        cycle = Cycle(raw, conn)
        scope = self.scope(raw, conn)
        counted = _Counted(cycle.send) if self._json_log else None
        try:
            await self._app(scope, cycle.receive, cycle.send if counted is None else counted)
        except Exception as exc:
            cycle.crashed(exc)
        else:
            if not raw.complete:
                cycle.unfinished()
        metrics = self._metrics
        if metrics is not None:
            metrics.observe(
                raw.method,
                asgi_route_label(scope, raw.status),
                raw.status,
                time.perf_counter() - start,
            )
            logger = self._access_log
            if logger is None or not logger.isEnabledFor(_INFO):
                return
        if counted is None:
            self._log_access(raw, conn, raw.status)
            return
        if raw.framing == NO_BODY:
            size = 0
        elif raw.framing == FIXED_LENGTH:
            size = min(raw.sent, raw.declared)
        else:
            size = counted.size
        self._log_json(raw, scope, raw.status, size, time.perf_counter() - start)

    def _log_access(
        self, raw: Exchange, conn: Connection, status: int | str, websocket: bool = False
    ) -> None:
        """One line per request, uvicorn's format: client - "METHOD target HTTP/x" status."""
        logger = self._access_log
        if logger is None or not logger.isEnabledFor(logging.INFO):
            return
        peer = conn.peername
        client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "-"
        target = raw.target.decode("latin-1")
        line = f"WebSocket {target}" if websocket else f"{raw.method} {target} HTTP/{raw.version}"
        logger.info('%s - "%s" %s', client, line, status)

    def _log_json(
        self, raw: Exchange, scope: Scope, status: int | str, size: int, duration: float
    ) -> None:
        """One JSON object per request (jsonlog.py's fields, as the aiohttp interface's)."""
        logger = self._access_log
        if logger is None:
            return
        user_agent = request_id = None
        wanted = self._request_id
        for name, value in raw.headers:
            lowered = name.lower()
            if lowered == b"user-agent":
                user_agent = value.decode("latin-1")
            elif lowered == wanted:
                request_id = value.decode("latin-1")
        client = scope["client"]
        try:
            line = access_json(
                client[0] if client else None,
                raw.method,
                scope["path"],
                scope["query_string"].decode("latin-1"),
                f"HTTP/{raw.version}",
                status,
                size,
                duration,
                user_agent,
                request_id,
            )
            logger.info(line)
        except Exception:
            logger.exception("Error in logging")

    async def _websocket(self, raw: Exchange, conn: Connection) -> None:
        if handshake_refused(raw):
            return
        scope = self.scope(raw, conn)
        scope["type"] = "websocket"
        scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
        del scope["method"]
        scope["subprotocols"] = [
            p.strip()
            for name, value in raw.headers
            if name.lower() == b"sec-websocket-protocol"
            for p in value.decode("latin-1").split(",")
            if p.strip()
        ]
        scope["extensions"] = {"websocket.http.response": {}}
        session = WebSocketSession(raw, conn)
        logger = self._access_log
        start = time.perf_counter() if logger is not None and self._json_log else 0.0
        try:
            await self._app(scope, session.receive, session.send)
        except Exception as exc:
            session.crashed(exc)
        else:
            await session.finish()
        if logger is None:
            return
        if not start:
            self._log_access(raw, conn, session.outcome, websocket=True)
        elif logger.isEnabledFor(_INFO):
            outcome = session.outcome
            status = 101 if outcome == "[accepted]" else outcome
            self._log_json(raw, scope, status, 0, time.perf_counter() - start)

    def scope(self, raw: Exchange, conn: Connection) -> Scope:
        """The ASGI ``http`` scope of one request."""
        if conn is not self._conn:
            self._conn = conn
            self._conn_info = _conn_info(conn)
        scheme, client, server = self._conn_info
        target = raw.target
        raw_path, _, query = target.partition(b"?")
        cached = self._paths.get(raw_path)
        if cached is None:
            cached = self._decode_path(raw_path)
        path, full_raw = cached
        scope: Scope = {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": raw.version,
            "method": raw.method,
            "scheme": scheme,
            "path": path,
            "raw_path": full_raw,
            "query_string": query,
            "root_path": self._root,
            "headers": [(name.lower(), value) for name, value in raw.headers],
            "client": client,
            "server": server,
        }
        if self.state is not None:
            scope["state"] = self.state.copy()
        if raw.version == "2":
            scope["extensions"] = {"http.response.trailers": {}}
        if self._trusted is not None:
            found = forwarding(self._trusted, conn.peername, raw.headers)
            if found is not None:
                remote, forwarded_scheme, _ = found  # Host stays as sent, as in uvicorn
                if remote is not None:
                    scope["client"] = (remote, 0)
                if forwarded_scheme is not None:
                    scope["scheme"] = forwarded_scheme
        return scope

    def _decode_path(self, raw_path: bytes) -> tuple[str, bytes]:
        key = raw_path
        if raw_path[:1] != b"/" and raw_path != b"*":
            # absolute-form ("http://host/path"): the path starts after the authority
            scheme_end = raw_path.find(b"://")
            if scheme_end > 0:
                slash = raw_path.find(b"/", scheme_end + 3)
                raw_path = raw_path[slash:] if slash >= 0 else b"/"
        if b"%" in raw_path:
            path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
        else:
            path = raw_path.decode("utf-8", "replace")
        result = (self._root + path, self._root_raw + raw_path)
        if len(self._paths) < _PATH_CACHE_MAX:
            self._paths[key] = result
        return result


class _Counted:
    """The application's ``send``, counting the response body bytes it is given."""

    __slots__ = ("send", "size")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.size = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            self.size += len(message.get("body", b""))
        await self.send(message)


def _conn_info(conn: Connection) -> tuple[str, Any, Any]:
    transport = conn.transport
    scheme = "http"
    if transport is not None and transport.get_extra_info("sslcontext") is not None:
        scheme = "https"
    return scheme, _address(conn.peername), _address(conn.sockname, unix_ok=True)


def _address(addr: Any, unix_ok: bool = False) -> Any:
    if isinstance(addr, (tuple, list)) and len(addr) >= 2:
        return (str(addr[0]), int(addr[1]))
    if unix_ok and isinstance(addr, str) and addr:
        return (addr, None)
    return None
