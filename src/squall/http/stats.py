"""What a server counts of the wire for its metrics: refusals and timeouts by kind, and the
bytes its closed connections received and sent (from the kernel's ``TCP_INFO``).

A kind is counted where http/ already refuses or gives up (never on a good request's path);
bytes are read per connection when it closes, and only while a metrics recorder watches the
server (``Shared.count_bytes``): a request costs nothing for either.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Final

__all__ = (
    "BAD_REQUEST",
    "BODY_TIMEOUT",
    "HEADER_TIMEOUT",
    "HTTP2_PROTOCOL",
    "KINDS",
    "SEND_TIMEOUT",
    "TOO_LARGE",
    "tcp_bytes",
)

BAD_REQUEST: Final = 0
"""A malformed or unsupported request line or head (400, 417, 501, 505)."""
TOO_LARGE: Final = 1
"""A request line, target or header fields past their limits (414, 431)."""
HEADER_TIMEOUT: Final = 2
"""A request head not received within ``header_timeout`` (408)."""
BODY_TIMEOUT: Final = 3
"""A request body stalled for ``body_timeout``, or slower than ``min_body_rate`` (408)."""
SEND_TIMEOUT: Final = 4
"""A client that read none of its full write buffer for ``send_timeout`` (dropped)."""
HTTP2_PROTOCOL: Final = 5
"""An HTTP/2 connection error from the client (GOAWAY with an error code)."""

KINDS: Final = (
    "bad_request",
    "too_large",
    "header_timeout",
    "body_timeout",
    "send_timeout",
    "http2_protocol",
)
"""The ``kind`` label of each, by index."""

_TCP_INFO: Final = getattr(socket, "TCP_INFO", 0)
# struct tcp_info (linux/tcp.h): tcpi_bytes_acked at 120 and tcpi_bytes_received at 128
# (Linux 4.1 and later; an older kernel returns a shorter struct).
_INFO_SIZE: Final = 136
_BYTES: Final = struct.Struct("=QQ")


def tcp_bytes(transport: Any) -> tuple[int, int] | None:
    """(received, sent) of the TCP connection under ``transport``: the payload bytes the kernel
    received, and those the client acknowledged; None where unknown (a Unix socket, not
    Linux, a socket already closed)."""
    if not _TCP_INFO or transport is None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _INFO_SIZE)
    except (OSError, ValueError):
        return None
    if len(info) < _INFO_SIZE:
        return None
    acked, received = _BYTES.unpack_from(info, 120)
    return received, acked
