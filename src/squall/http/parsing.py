"""The httptools parser's callbacks: the request head collected, checked and dispatched.

What llhttp leaves to us is checked here: Host, the Transfer-Encoding list, the target form,
the version, RTSP/ICE request lines.
"""

from __future__ import annotations

import re
from typing import Final

from .errors import BadRequest
from .exchange import Exchange
from .running import HandlerLayer
from .streams import EMPTY_PAYLOAD, StreamReader

# Keep these here, not imported: CPython compiles ``name.method()`` on an imported name as an
# attribute load and a call, binding a method object each time (measured: ~1% of a request).
_METHODS: Final = {
    m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
}

# uri-host [ ":" port ] (RFC 9112 3.2, RFC 3986 3.2.2): IP-literal, IPv4 or reg-name.
_HOST: Final = re.compile(
    rb"(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)"  # IP-literal | name
    rb"(?::[0-9]*)?"  # port
)


class ParserLayer(HandlerLayer):
    """The callback object of the connection's ``httptools.HttpRequestParser``."""

    __slots__ = ()

    def on_message_begin(self) -> None:
        self._url = b""
        if self._headers:  # a previous request's trailers
            self._headers = []
        self._in_head = True
        self._head_bytes = 0
        self._head_size = 0
        self._connection_field = False
        # Most heads end in the read that began them: the header deadline is armed only when
        # one does not (at the end of data_received), which saves a clock read per request.
        self._deadline = 0.0

    def on_url(self, url: bytes) -> None:
        url = self._url + url if self._url else url
        if len(url) > self._limits.max_line_size:
            raise BadRequest(414, "Request target too long")
        self._url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called once per field (browsers send 10-20): the sizes of the head's fields are
        # checked in one pass in on_headers_complete; the count here bounds the list in memory.
        if value and value[-1] in (32, 9):  # llhttp keeps trailing whitespace
            value = value.rstrip(b" \t")
        headers = self._headers
        if len(headers) >= self._limits.max_headers:
            raise BadRequest(431, "Too many request header fields")
        if len(name) == 10 and name[0] | 0x20 == 99:  # C...: perhaps Connection
            self._connection_field = True  # (see on_headers_complete)
        if not self._in_head:  # a trailer field: no on_headers_complete will check it
            self._check_field_sizes(len(name) + len(value) + 4)
        headers.append((name, value))

    def _check_field_sizes(self, size: int) -> None:
        """One field of ``size`` bytes (with ": " and CRLF) more: within the limits?"""
        limits = self._limits
        if size - 4 > limits.max_field_size:
            raise BadRequest(431, "Request header field too large")
        total = self._head_size = self._head_size + size
        if total > limits.max_head_size:
            raise BadRequest(431, "Request header fields too large")

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._in_head = False
        self._deadline = 0.0
        keep_alive = parser.should_keep_alive()
        # get_http_version() formats a new string (~130 ns): llhttp takes only 0.9, 1.0, 1.1
        # and 2.0, and keeps any but 1.1 alive only for a Connection field. So without one, a
        # kept-alive request is 1.1.
        version = "1.1" if keep_alive and not self._connection_field else parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise BadRequest(505, "HTTP version not supported")
        if version == "1.0":  # llhttp also takes RTSP/1.0 and ICE/1.0, reported as HTTP/1.0
            data = self._data
            if (b"TSP/" in data or b"ICE/" in data) and (
                self._url + b" RTSP/" in data or self._url + b" ICE/" in data
            ):
                raise BadRequest(400, "Not an HTTP request")
        headers = self._headers
        self._headers = []  # trailers of a chunked body land there, never in the request
        url = self._url
        method = parser.get_method()
        if len(method) + len(url) + 10 > self._limits.max_line_size:
            raise BadRequest(414, "Request line too long")
        host = 0
        chunked = False
        has_length = False
        expect = False
        upgrade = method == b"CONNECT"  # llhttp's upgrade needs this or an Upgrade field
        max_field = self._limits.max_field_size
        total = 0
        for name, value in headers:
            size = len(name)
            field = size + len(value)
            if field > max_field:
                raise BadRequest(431, "Request header field too large")
            total += field
            if size == 4:
                if name == b"Host" or name.lower() == b"host":
                    host += 1
                    if value != self._good_host:
                        if not _HOST.fullmatch(value):
                            raise BadRequest(400, "Invalid Host header")
                        self._good_host = value
            elif size == 17:
                if name.lower() == b"transfer-encoding":
                    chunked = True
                    _check_transfer_encoding(value, version)
            elif size == 14:
                if name.lower() == b"content-length":
                    has_length = value != b"0"
            elif size == 6:
                if name.lower() == b"expect":
                    if value.lower() != b"100-continue":
                        raise BadRequest(417, "Only 100-continue is supported in Expect")
                    expect = True
            elif size == 7:
                upgrade = upgrade or name.lower() == b"upgrade"
        self._head_size = total = total + 4 * len(headers)  # trailers are counted on top
        if total > self._limits.max_head_size:
            raise BadRequest(431, "Request header fields too large")
        if host > 1 or (host == 0 and version == "1.1"):
            raise BadRequest(400, "Missing or duplicated Host header")
        if not url.startswith(b"/"):
            _check_target_form(url, method)
        if chunked or has_length:  # body framing does not depend on the method
            body: StreamReader = StreamReader(self, self._limits.read_high_water)
            # While it arrives, the tick watches for a handler starved of body bytes.
            self._body_seen = 0
            self._body_since = self._deadline = self._loop.time()
        else:
            body = EMPTY_PAYLOAD
            expect = False
        upgrade = upgrade and parser.should_upgrade()
        req = Exchange(
            "GET" if method == b"GET" else _METHODS.get(method) or method.decode("ascii"),
            url,
            version,
            headers,
            # Upgrades are not taken yet: answer over HTTP/1.1, then close.
            keep_alive and not upgrade and not self._server.closing,
            upgrade,
            expect,
            body,
            self._output,
        )
        if expect and version == "1.1":
            body.set_continue(req.send_continue)
        self._cur = req
        if body is not EMPTY_PAYLOAD:
            # Bodies stream to the handler: start it now, before the body has arrived.
            self._dispatch(req)

    def on_body(self, body: bytes) -> None:
        self._head_bytes = -1  # progress: data_received restarts its count of non-body bytes
        cur = self._cur
        if cur is not None and not self._discarding:
            cur.body.feed_data(body)

    def on_message_complete(self) -> None:
        self._completed += 1
        req = self._cur
        if req is None:
            return
        self._cur = None
        if req.body is EMPTY_PAYLOAD:
            if (
                self._active is None
                and not self._pipeline
                and not self._output.write_paused
                and not self._closing
            ):
                self._start(req)  # the common case, without _dispatch's detour
            else:
                self._dispatch(req)
        else:
            req.body.feed_eof()
            if self._discarding:
                self._discarding = False
                if self._active is None and not self._pipeline:
                    self._deadline = self._loop.time() + self._limits.keepalive_timeout


def _check_transfer_encoding(value: bytes, version: str) -> None:
    if version == "1.0":
        raise BadRequest(400, "Transfer-Encoding in an HTTP/1.0 request")
    codings = [c.strip().lower() for c in value.split(b",")]
    if codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
        raise BadRequest(400, "Transfer-Encoding must end with chunked, once")
    if len(codings) > 1:
        raise BadRequest(501, "Transfer coding not implemented")


def _check_target_form(url: bytes, method: bytes) -> None:
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
