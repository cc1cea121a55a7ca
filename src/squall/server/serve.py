"""Serve one application on listening sockets until told to stop: the body of every process.

The single process of ``squall MODULE:APP`` and each worker under a supervisor run
:func:`serve`; they differ only in where the sockets come from and whom they tell.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
import stat
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..asgi import ASGIApp, ASGIHandler, Lifespan, LifespanFailed
from ..http.exchange import Exchange
from ..http.limits import Limits
from ..http.preface import ALPN
from ..http.protocol import HttpProtocol
from ..http.proxy import TrustedProxies
from ..http.proxy_protocol import proxy_protocol_peers
from ..http.server import HttpServer
from ..metrics import Metrics, MetricsListener
from ..web import Application
from ..web.access_log import AccessLogger, access_logger, json_access_logger
from ..web.runner import AppRunner, SockSite
from .config import EXIT_OK, EXIT_STARTUP, EXIT_USAGE, Config
from .loading import ServerError, describe, load_app

__all__ = ("Hooks", "StopSignals", "remove_uds", "serve", "ssl_context")

log = logging.getLogger("squall.server")

SETTLE = 1.0
"""Seconds, at most, that a stopping server keeps open connections it has not heard from."""


@dataclass(slots=True)
class Hooks:
    """What a serving process reports, and when it stops."""

    stop: asyncio.Event
    """Set to stop gracefully: close the listeners, finish requests in flight, clean up."""
    ready: Callable[[str], None]
    """Called with the interface (``aiohttp`` or ``asgi``) once the sockets accept."""
    request_limit: int = 0
    """Call ``limit_reached`` once after this many requests (0: never)."""
    limit_reached: Callable[[], None] | None = None
    metrics: Metrics | None = None
    """A worker's recorder, fed here and served by the supervisor (no listener of its own)."""


class StopSignals:
    """SIGINT and SIGTERM set :attr:`event` (a graceful stop); later ones change nothing."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.event = asyncio.Event()
        self._loop = loop
        self._installed: list[int] = []

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._loop.add_signal_handler(sig, self.event.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not this platform
                continue
            self._installed.append(sig)

    def remove(self) -> None:
        for sig in self._installed:
            self._loop.remove_signal_handler(sig)
        self._installed.clear()


def remove_uds(path: str | None) -> None:
    """Remove the Unix socket file at ``path`` (if it still is one)."""
    if path is None:
        return
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except OSError:
        pass


def _read_pem(option: str, path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("ascii", "replace")
    except OSError as exc:
        raise ServerError(f"{option} {path}: {exc.strerror or exc}") from None


def ssl_context(config: Config) -> ssl.SSLContext | None:
    """The server TLS context of ``config``, or None; raises :class:`ServerError`.

    Each message names the option and the file at fault: OpenSSL's own errors (``PEM lib``)
    say neither.
    """
    cert, key = config.ssl_certfile, config.ssl_keyfile
    if cert is None:
        if key is not None:
            raise ServerError("--ssl-keyfile needs --ssl-certfile", EXIT_USAGE)
        return None
    cert_text = _read_pem("--ssl-certfile", cert)
    if "CERTIFICATE-----" not in cert_text:
        raise ServerError(f"--ssl-certfile {cert}: no PEM certificate in it")
    if key is None:
        if "PRIVATE KEY-----" not in cert_text:
            raise ServerError(
                f"--ssl-certfile {cert} holds no private key: give the key with --ssl-keyfile"
            )
    elif "PRIVATE KEY-----" not in _read_pem("--ssl-keyfile", key):
        raise ServerError(f"--ssl-keyfile {key}: no PEM private key in it")
    files = f"--ssl-certfile {cert}" + (f" and --ssl-keyfile {key}" if key else "")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key, password=_no_password)
    except _EncryptedKey:
        raise ServerError(
            f"{'--ssl-keyfile ' + key if key else '--ssl-certfile ' + cert}: the private key "
            "is encrypted; squall takes an unencrypted key (openssl pkey -in KEY -out NEW)"
        ) from None
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise ServerError(f"{files}: the key is not the certificate's") from None
        raise ServerError(f"cannot load {files}: {exc}") from None
    except OSError as exc:
        raise ServerError(f"cannot load {files}: {exc}") from None
    ctx.set_alpn_protocols(list(ALPN) if config.http2 else ["http/1.1"])
    return ctx


class _EncryptedKey(Exception):
    pass


def _no_password() -> str:
    # Called by OpenSSL only for an encrypted key; without it OpenSSL would prompt on the
    # terminal (and a worker, which has none, would hang).
    raise _EncryptedKey


def _count_requests(http: HttpServer, hooks: Hooks) -> None:
    """Wrap the server's handler to call ``hooks.limit_reached`` at the request limit.

    Only processes with a limit pay for the count: the plain handler is left alone otherwise.
    """
    limit, reached = hooks.request_limit, hooks.limit_reached
    if limit <= 0 or reached is None:
        return
    inner = http.handler
    count = 0

    def counting(raw: Exchange, conn: HttpProtocol) -> Coroutine[Any, Any, None]:
        nonlocal count
        count += 1
        if count == limit:
            reached()
        return inner(raw, conn)

    http.handler = counting


async def _settle(http: HttpServer, limit: float) -> None:
    """After the listeners closed: answer what the open connections still send, as their last.

    A connection accepted just before the stop (its request not read yet), or a keep-alive one
    whose client is sending its next request, would be closed unanswered by the shutdown: the
    client sees a reset instead of a response. With ``closing`` set, each request read now is
    answered with ``Connection: close``; wait (at most ``limit``) until the clients have had
    that chance, then the shutdown closes what is still idle.
    """
    # Connections accepted in the listeners' last batch are told connection_made() by a
    # callback still queued: let them in first, or they would be refused as arriving too late.
    await asyncio.sleep(0)
    http.closing = True
    for conn in list(http.connections):
        # The response in flight is the connection's last (Connection: close). The test is
        # HttpServer.busy()'s, per connection; idle connections are left open (see above).
        if conn.busy:
            conn.shutdown()
    deadline = http.loop.time() + limit
    while http.connections and http.loop.time() < deadline:
        await asyncio.sleep(0.02)


async def serve(config: Config, sockets: list[socket.socket], hooks: Hooks) -> int:
    """Import the application, serve it on ``sockets`` until ``hooks.stop``; the exit status.

    Raises :class:`ServerError` (one line) for an expected failure before serving.
    """
    ctx = ssl_context(config)
    app, _ = await load_app(config)
    if isinstance(app, Application):
        return await _serve_aiohttp(app, config, sockets, ctx, hooks)
    return await _serve_asgi(app, config, sockets, ctx, hooks)


async def _serve_aiohttp(
    app: Application,
    config: Config,
    sockets: list[socket.socket],
    ctx: ssl.SSLContext | None,
    hooks: Hooks,
) -> int:
    log_class = AccessLogger
    metrics: dict[str, Any] = {"metrics_port": config.metrics_port}
    if hooks.metrics is not None:
        metrics = {"metrics": hooks.metrics}
    if config.access_log_format == "json":
        log_class = json_access_logger(config.request_id_header or None)
    runner = AppRunner(
        app,
        access_log=access_logger if config.access_log else None,
        access_log_class=log_class,
        keepalive_timeout=config.timeout_keep_alive,
        shutdown_timeout=config.timeout_graceful_shutdown,
        header_timeout=config.timeout_header,
        body_timeout=config.timeout_body,
        min_body_rate=config.min_body_rate,
        body_grace=config.body_grace,
        forwarded_allow_ips=config.forwarded_allow_ips,
        limit_concurrency=config.limit_concurrency or None,
        handler_cancellation=config.handler_cancellation,
        http2=config.http2,
        proxy_protocol=config.proxy_protocol or False,
        metrics_host=config.metrics_host,
        **metrics,
    )
    try:
        await runner.setup()
    except Exception as exc:
        log.error("Application startup failed", exc_info=exc)
        raise ServerError(f"application startup failed: {describe(exc)}", EXIT_STARTUP) from None
    try:
        assert runner.server is not None
        _count_requests(runner.server, hooks)
        for sock in sockets:
            await SockSite(runner, sock, ssl_context=ctx, backlog=config.backlog).start()
        hooks.ready("aiohttp")
        await hooks.stop.wait()
        for site in list(runner.sites):
            await site.stop()
        await _settle(runner.server, min(SETTLE, config.timeout_graceful_shutdown))
        return EXIT_OK
    finally:
        await runner.cleanup()


async def _serve_asgi(
    app: ASGIApp,
    config: Config,
    sockets: list[socket.socket],
    ctx: ssl.SSLContext | None,
    hooks: Hooks,
) -> int:
    loop = asyncio.get_running_loop()
    lifespan = Lifespan(app)
    try:
        await lifespan.startup()
    except (LifespanFailed, Exception) as exc:
        raise ServerError(f"application startup failed: {describe(exc)}", EXIT_STARTUP) from None
    state = lifespan.state if lifespan.supported else None
    limits = Limits(
        keepalive_timeout=config.timeout_keep_alive,
        shutdown_timeout=config.timeout_graceful_shutdown,
        header_timeout=config.timeout_header,
        body_timeout=config.timeout_body,
        min_body_rate=config.min_body_rate,
        body_grace=config.body_grace,
        max_connections=config.limit_concurrency,
    )
    allow = config.forwarded_allow_ips
    metrics = hooks.metrics
    if metrics is None and config.metrics_port is not None:
        metrics = Metrics()
    handler = ASGIHandler(
        app,
        config.root_path,
        state=state,
        trusted_proxies=TrustedProxies(allow) if allow else None,
        access_log=access_logger if config.access_log else None,
        access_log_format=config.access_log_format,
        request_id_header=config.request_id_header or None,
        metrics=metrics,
    )
    http = HttpServer(
        handler,
        limits=limits,
        loop=loop,
        handler_cancellation=config.handler_cancellation,
        http2=config.http2,
        proxy_protocol=proxy_protocol_peers(config.proxy_protocol or False, None),
    )
    _count_requests(http, hooks)
    listeners: list[asyncio.Server] = []
    exporter: MetricsListener | None = None
    try:
        for sock in sockets:
            listeners.append(
                await loop.create_server(http, sock=sock, ssl=ctx, backlog=config.backlog)
            )
        if metrics is not None:
            metrics.watch(http)
        if metrics is not None and hooks.metrics is None and config.metrics_port is not None:
            exporter = MetricsListener(metrics, config.metrics_host, config.metrics_port)
            await exporter.start()
        hooks.ready("asgi")
        await hooks.stop.wait()
        for listener in listeners:
            listener.close()
        await _settle(http, min(SETTLE, config.timeout_graceful_shutdown))
        return EXIT_OK
    finally:
        if exporter is not None:
            await exporter.stop()
        for listener in listeners:
            listener.close()
        await http.shutdown()
        for listener in listeners:
            await listener.wait_closed()
        try:
            await lifespan.shutdown()
        except Exception as exc:
            log.error("Application shutdown failed: %s", describe(exc))
