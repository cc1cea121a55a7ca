"""Which HTTP a connection speaks: ALPN over TLS, the first bytes in cleartext.

Every connection starts as an :class:`~.protocol.HttpProtocol`. Over TLS, the handshake has
chosen already: ALPN ``h2`` hands the connection to :class:`~.h2.H2Protocol` at once. In
cleartext, a :class:`Sniffer` takes the first bytes (as the protocol's sink, the slot an
upgraded WebSocket uses, so that HTTP/1.1's own path has no test of its own for it): the
HTTP/2 connection preface hands the connection over ("prior knowledge", RFC 9113 3.3),
anything else goes back to the HTTP/1.1 parser. Only a connection's first read pays for it.
The ``Upgrade: h2c`` dance is not offered (RFC 9113 deprecates it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .protocol import HttpProtocol

__all__ = ("ALPN", "PREFACE", "Sniffer", "h2_available", "negotiate")

log = logging.getLogger("squall.server")

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""What an HTTP/2 client sends first (RFC 9113 3.4)."""

ALPN: Final = ("h2", "http/1.1")
"""The protocols a TLS server offers, HTTP/2 first (set on a context by `HttpServer.tls()`)."""

_AVAILABLE: list[bool] = []


def h2_available() -> bool:
    """Whether the ``h2`` library (HTTP/2's frames and HPACK) can be imported."""
    if not _AVAILABLE:
        try:
            from . import h2  # noqa: F401
        except ImportError as exc:
            log.warning("HTTP/2 is off: %s", exc)
            _AVAILABLE.append(False)
        else:
            _AVAILABLE.append(True)
    return _AVAILABLE[0]


def negotiate(conn: HttpProtocol, transport: asyncio.BaseTransport) -> None:
    """Called as ``conn`` is made: hand it over if TLS chose ``h2``, else sniff in cleartext."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is not None:
        selected = getattr(ssl_object, "selected_alpn_protocol", None)
        if selected is not None and selected() == "h2" and h2_available():
            _to_h2(conn, b"")
        return  # TLS without h2: HTTP/1.1 (no prior knowledge over TLS: ALPN decides)
    conn.sniff(Sniffer(conn))


def _to_h2(conn: HttpProtocol, data: bytes) -> None:
    from .h2 import H2Protocol

    conn.hand_over(H2Protocol(conn.shared, peername=conn.peername), data)


class Sniffer:
    """The sink of a cleartext connection until its first bytes say which HTTP it speaks."""

    __slots__ = ("buf", "conn")

    def __init__(self, conn: HttpProtocol) -> None:
        self.conn = conn
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if buf[: len(PREFACE)] != PREFACE[: len(buf)]:
            self.conn.speak_http1(buf)
        elif len(buf) < len(PREFACE):
            self.buf = buf  # a prefix of the preface so far: wait for the rest
        elif h2_available():
            _to_h2(self.conn, buf)
        else:
            self.conn.speak_http1(buf)  # (answered 505, as without HTTP/2)

    def eof_received(self) -> None:
        self.conn.speak_http1(self.buf)

    def connection_lost(self, exc: BaseException | None) -> None:
        pass

    def going_away(self) -> None:
        pass
