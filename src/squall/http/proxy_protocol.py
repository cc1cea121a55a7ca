"""The PROXY protocol (HAProxy's, versions 1 and 2): the client address an L4 load balancer
(HAProxy ``send-proxy``, AWS NLB, ...) writes at the start of each connection.

Off unless the server is given the peers allowed to send it (``Shared.proxy_protocol``). A
connection from such a peer must begin with the header: a :class:`HeaderReader` takes its first
bytes (as the connection's sink, the slot the HTTP/2 sniffer and an upgraded WebSocket use, so
HTTP/1.1's own path has no test for it), and hands what follows the header to the connection,
with the client's address (:meth:`~.protocol.HttpProtocol.proxied`). A malformed header, or one
longer than its bound, closes the connection without an answer: the peer is a proxy speaking a
broken protocol, not an HTTP client. A header that does not arrive whole is timed out as a
request head is (``Limits.header_timeout``). A connection from any other peer is plain HTTP: its
header, if it sent one, is not believed (a ``PROXY`` line is then a bad request line, 400).

:func:`parse` is the parser alone, without I/O.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from typing import Any, Final, Protocol

from .proxy import TrustedProxies

__all__ = (
    "PROXY_PROTOCOL_NO_TLS",
    "V1_MAX",
    "V2_MAX",
    "V2_SIGNATURE",
    "HeaderReader",
    "ProxiedConnection",
    "ProxyHeaderError",
    "expects_header",
    "parse",
    "proxy_protocol_peers",
)

log = logging.getLogger("squall.server")

V1_MAX: Final = 107
"""The longest version 1 header, CRLF included (the specification's bound)."""

V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
V2_MAX: Final = 16 + 4096
"""The longest version 2 header accepted: the fixed part and 4 KiB of addresses and TLVs
(HAProxy's SSL TLVs and the clouds' endpoint ids take a few hundred bytes)."""

_V1_PREFIX: Final = b"PROXY "
_V2_HEAD: Final = struct.Struct("!BBH")  # version and command, family and transport, length

Client = tuple[str, int]


class ProxiedConnection(Protocol):
    """What a :class:`HeaderReader` needs of its connection (an HttpProtocol)."""

    peername: Any

    def proxied(self, client: Client | None, data: bytes) -> None: ...
    def drop(self) -> None: ...


class ProxyHeaderError(Exception):
    """The bytes are not a valid PROXY protocol header."""


PROXY_PROTOCOL_NO_TLS: Final = (
    "proxy_protocol does not go with TLS on the same listener: terminate TLS at the proxy"
)


def proxy_protocol_peers(
    option: bool | str, forwarded_allow_ips: str | None
) -> TrustedProxies | None:
    """The peers a server takes PROXY headers from, given its ``proxy_protocol`` option (False:
    none; True: ``forwarded_allow_ips``, else 127.0.0.1; a string: those addresses/networks)."""
    if not option:
        return None
    if isinstance(option, str):
        return TrustedProxies(option)
    return TrustedProxies(forwarded_allow_ips or "127.0.0.1")


def expects_header(trusted: TrustedProxies, peer: object) -> bool:
    """Whether a connection from ``peer`` (a peername) must begin with a PROXY header: a peer in
    ``trusted``, or any peer of a Unix socket (only local processes connect there)."""
    if isinstance(peer, (tuple, list)):
        return str(peer[0]) in trusted
    return True


def parse(data: bytes) -> tuple[int, Client | None] | None:
    """The header at the start of ``data``: (its length, the client's address, or None to keep
    the connection's own: LOCAL, UNKNOWN, UNSPEC or UNIX); None while ``data`` is a valid
    beginning of one. Raises :class:`ProxyHeaderError` as soon as the bytes cannot be one."""
    if data[:1] == b"P":
        return _parse_v1(data)
    if data[:1] == b"\r":
        return _parse_v2(data)
    if not data:
        return None
    raise ProxyHeaderError("neither a version 1 nor a version 2 header")


def _parse_v1(data: bytes) -> tuple[int, Client | None] | None:
    if data[:6] != _V1_PREFIX[: len(data)]:
        raise ProxyHeaderError("version 1 header not starting with 'PROXY '")
    end = data.find(b"\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError(f"version 1 header longer than {V1_MAX} bytes")
        return None
    if data[end - 1] != 13:
        raise ProxyHeaderError("version 1 header not ending with CRLF")
    line = data[6 : end - 1]
    if line[:7] == b"UNKNOWN":  # the rest of the line is to be ignored
        return end + 1, None
    parts = line.split(b" ")
    if len(parts) != 5 or parts[0] not in (b"TCP4", b"TCP6"):
        raise ProxyHeaderError("version 1 header not 'PROXY TCP4|TCP6 SRC DST SPORT DPORT'")
    version = 4 if parts[0] == b"TCP4" else 6
    source = _v1_address(parts[1], version)
    _v1_address(parts[2], version)
    port = _v1_port(parts[3])
    _v1_port(parts[4])
    return end + 1, (source, port)


def _v1_address(text: bytes, version: int) -> str:
    try:
        address = ipaddress.ip_address(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProxyHeaderError(f"bad address in version 1 header: {text!r}") from None
    if address.version != version:
        raise ProxyHeaderError(f"not an IPv{version} address: {text!r}")
    return str(address)


def _v1_port(text: bytes) -> int:
    if not (0 < len(text) <= 5 and text.isdigit()) or (len(text) > 1 and text[0] == 48):
        raise ProxyHeaderError(f"bad port in version 1 header: {text!r}")
    port = int(text)
    if port > 65535:
        raise ProxyHeaderError(f"bad port in version 1 header: {text!r}")
    return port


def _parse_v2(data: bytes) -> tuple[int, Client | None] | None:
    if data[:12] != V2_SIGNATURE[: len(data)]:
        raise ProxyHeaderError("bad version 2 signature")
    if len(data) < 16:
        return None
    version_command, family, length = _V2_HEAD.unpack_from(data, 12)
    if version_command >> 4 != 2:
        raise ProxyHeaderError(f"version 2 signature with version {version_command >> 4}")
    command = version_command & 0xF
    if command > 1:
        raise ProxyHeaderError(f"unknown version 2 command {command}")
    total = 16 + length
    if total > V2_MAX:
        raise ProxyHeaderError(f"version 2 header of {total} bytes, more than {V2_MAX}")
    if len(data) < total:
        return None
    if command == 0:  # LOCAL: the proxy's own connection (a health check): the peer is real
        return total, None
    if family == 0x11:  # TCP over IPv4
        size, af = 12, socket.AF_INET
    elif family == 0x21:  # TCP over IPv6
        size, af = 36, socket.AF_INET6
    elif family in (0x00, 0x31):  # UNSPEC, or a Unix stream socket: the connection's own peer
        return total, None
    else:
        raise ProxyHeaderError(f"version 2 family and transport 0x{family:02x} not TCP")
    if length < size:
        raise ProxyHeaderError("version 2 address block shorter than its family's")
    half = (size - 4) // 2
    source = socket.inet_ntop(af, data[16 : 16 + half])
    (port,) = struct.unpack_from("!H", data, 16 + 2 * half)
    return total, (source, port)  # TLVs (after the addresses, within length) are skipped


class HeaderReader:
    """The sink of a connection from a trusted peer until its PROXY header is read."""

    __slots__ = ("buf", "conn")

    def __init__(self, conn: ProxiedConnection) -> None:
        self.conn = conn
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        try:
            found = parse(buf)
        except ProxyHeaderError as exc:
            self.buf = b""
            log.info("Bad PROXY protocol header from %s: %s: closed", _peer(self.conn), exc)
            self.conn.drop()
            return
        if found is None:
            self.buf = buf
            return
        self.buf = b""
        length, client = found
        self.conn.proxied(client, buf[length:])

    def eof_received(self) -> None:
        if self.buf:
            log.info("PROXY protocol header from %s cut short: closed", _peer(self.conn))
        self.conn.drop()

    def connection_lost(self, exc: BaseException | None) -> None:
        pass

    def going_away(self) -> None:
        pass


def _peer(conn: ProxiedConnection) -> str:
    peer = conn.peername
    return str(peer[0]) if isinstance(peer, (tuple, list)) else "a Unix socket"
