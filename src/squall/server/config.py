"""The configuration of a squall server process, and its exit statuses."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Literal

from ..jsonlog import REQUEST_ID_HEADER, JsonFormatter
from ..web import access_log

__all__ = (
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_STARTUP",
    "EXIT_USAGE",
    "LOG_LEVELS",
    "AccessLogFormat",
    "Config",
    "Interface",
    "configure_logging",
)

Interface = Literal["auto", "aiohttp", "asgi"]
AccessLogFormat = Literal["default", "json"]

LOG_LEVELS: dict[str, int] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_STARTUP = 3


@dataclass(slots=True)
class Config:
    """Everything needed to serve one application; the command line builds one of these."""

    app: str
    """``MODULE:ATTRIBUTE`` (the attribute may be dotted)."""
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    """Listen on this Unix domain socket path instead of host and port."""
    fd: int | None = None
    """Listen on this already bound socket file descriptor instead of host and port."""
    factory: bool = False
    """``app`` names a callable returning the application (which may be awaitable)."""
    interface: Interface = "auto"
    root_path: str = ""
    timeout_keep_alive: float = 75.0
    timeout_graceful_shutdown: float = 60.0
    timeout_header: float = 10.0
    """Seconds a client has to send a request head, from its first byte (``header_timeout``)."""
    timeout_body: float = 60.0
    """Seconds a handler waits for the next request-body bytes (``body_timeout``)."""
    min_body_rate: int = 500
    """Bytes per second a request body must average after ``body_grace`` (0: no minimum)."""
    body_grace: float = 20.0
    """Seconds a request body may take before ``min_body_rate`` applies."""
    backlog: int = 2048
    log_level: str = "info"
    access_log: bool = True
    access_log_format: AccessLogFormat = "default"
    """``default``: aiohttp's line (aiohttp interface), uvicorn's (ASGI); ``json``: one JSON
    object a request, and every other log record as JSON too (see :func:`configure_logging`)."""
    request_id_header: str = REQUEST_ID_HEADER
    """The request header logged as ``request_id`` by the JSON access log ("": none)."""
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    app_dir: str = "."
    """Directory put first on ``sys.path`` before importing ``app``."""
    workers: int = 1
    """Worker processes; above 1 (or with ``max_requests`` or ``reload``) a supervisor runs them."""
    max_requests: int = 0
    """Replace a worker after it has taken about this many requests (0: never)."""
    max_requests_jitter: int = 0
    """Add a random 0..jitter to ``max_requests`` per worker, so they do not recycle together."""
    reuse_port: bool = False
    """Workers each bind their own ``SO_REUSEPORT`` socket instead of sharing the supervisor's."""
    reload: bool = False
    """Restart the worker when a Python file under ``reload_dirs`` changes (development)."""
    reload_dirs: list[str] = field(default_factory=list)
    """Directories ``reload`` watches; ``app_dir`` when empty."""
    forwarded_allow_ips: str | None = None
    """Trusted proxies whose forwarding headers are believed (None: --no-proxy-headers)."""
    limit_concurrency: int = 0
    """Most connections served at once per process; past it, 503 (0: unlimited)."""
    handler_cancellation: bool = False
    """Cancel a request's handler when its client leaves (aiohttp's ``handler_cancellation``)."""
    http2: bool = True
    """Serve HTTP/2 too: ALPN ``h2`` over TLS, the HTTP/2 preface in cleartext (--no-http2)."""
    proxy_protocol: str | None = None
    """The peers whose connections begin with a PROXY protocol header (None: off)."""
    metrics_port: int | None = None
    """Serve Prometheus metrics at ``/metrics`` on this port (None: off; under a supervisor,
    the supervisor serves every worker's, summed)."""
    metrics_host: str = "127.0.0.1"
    """The address of the metrics listener."""
    as_aiohttp: bool = False
    """Call ``squall.install_as_aiohttp()`` before importing the app (--as-aiohttp): an
    unmodified aiohttp application and its plugins, which import ``aiohttp.web``."""
    max_worker_memory: int = 0
    """Replace a worker whose resident memory (RSS) exceeds this many MiB (0: never)."""
    worker_memory_interval: float = 5.0
    """Seconds between two looks at the workers' memory (with ``max_worker_memory``)."""
    max_worker_lifetime: float = 0.0
    """Replace a worker this many seconds after it became ready (0: never)."""
    max_worker_lifetime_jitter: float = 0.0
    """Add a random 0..jitter seconds to ``max_worker_lifetime`` per worker."""

    @property
    def supervised(self) -> bool:
        """Whether this configuration needs a supervisor process over the workers."""
        return (
            self.workers > 1
            or self.max_requests > 0
            or self.max_worker_memory > 0
            or self.max_worker_lifetime > 0
            or self.reload
        )


def configure_logging(level: str, access_log_format: AccessLogFormat = "default") -> None:
    """Log to stderr at ``level`` (one of :data:`LOG_LEVELS`), access lines included; with the
    ``json`` format, every line is one JSON object (squall.jsonlog.JsonFormatter)."""
    if access_log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        # (aiohttp.access under install_as_aiohttp())
        handler.setFormatter(JsonFormatter(access_log.access_logger.name))
        logging.basicConfig(level=LOG_LEVELS[level], handlers=[handler])
    else:
        logging.basicConfig(
            level=LOG_LEVELS[level],
            format="%(levelname)s:%(name)s: %(message)s",
            stream=sys.stderr,
        )
    logging.getLogger("squall").setLevel(LOG_LEVELS[level])
    logging.getLogger(access_log.access_logger.name).setLevel(LOG_LEVELS[level])
