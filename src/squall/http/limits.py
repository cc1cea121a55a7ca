"""Limits and timeouts of one server, with the defaults we document in docs/."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

LINGER: Final = 2.0
"""Seconds to keep reading after a closing answer, so that the client reads it (no RST)."""
TICK: Final = 1.0
"""Seconds between two looks at the connections' deadlines (the server's tick). A deadline
reckoned from the last tick's clock (``HttpServer.now``) instead of the loop's is set this much
later, so that it is never early."""


@dataclass(slots=True)
class Limits:
    """Bounds on what one connection may send and how long it may take.

    Sizes follow aiohttp where aiohttp has the knob (8190-byte request line and header field,
    75 s keep-alive); the header-read timeout and the head/pipeline bounds are squall's own.
    """

    max_line_size: int = 8190
    """Longest request line (method, target and version) in bytes; beyond it: 414."""
    max_field_size: int = 8190
    """Longest single header field (name and value) in bytes; beyond it: 431."""
    max_headers: int = 128
    """Most header fields in one request; beyond it: 431."""
    max_head_size: int = 65536
    """Most bytes of request head (line and all fields) in total; beyond it: 431."""
    keepalive_timeout: float = 75.0
    """Seconds an idle keep-alive connection is kept open."""
    header_timeout: float = 10.0
    """Seconds a client has to send a whole request head, counted from its first byte (and, on
    a new connection, the wait for that first byte)."""
    body_timeout: float = 60.0
    """Seconds a handler waiting for request-body bytes waits for the next ones; then the body
    fails (the handler sees a RequestPayloadError with status 408) and the connection closes."""
    min_body_rate: int = 500
    """Bytes per second a request body must average once ``body_grace`` has passed (0: no
    minimum): after ``body_grace + n / min_body_rate`` seconds, a body of only ``n`` bytes fails
    as for ``body_timeout``. Apache mod_reqtimeout's ``body=20,MinRate=500``. The time the server
    itself is not reading (backpressure, a 100 Continue not yet sent) is not counted."""
    body_grace: float = 20.0
    """Seconds a request body may take before ``min_body_rate`` applies."""
    send_timeout: float = 60.0
    """Seconds a client may leave the server's write buffer full without reading any of it;
    then the connection is dropped."""
    max_pipeline: int = 16
    """Parsed requests queued behind the running one before reading pauses."""
    read_high_water: int = 256 * 1024
    """Unread request-body bytes buffered before reading from the socket pauses."""
    shutdown_timeout: float = 60.0
    """Seconds graceful shutdown waits for in-flight requests before cancelling them."""
    max_connections: int = 0
    """Most connections served at once (0: no limit). A connection accepted past it has its
    first request answered ``503 Service Unavailable`` and is closed, unless one of the others
    has closed by then (``limit_concurrency`` of AppRunner and squall.asgi.serve)."""
