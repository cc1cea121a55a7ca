"""Runners and sites: ``AppRunner`` sets an application up, sites listen for it."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path
from ssl import SSLContext
from typing import Any

from ..http.proxy_protocol import PROXY_PROTOCOL_NO_TLS
from ..http.server import HttpServer
from ..metrics import MetricsListener
from .access_log import AccessLogger
from .app import Application
from .appserver import app_server

__all__ = (
    "AppRunner",
    "BaseRunner",
    "BaseSite",
    "GracefulExit",
    "SockSite",
    "TCPSite",
    "UnixSite",
)


class GracefulExit(SystemExit):
    """Raised by the SIGINT/SIGTERM handlers to stop ``run_app`` cleanly."""

    code = 1


def _raise_graceful_exit() -> None:
    raise GracefulExit()


class BaseSite:
    """Something a runner listens on."""

    def __init__(
        self,
        runner: BaseRunner,
        *,
        shutdown_timeout: float = 60.0,
        ssl_context: SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        if runner.server is None:
            raise RuntimeError("Call runner.setup() before making a site")
        if ssl_context is not None and runner.server.proxy_protocol is not None:
            raise ValueError(PROXY_PROTOCOL_NO_TLS)
        self._runner = runner
        self._ssl_context = ssl_context
        self._backlog = backlog
        self._server: asyncio.Server | None = None

    @property
    def name(self) -> str:
        raise NotImplementedError

    async def start(self) -> None:
        """Register with the runner and start listening."""
        self._runner._reg_site(self)
        server = self._runner.server
        assert server is not None
        server.tls(self._ssl_context)  # ALPN h2 on the user's context while HTTP/2 is on
        # (the running loop; asked as aiohttp does, which tests that patch it rely on)
        self._server = await self._listen(asyncio.get_event_loop(), server)

    async def _listen(self, loop: asyncio.AbstractEventLoop, factory: HttpServer) -> asyncio.Server:
        raise NotImplementedError

    async def stop(self) -> None:
        self._runner._check_site(self)
        if self._server is not None:
            self._server.close()
            self._server = None
        self._runner._unreg_site(self)


class TCPSite(BaseSite):
    """Listen on a host and port (``0.0.0.0:8080`` by default, as aiohttp)."""

    def __init__(
        self,
        runner: BaseRunner,
        host: str | None = None,
        port: int | None = None,
        *,
        shutdown_timeout: float = 60.0,
        ssl_context: SSLContext | None = None,
        backlog: int = 128,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
    ) -> None:
        super().__init__(
            runner, shutdown_timeout=shutdown_timeout, ssl_context=ssl_context, backlog=backlog
        )
        self._host = host
        if port is None:
            port = 8443 if ssl_context else 8080
        self._port = port
        self._reuse_address = reuse_address
        self._reuse_port = reuse_port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        host = "0.0.0.0" if not self._host else self._host
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"  # the bound port once started, as aiohttp

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def _listen(self, loop: asyncio.AbstractEventLoop, factory: HttpServer) -> asyncio.Server:
        return await loop.create_server(
            factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )


class UnixSite(BaseSite):
    """Listen on a Unix domain socket path."""

    def __init__(
        self,
        runner: BaseRunner,
        path: str | Path,
        *,
        shutdown_timeout: float = 60.0,
        ssl_context: SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(
            runner, shutdown_timeout=shutdown_timeout, ssl_context=ssl_context, backlog=backlog
        )
        self._path = path

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://unix:{self._path}:"

    async def _listen(self, loop: asyncio.AbstractEventLoop, factory: HttpServer) -> asyncio.Server:
        return await loop.create_unix_server(
            factory, self._path, ssl=self._ssl_context, backlog=self._backlog
        )


class SockSite(BaseSite):
    """Listen on a socket the caller already bound."""

    def __init__(
        self,
        runner: BaseRunner,
        sock: socket.socket,
        *,
        shutdown_timeout: float = 60.0,
        ssl_context: SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(
            runner, shutdown_timeout=shutdown_timeout, ssl_context=ssl_context, backlog=backlog
        )
        self._sock = sock
        scheme = "https" if self._ssl_context else "http"
        if hasattr(socket, "AF_UNIX") and sock.family == socket.AF_UNIX:
            self._name = f"{scheme}://unix:{sock.getsockname()}:"
        else:
            host, port = sock.getsockname()[:2]
            self._name = f"{scheme}://{host}:{port}"

    @property
    def name(self) -> str:
        return self._name

    async def _listen(self, loop: asyncio.AbstractEventLoop, factory: HttpServer) -> asyncio.Server:
        return await loop.create_server(
            factory, sock=self._sock, ssl=self._ssl_context, backlog=self._backlog
        )


class BaseRunner:
    """Owns the HTTP server of an application and the sites it listens on."""

    def __init__(
        self,
        *,
        handle_signals: bool = False,
        shutdown_timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        self._handle_signals = handle_signals
        self._shutdown_timeout = shutdown_timeout
        self._kwargs = kwargs
        self._server: HttpServer | None = None
        self._sites: list[BaseSite] = []

    @property
    def server(self) -> HttpServer | None:
        return self._server

    @property
    def sites(self) -> set[BaseSite]:
        return set(self._sites)

    @property
    def addresses(self) -> list[Any]:
        addrs: list[Any] = []
        for site in self._sites:
            server = site._server
            if server is not None:
                addrs.extend(sock.getsockname() for sock in server.sockets)
        return addrs

    async def setup(self) -> None:
        loop = asyncio.get_running_loop()
        if self._handle_signals:
            try:
                loop.add_signal_handler(signal.SIGINT, _raise_graceful_exit)
                loop.add_signal_handler(signal.SIGTERM, _raise_graceful_exit)
            except NotImplementedError:  # pragma: no cover - not on this platform
                pass
        self._server = await self._make_server()

    async def _make_server(self) -> HttpServer:
        raise NotImplementedError

    async def shutdown(self) -> None:
        """Hook between closing the sites and waiting for requests in flight."""

    async def _cleanup_server(self) -> None:
        """Hook run last."""

    async def cleanup(self) -> None:
        """Stop listening, finish requests in flight (graceful), then run the cleanup hooks."""
        for site in list(self._sites):
            await site.stop()
        # After a failed setup() only the cleanup runs (as in aiohttp): the cleanup contexts
        # that did start are exited, and on_shutdown, never frozen, is not sent.
        if self._server is not None:
            self._server.closing = True
            for conn in list(self._server.connections):
                conn.shutdown()
            await self.shutdown()
            await self._server.shutdown(self._shutdown_timeout)
        await self._cleanup_server()
        self._server = None
        if self._handle_signals:
            loop = asyncio.get_running_loop()
            try:
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
            except NotImplementedError:  # pragma: no cover
                pass

    def _reg_site(self, site: BaseSite) -> None:
        if site in self._sites:
            raise RuntimeError(f"Site {site} is already registered in runner {self}")
        self._sites.append(site)

    def _check_site(self, site: BaseSite) -> None:
        if site not in self._sites:
            raise RuntimeError(f"Site {site} is not registered in runner {self}")

    def _unreg_site(self, site: BaseSite) -> None:
        if site not in self._sites:
            raise RuntimeError(f"Site {site} is not registered in runner {self}")
        self._sites.remove(site)


class AppRunner(BaseRunner):
    """Runs an :class:`Application`: ``await runner.setup()``, sites, ``await runner.cleanup()``.

    Keyword arguments are aiohttp's: ``access_log``, ``access_log_class``,
    ``access_log_format``, ``keepalive_timeout``, ``max_line_size``, ``max_field_size``,
    ``max_headers``, ``handler_cancellation``, ``shutdown_timeout``, ``handle_signals``; plus
    squall's ``header_timeout`` and ``forwarded_allow_ips`` (peers whose ``Forwarded`` /
    ``X-Forwarded-*`` headers set ``request.remote``, ``scheme`` and ``host``; off by default),
    ``body_timeout``, ``min_body_rate``, ``body_grace``, ``send_timeout`` and
    ``limit_concurrency`` (most connections served at once; past it, 503), ``http2``, and
    ``proxy_protocol`` (True: connections from the peers in ``forwarded_allow_ips``, or
    127.0.0.1 if it is not given, begin with a PROXY protocol header, which gives
    ``request.remote``; a string: those peers instead; docs/deployment.md),
    ``metrics_port`` and ``metrics_host`` (Prometheus metrics at ``/metrics`` on a listener of
    their own, 127.0.0.1 by default; off unless ``metrics_port`` is given; 0: any free port,
    see :attr:`metrics_listener`); ``metrics``: a :class:`squall.metrics.Metrics` recorder to
    feed instead (served by its owner: a worker's, by the supervisor).
    See ``squall.http.Limits`` and docs/robustness.md.
    """

    def __init__(
        self,
        app: Application,
        *,
        handle_signals: bool = False,
        access_log_class: type[AccessLogger] = AccessLogger,
        **kwargs: Any,
    ) -> None:
        if not isinstance(app, Application):
            raise TypeError(f"The first argument should be web.Application instance, got {app!r}")
        super().__init__(handle_signals=handle_signals, **kwargs)
        self._app = app
        self._access_log_class = access_log_class
        self._metrics_listener: MetricsListener | None = None

    @property
    def app(self) -> Application:
        return self._app

    async def _make_server(self) -> HttpServer:
        app = self._app
        loop = asyncio.get_running_loop()
        app._set_loop(loop, replace=True)
        app.on_startup.freeze()
        await app.startup()
        app.freeze()
        kwargs = dict(self._kwargs)
        server, metrics = app_server(
            app, kwargs, self._access_log_class, self._shutdown_timeout, loop
        )
        metrics_port = kwargs.pop("metrics_port", None)
        metrics_host = kwargs.pop("metrics_host", "127.0.0.1")
        if metrics is not None and metrics_port is not None:
            self._metrics_listener = MetricsListener(metrics, metrics_host, metrics_port)
            await self._metrics_listener.start()
        return server

    @property
    def metrics_listener(self) -> MetricsListener | None:
        """The ``/metrics`` listener (``metrics_port=``), once set up; None without metrics."""
        return self._metrics_listener

    async def shutdown(self) -> None:
        await self._app.shutdown()

    async def _cleanup_server(self) -> None:
        listener, self._metrics_listener = self._metrics_listener, None
        if listener is not None:
            await listener.stop()
        await self._app.cleanup()
