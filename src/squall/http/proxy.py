"""Who the client really is behind a reverse proxy: ``Forwarded`` and ``X-Forwarded-*``.

Only a direct peer listed in ``forwarded_allow_ips`` is believed (a Unix-socket peer always is:
only local processes can connect there). The client is found by walking the list of hops from
the right, past every trusted proxy; the first untrusted address is the client (all trusted: the
leftmost). ``Forwarded`` (RFC 7239) wins over the ``X-Forwarded-For/Proto/Host`` trio when both
are present. Values that are not a plausible scheme or host are ignored.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

__all__ = ("Forwarding", "TrustedProxies", "forwarding")

# A proxy may name the WebSocket scheme; what is kept is whether it was secure.
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]+)(?::[0-9]{1,5})?")
_PAIR = re.compile(r'\s*([A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')

Forwarding = tuple[str | None, str | None, str | None]
"""(client address, scheme, host) found in the headers; None for each part not given."""


class TrustedProxies:
    """The peers whose forwarding headers are believed: addresses, networks (CIDR), or ``*``."""

    __slots__ = ("any", "hosts", "networks")

    def __init__(self, spec: str | Iterable[str]) -> None:
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        items = [item.strip() for item in items if item.strip()]
        self.any = "*" in items
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in items:
            if item == "*":
                continue
            if "/" in item:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            else:
                self.hosts.add(_bare(item))

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str):
            return False
        if self.any or host in self.hosts:
            return True
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def __repr__(self) -> str:
        parts = ["*"] if self.any else [*sorted(self.hosts), *map(str, self.networks)]
        return f"TrustedProxies({','.join(parts)!r})"


def _bare(address: str) -> str:
    """``[::1]:80`` -> ``::1``; ``1.2.3.4:80`` -> ``1.2.3.4``; quotes dropped."""
    address = address.strip().strip('"')
    if address.startswith("["):
        end = address.find("]")
        return address[1:end] if end > 0 else address
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address


def forwarding(
    trusted: TrustedProxies, peer: object, headers: list[tuple[bytes, bytes]]
) -> Forwarding | None:
    """What a trusted peer's headers say about the client, or None if nothing applies.

    ``peer`` is the connection's peername (a tuple for TCP, a str or None for Unix sockets).
    """
    if isinstance(peer, (tuple, list)) and str(peer[0]) not in trusted:
        return None
    forwarded: list[bytes] = []
    xff: list[bytes] = []
    proto: list[bytes] = []
    host: list[bytes] = []
    for name, value in headers:
        n = len(name)
        if n == 9 and name.lower() == b"forwarded":
            forwarded.append(value)
        elif n == 15 and name.lower() == b"x-forwarded-for":
            xff.append(value)
        elif n == 17 and name.lower() == b"x-forwarded-proto":
            proto.append(value)
        elif n == 16 and name.lower() == b"x-forwarded-host":
            host.append(value)
    if forwarded:
        return _from_forwarded(trusted, b",".join(forwarded).decode("latin-1"))
    if not (xff or proto or host):
        return None
    hops = _split(xff)
    protos = _split(proto)
    hosts = _split(host)
    index = _client_index(trusted, [_bare(h) for h in hops])
    client = _bare(hops[index]) if hops else None

    def pick(values: list[str]) -> str | None:
        if not values:
            return None
        return values[index] if len(values) == len(hops) else values[-1]

    return client, _scheme(pick(protos)), _host(pick(hosts))


def _split(values: list[bytes]) -> list[str]:
    return [v.strip() for v in b",".join(values).decode("latin-1").split(",") if v.strip()]


def _client_index(trusted: TrustedProxies, hops: list[str]) -> int:
    index = len(hops) - 1
    while index > 0 and hops[index] in trusted:
        index -= 1
    return max(index, 0)


def _from_forwarded(trusted: TrustedProxies, header: str) -> Forwarding | None:
    elements: list[dict[str, str]] = []
    for element in header.split(","):
        pairs: dict[str, str] = {}
        for part in element.split(";"):
            match = _PAIR.fullmatch(part)
            if match is None:
                continue
            value = match.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            pairs[match.group(1).lower()] = value
        elements.append(pairs)
    if not elements:
        return None
    fors = [_bare(e.get("for", "")) for e in elements]
    chosen = elements[_client_index(trusted, fors)]
    client = chosen.get("for")
    return (
        _bare(client) if client else None,
        _scheme(chosen.get("proto")),
        _host(chosen.get("host")),
    )


def _scheme(value: str | None) -> str | None:
    if value is None:
        return None
    return _SCHEMES.get(value.strip().lower())


def _host(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value if _HOST.fullmatch(value) else None
