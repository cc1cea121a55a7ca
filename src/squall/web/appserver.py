"""The HttpServer an Application is served by: what ``AppRunner`` and ``make_handler()`` build."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..http.limits import Limits
from ..http.proxy import TrustedProxies
from ..http.proxy_protocol import proxy_protocol_peers
from ..http.server import HttpServer
from ..metrics import Metrics
from .access_log import AccessLogger, access_logger
from .handler import AppHandler

if TYPE_CHECKING:
    from .app import Application

__all__ = ("app_server", "check_access_log_class")

_LIMIT_KEYS = (
    "max_line_size",
    "max_field_size",
    "max_headers",
    "keepalive_timeout",
    "header_timeout",
    "body_timeout",
    "min_body_rate",
    "body_grace",
    "send_timeout",
)


def check_access_log_class(access_log_class: Any) -> None:
    """TypeError unless ``access_log_class`` is a class with a ``log(request, response, time)``
    method (squall's ``AccessLogger`` or a subclass, or aiohttp's ``AbstractAccessLogger``'s)."""
    if not (isinstance(access_log_class, type) and callable(getattr(access_log_class, "log", 0))):
        raise TypeError(
            "access_log_class must be a subclass of web.AccessLogger (or of aiohttp.abc."
            f"AbstractAccessLogger), got {access_log_class!r}"
        )


def app_server(
    app: Application,
    kwargs: dict[str, Any],
    access_log_class: type[AccessLogger],
    shutdown_timeout: float,
    loop: asyncio.AbstractEventLoop | None = None,
) -> tuple[HttpServer, Metrics | None]:
    """The server for ``app`` (frozen) and the metrics recorder it feeds, if any.

    ``kwargs`` are the runner's keyword arguments (``app``'s ``handler_args`` override them,
    ``access_log_class`` too);
    what this takes out of them, it removes: the metrics listener's ``metrics_port`` and
    ``metrics_host`` stay for the caller. Unknown keys are ignored, as aiohttp's handler does.
    """
    if app._handler_args:
        kwargs.update(app._handler_args)
    access_log_class = kwargs.pop("access_log_class", access_log_class)
    check_access_log_class(access_log_class)
    limits = Limits()
    for key in _LIMIT_KEYS:
        if key in kwargs:
            setattr(limits, key, kwargs.pop(key))
    limits.max_connections = kwargs.pop("limit_concurrency", None) or 0
    bufsize = kwargs.pop("read_bufsize", None)
    if bufsize:  # aiohttp's: the body buffer's low-water mark; reading pauses past twice it
        limits.read_high_water = 2 * bufsize
    limits.shutdown_timeout = shutdown_timeout
    access_log = kwargs.pop("access_log", access_logger)
    log_format = kwargs.pop("access_log_format", AccessLogger.LOG_FORMAT)
    logger = access_log_class(access_log, log_format) if access_log else None
    allow = kwargs.pop("forwarded_allow_ips", None)
    trusted = TrustedProxies(allow) if allow else None
    proxied = proxy_protocol_peers(kwargs.pop("proxy_protocol", False), allow)
    metrics: Metrics | None = kwargs.pop("metrics", None)
    if metrics is None and kwargs.get("metrics_port") is not None:
        metrics = Metrics()
    handler = AppHandler(app, logger, trusted, metrics)
    if not kwargs.pop("auto_decompress", True):  # (aiohttp's handler_args key)
        handler.auto_decompress = False
    server = HttpServer(
        handler,
        limits=limits,
        loop=loop,
        handler_cancellation=bool(kwargs.pop("handler_cancellation", False)),
        http2=bool(kwargs.pop("http2", True)),
        proxy_protocol=proxied,
    )
    if metrics is not None:
        metrics.watch(server)
    return server, metrics
