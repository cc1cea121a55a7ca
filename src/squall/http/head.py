"""The checks of a request head that llhttp leaves to us, as plain functions (no I/O).

llhttp parses the request line and the fields; RFC 9110/9112 ask for more: Host present, single
and well-formed; the Transfer-Encoding list; the request-target form; sizes within the limits;
only ``100-continue`` in Expect; no RTSP/ICE request line taken for HTTP/1.0. The connection
(``protocol.py``) calls these as each head completes; each raises :class:`BadRequest` with the
status the RFCs call for.
"""

from __future__ import annotations

import re
from typing import Final

from .errors import BadRequest
from .limits import Limits

__all__ = (
    "EXPECTS_CONTINUE",
    "FRAMED_BODY",
    "UPGRADE_FIELD",
    "check_fields",
    "check_request_line",
    "check_target_form",
    "check_transfer_encoding",
    "not_http",
)

# What check_fields found, as bits of its first result.
FRAMED_BODY: Final = 1  # a body follows: Content-Length (not 0) or Transfer-Encoding: chunked
EXPECTS_CONTINUE: Final = 2  # Expect: 100-continue
UPGRADE_FIELD: Final = 4  # an Upgrade field

# uri-host [ ":" port ] (RFC 9112 3.2, RFC 3986 3.2.2): IP-literal, IPv4 or reg-name.
_HOST: Final = re.compile(
    rb"(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)"  # IP-literal | name
    rb"(?::[0-9]*)?"  # port
)


def check_fields(
    fields: list[tuple[bytes, bytes]], version: str, limits: Limits, good_host: bytes
) -> tuple[int, int, bytes]:
    """Check a request's header fields; return (what was found as bits, the fields' size as
    sent, the Host value now known good).

    ``good_host`` is a Host value already found well-formed (the connection's last): a client
    sends the same one on every request, so the pattern runs once per connection.
    """
    host = 0
    found = 0
    max_field = limits.max_field_size
    total = 0
    for name, value in fields:
        size = len(name)
        field = size + len(value)
        if field > max_field:
            raise BadRequest(431, "Request header field too large")
        total += field
        if size == 4:
            if name == b"Host" or name.lower() == b"host":
                host += 1
                if value != good_host:
                    if not _HOST.fullmatch(value):
                        raise BadRequest(400, "Invalid Host header")
                    good_host = value
        elif size == 17:
            if name.lower() == b"transfer-encoding":
                found |= FRAMED_BODY
                check_transfer_encoding(value, version)
        elif size == 14:
            if name.lower() == b"content-length" and value != b"0":
                found |= FRAMED_BODY
        elif size == 6:
            if name.lower() == b"expect":
                if value.lower() != b"100-continue":
                    raise BadRequest(417, "Only 100-continue is supported in Expect")
                found |= EXPECTS_CONTINUE
        elif size == 7 and name.lower() == b"upgrade":
            found |= UPGRADE_FIELD
    total += 4 * len(fields)  # ": " and CRLF
    if total > limits.max_head_size:
        raise BadRequest(431, "Request header fields too large")
    if host > 1 or (host == 0 and version == "1.1"):
        raise BadRequest(400, "Missing or duplicated Host header")
    return found, total, good_host


def check_request_line(method: bytes, url: bytes, limits: Limits) -> None:
    """The request line's length, and a target that is not origin-form (``/...``)."""
    if len(method) + len(url) + 10 > limits.max_line_size:
        raise BadRequest(414, "Request line too long")
    if not url.startswith(b"/"):
        check_target_form(url, method)


def check_transfer_encoding(value: bytes, version: str) -> None:
    """A Transfer-Encoding list squall can frame a body by: ``chunked``, once, last."""
    if version == "1.0":
        raise BadRequest(400, "Transfer-Encoding in an HTTP/1.0 request")
    codings = [c.strip().lower() for c in value.split(b",")]
    if codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
        raise BadRequest(400, "Transfer-Encoding must end with chunked, once")
    if len(codings) > 1:
        raise BadRequest(501, "Transfer coding not implemented")


def check_target_form(url: bytes, method: bytes) -> None:
    """Non-origin request targets: absolute-form, authority-form (CONNECT), asterisk (OPTIONS)."""
    if url == b"*":
        if method != b"OPTIONS":
            raise BadRequest(400, "Asterisk-form target is only for OPTIONS")
        return
    if method == b"CONNECT":
        return
    lower = url[:8].lower()
    if not (lower.startswith(b"http://") or lower.startswith(b"https://")):
        raise BadRequest(400, "Invalid request target")


def not_http(data: bytes, url: bytes) -> bool:
    """Whether an HTTP/1.0 request line in ``data`` is really RTSP's or ICE's (llhttp takes
    ``RTSP/1.0`` and ``ICE/1.0`` and reports them as HTTP/1.0)."""
    return (b"TSP/" in data or b"ICE/" in data) and (
        url + b" RTSP/" in data or url + b" ICE/" in data
    )
