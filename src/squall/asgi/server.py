"""serve(): run an ASGI application on squall's HTTP server from async code."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl as _ssl
from types import TracebackType

from ..http.limits import Limits
from ..http.proxy import TrustedProxies
from ..http.proxy_protocol import PROXY_PROTOCOL_NO_TLS, proxy_protocol_peers
from ..http.server import HttpServer
from ..jsonlog import REQUEST_ID_HEADER
from ..metrics import Metrics, MetricsListener
from .handler import ASGIHandler
from .lifespan import Lifespan
from .types import ASGIApp

__all__ = ("ASGIServer", "serve")


class ASGIServer:
    """An ASGI application listening on a TCP port: :meth:`start` / :meth:`stop`, or ``async with``.

    Start runs the lifespan startup, then listens; stop closes the listener, lets the requests in
    flight finish (``limits.shutdown_timeout``), closes the connections, then runs the lifespan
    shutdown. ``lifespan=False`` skips the lifespan scope altogether. ``access_log`` (a logger;
    None: no access log), ``access_log_format`` and ``request_id_header`` are
    :class:`ASGIHandler`'s.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        root_path: str = "",
        limits: Limits | None = None,
        lifespan: bool = True,
        ssl: _ssl.SSLContext | None = None,
        backlog: int = 2048,
        forwarded_allow_ips: str | None = None,
        limit_concurrency: int | None = None,
        http2: bool = True,
        access_log: logging.Logger | None = None,
        access_log_format: str = "default",
        request_id_header: str | None = REQUEST_ID_HEADER,
        proxy_protocol: bool | str = False,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
    ) -> None:
        if proxy_protocol and ssl is not None:
            raise ValueError(PROXY_PROTOCOL_NO_TLS)
        if access_log_format not in ("default", "json"):
            raise ValueError(f"access_log_format: 'default' or 'json', not {access_log_format!r}")
        if limit_concurrency:  # most connections served at once; past it, 503 (Limits)
            limits = dataclasses.replace(limits or Limits(), max_connections=limit_concurrency)
        self.app = app
        self.host = host
        self.port = port
        self.root_path = root_path
        self.limits = limits
        self.ssl = ssl
        self.backlog = backlog
        self.forwarded_allow_ips = forwarded_allow_ips
        self.http2 = http2
        self.proxy_protocol = proxy_protocol_peers(proxy_protocol, forwarded_allow_ips)
        self.access_log = access_log
        self.access_log_format = access_log_format
        self.request_id_header = request_id_header
        self.metrics = Metrics() if metrics_port is not None else None
        self.metrics_listener = (
            MetricsListener(self.metrics, metrics_host, metrics_port)
            if self.metrics is not None and metrics_port is not None
            else None
        )
        self.lifespan: Lifespan | None = Lifespan(app) if lifespan else None
        self.http: HttpServer | None = None
        self._listener: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The base URL, with the bound port (useful with ``port=0``)."""
        scheme = "https" if self.ssl is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        """Run the lifespan startup, then start listening."""
        state = None
        if self.lifespan is not None:
            await self.lifespan.startup()
            state = self.lifespan.state
        allow = self.forwarded_allow_ips
        handler = ASGIHandler(
            self.app,
            self.root_path,
            state=state,
            trusted_proxies=TrustedProxies(allow) if allow else None,
            access_log=self.access_log,
            access_log_format=self.access_log_format,
            request_id_header=self.request_id_header,
            metrics=self.metrics,
        )
        loop = asyncio.get_running_loop()
        self.http = HttpServer(
            handler,
            limits=self.limits,
            loop=loop,
            http2=self.http2,
            proxy_protocol=self.proxy_protocol,
        )
        try:
            self._listener = await loop.create_server(
                self.http, self.host, self.port, ssl=self.http.tls(self.ssl), backlog=self.backlog
            )
        except BaseException:
            await self.http.shutdown(0)
            if self.lifespan is not None:
                await self.lifespan.shutdown()
            raise
        sockets = self._listener.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        if self.metrics is not None and self.metrics_listener is not None:
            self.metrics.watch(self.http)
            await self.metrics_listener.start()

    async def stop(self) -> None:
        """Stop listening, finish the requests in flight, then run the lifespan shutdown."""
        if self.metrics_listener is not None:
            await self.metrics_listener.stop()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self.http is not None:
            await self.http.shutdown()
            self.http = None
        if listener is not None:
            await listener.wait_closed()
        if self.lifespan is not None:
            await self.lifespan.shutdown()

    async def __aenter__(self) -> ASGIServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def serve(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    root_path: str = "",
    limits: Limits | None = None,
    lifespan: bool = True,
    ssl: _ssl.SSLContext | None = None,
    forwarded_allow_ips: str | None = None,
    limit_concurrency: int | None = None,
    http2: bool = True,
    access_log: logging.Logger | None = None,
    access_log_format: str = "default",
    request_id_header: str | None = REQUEST_ID_HEADER,
    proxy_protocol: bool | str = False,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> ASGIServer:
    """Serve ``app``: ``async with serve(app, port=0) as server: ...``, or start()/stop().

    ``forwarded_allow_ips``: peers (addresses, CIDR networks, ``*``) whose ``Forwarded`` /
    ``X-Forwarded-For`` / ``X-Forwarded-Proto`` headers set the scope's ``client`` and ``scheme``.
    ``limit_concurrency``: most connections served at once; past it, 503 and close.
    ``http2``: serve HTTP/2 too (prior knowledge in cleartext; over TLS, ALPN ``h2`` and
    ``http/1.1`` are set on ``ssl``); False: HTTP/1.1 only, and ``ssl`` is left as given.
    ``access_log``: a logger for one line per request (``access_log_format`` ``"default"``:
    uvicorn's line; ``"json"``: one JSON object, see docs/guide.md 'Logging'); None: none.
    ``proxy_protocol``: connections from the peers in ``forwarded_allow_ips`` (127.0.0.1 if it is
    not given; or the peers this string lists) begin with a PROXY protocol header (v1 or v2),
    whose client address becomes the scope's ``client`` (docs/deployment.md); not with ``ssl``.
    ``metrics_port``: Prometheus metrics at ``http://metrics_host:metrics_port/metrics``, a
    listener of its own (0: any free port, see ``server.metrics_listener.port``); off by default.
    """
    return ASGIServer(
        app,
        host,
        port,
        root_path=root_path,
        limits=limits,
        lifespan=lifespan,
        ssl=ssl,
        forwarded_allow_ips=forwarded_allow_ips,
        limit_concurrency=limit_concurrency,
        http2=http2,
        access_log=access_log,
        access_log_format=access_log_format,
        request_id_header=request_id_header,
        proxy_protocol=proxy_protocol,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
