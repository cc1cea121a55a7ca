"""Malformed input on the wire (issue #3, point 3): each case gets the status RFC 9110/9112 calls
for, a short plain-text body, the connection closed, and the server goes on serving.

Every case is raw bytes sent to the shared test server. The reply is read until the server closes
(bounded by ``READ_TIMEOUT``), split into responses, and checked: the exact status sequence (one
error, or the valid pipelined answers followed by one error), a short ``text/plain`` error body with
no traceback, nothing left over, the connection closed, and a fresh client served afterwards.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field

import pytest

from .conftest import ServerThread, is_closed

READ_TIMEOUT = 1.5  # the server closes right after its answer; a hang shows up as "not closed"
HEADER_TIMEOUT = 2.0  # the module-scoped `server` fixture's header_timeout

HOST = b"Host: x\r\n"
OK_GET = b"GET /hello/x HTTP/1.1\r\nHost: x\r\n\r\n"
SMUGGLED = b"GET /hello/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def get(line: bytes = b"GET /hello/x HTTP/1.1", *headers: bytes, host: bool = True) -> bytes:
    """A request head: ``line``, then Host (unless ``host`` is false), then ``headers``."""
    fields = ([HOST] if host else []) + [h + b"\r\n" for h in headers]
    return line + b"\r\n" + b"".join(fields) + b"\r\n"


def post(path: bytes, *headers: bytes, body: bytes = b"", version: bytes = b"1.1") -> bytes:
    return get(b"POST " + path + b" HTTP/" + version, *headers) + body


def chunked(path: bytes, body: bytes) -> bytes:
    return post(path, b"Transfer-Encoding: chunked", body=body)


# -- reading responses ----------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    head: bytes
    headers: dict[bytes, list[bytes]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?")


def parse_responses(data: bytes) -> list[Response]:
    """Split everything the server sent into responses; fail on anything that is not one."""
    out: list[Response] = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head after {len(out)} response(s): {data[:300]!r}"
        lines = head.split(b"\r\n")
        match = _STATUS.fullmatch(lines[0])
        assert match, f"not a status line: {lines[0][:200]!r}"
        resp = Response(int(match.group(1)), head)
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            assert colon, f"bad response header line {line!r}"
            resp.headers.setdefault(name.strip().lower(), []).append(value.strip())
        te = resp.header(b"transfer-encoding")
        length = resp.header(b"content-length")
        if te is not None and te.lower() == b"chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    _, _, rest = rest.partition(b"\r\n")
                    break
                body += rest[:size]
                rest = rest[size + 2 :]
            resp.body = body
        elif length is not None:
            n = int(length)
            assert len(rest) >= n, f"body cut short: {rest!r} (want {n} bytes)"
            resp.body, rest = rest[:n], rest[n:]
        else:  # close-delimited
            resp.body, rest = rest, b""
        out.append(resp)
        data = rest
    return out


def read_to_close(sock: socket.socket, timeout: float = READ_TIMEOUT) -> tuple[bytes, bool]:
    """Everything the server sends until it closes; (data, closed) — closed is False on timeout."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return b"".join(chunks), False
        except ConnectionResetError:
            return b"".join(chunks), True
        if not chunk:
            # The conftest helper agrees: the peer has closed (EOF or reset).
            return b"".join(chunks), is_closed(sock, 0.5)
        chunks.append(chunk)


def connect(server: ServerThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT)


def send_all(sock: socket.socket, pieces: list[bytes], pause: float = 0.0) -> None:
    for piece in pieces:
        try:
            sock.sendall(piece)
        except OSError:  # the server refused early and closed: what it sent is still readable
            return
        if pause:
            time.sleep(pause)


def exchange(
    server: ServerThread, data: bytes | list[bytes], *, pause: float = 0.0, half_close: bool = False
) -> tuple[list[Response], bool, bytes]:
    with connect(server) as sock:
        send_all(sock, [data] if isinstance(data, bytes) else data, pause)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        raw, closed = read_to_close(sock)
    return parse_responses(raw), closed, raw


# -- the four checks ------------------------------------------------------------------------------


def assert_short_plain_error(resp: Response) -> None:
    assert resp.status >= 400
    ctype = resp.header(b"content-type") or b""
    assert ctype.startswith(b"text/plain"), resp.head
    assert 0 < len(resp.body) <= 256, resp.body
    for leak in (b"Traceback", b'File "', b"httptools", b"Exception", b"Error:"):
        assert leak not in resp.body, resp.body
    assert (resp.header(b"connection") or b"").lower() == b"close", resp.head


def assert_next_client_served(server: ServerThread) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /hello/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw, closed = read_to_close(sock)
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [200], raw[:300]
    assert responses[0].body == b"Hello, x!"
    assert closed


def check(
    server: ServerThread,
    data: bytes | list[bytes],
    expected: list[int],
    *,
    pause: float = 0.0,
    half_close: bool = False,
) -> list[Response]:
    """Send ``data``; expect exactly ``expected`` statuses in order, then the connection closed."""
    responses, closed, raw = exchange(server, data, pause=pause, half_close=half_close)
    got = [r.status for r in responses]
    assert got == expected, f"statuses {got}, want {expected}: {raw[:400]!r}"
    for resp in responses:
        if resp.status >= 400:
            assert_short_plain_error(resp)
    assert b"smuggled" not in raw, "a request smuggled inside another one was answered"
    assert closed, f"connection not closed within {READ_TIMEOUT}s after {got}"
    assert_next_client_served(server)
    return responses


# -- the cases ------------------------------------------------------------------------------------

LONG = 9000  # over the 8190-byte request-line and field limits

HEAD_CASES = [
    # Sizes: 414 for the request line, 431 for a field, the field count and the whole head.
    pytest.param(get(b"GET /" + b"a" * LONG + b" HTTP/1.1"), 414, id="target-over-8190"),
    # "GET " + target + " HTTP/1.1" = 8191 bytes: the request line, not the target, is limited.
    pytest.param(get(b"GET /" + b"a" * 8177 + b" HTTP/1.1"), 414, id="request-line-8191"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X-Big: " + b"v" * LONG), 431, id="field-value"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X" * LONG + b": v"), 431, id="field-name"),
    pytest.param(
        get(b"GET /hello/x HTTP/1.1", *(b"X-%d: v" % i for i in range(128))),
        431,
        id="129-headers",
    ),
    pytest.param(
        get(b"GET /hello/x HTTP/1.1", *(b"X-%d: " % i + b"v" * 700 for i in range(120))),
        431,
        id="head-over-64k-one-send",
    ),
    # Request methods: a token nobody implements is 501; anything that is not a token is 400.
    pytest.param(get(b"G@T /hello/x HTTP/1.1"), 400, id="method-at-sign"),
    pytest.param(get(b"G\x00T /hello/x HTTP/1.1"), 400, id="method-nul"),
    pytest.param(get(b"G(T) /hello/x HTTP/1.1"), 400, id="method-parens"),
    pytest.param(get(b" GET /hello/x HTTP/1.1"), 400, id="method-leading-space"),
    pytest.param(get(b"GET\t/hello/x HTTP/1.1"), 400, id="method-tab-separator"),
    pytest.param(get(b"FOO /hello/x HTTP/1.1"), 501, id="method-unknown-FOO"),
    pytest.param(get(b"get /hello/x HTTP/1.1"), 501, id="method-lowercase-get"),
    pytest.param(get(b"PUTX /hello/x HTTP/1.1"), 501, id="method-unknown-PUTX"),
    # HTTP versions: a well-formed version we do not speak is 505; a malformed one is 400.
    pytest.param(get(b"GET /hello/x HTTP/1.2"), 505, id="version-1.2"),
    pytest.param(get(b"GET /hello/x HTTP/2.0"), 505, id="version-2.0"),
    pytest.param(get(b"GET /hello/x HTTP/3.1"), 505, id="version-3.1"),
    pytest.param(get(b"GET /hello/x HTTP/0.9"), 505, id="version-0.9"),
    pytest.param(get(b"GET /hello/x"), 505, id="version-missing"),
    # (the whole preface starts HTTP/2, tests/test_http2.py; a broken one is HTTP/1.x's)
    pytest.param(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", 400, id="http2-preface-broken"),
    pytest.param(get(b"GET /hello/x HTTX/1.1"), 400, id="version-HTTX"),
    pytest.param(get(b"GET /hello/x http/1.1"), 400, id="version-lowercase"),
    pytest.param(get(b"GET /hello/x HTTP/1.10"), 400, id="version-1.10"),
    pytest.param(get(b"GET /hello/x HTTP/1.1 "), 400, id="version-trailing-space"),
    pytest.param(get(b"GET /hello/x RTSP/1.0"), 400, id="version-RTSP"),
    # Request targets.
    pytest.param(get(b"GET /hello/a\x00b HTTP/1.1"), 400, id="target-nul"),
    pytest.param(get(b"GET /hello/a\x01b HTTP/1.1"), 400, id="target-ctl-01"),
    pytest.param(get(b"GET /hello/a\x7fb HTTP/1.1"), 400, id="target-del"),
    pytest.param(get(b"GET /hello/x?a=\x01 HTTP/1.1"), 400, id="target-ctl-in-query"),
    pytest.param(get(b"GET /hello/\xc3\xa9 HTTP/1.1"), 400, id="target-raw-utf8"),
    pytest.param(get(b"GET /hello/a b HTTP/1.1"), 400, id="target-space"),
    pytest.param(get(b"GET * HTTP/1.1"), 400, id="target-asterisk-with-GET"),
    pytest.param(get(b"GET x:443 HTTP/1.1"), 400, id="target-authority-with-GET"),
    pytest.param(get(b"GET HTTP/1.1"), 400, id="target-missing"),
    # Header field syntax.
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X\x00Y: v"), 400, id="name-nul"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X\x01Y: v"), 400, id="name-ctl-01"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X\x7fY: v"), 400, id="name-del"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X(Y): v"), 400, id="name-non-token"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X: a\x00b"), 400, id="value-nul"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X: a\x01b"), 400, id="value-ctl-01"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X: a\x7fb"), 400, id="value-del"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X: a\rb"), 400, id="value-bare-cr"),
    pytest.param(b"GET /hello/x HTTP/1.1\rHost: x\r\n\r\n", 400, id="bare-cr-request-line"),
    pytest.param(b"GET /hello/x HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400, id="bare-cr-field-line"),
    pytest.param(b"GET /hello/x HTTP/1.1\nHost: x\n\n", 400, id="bare-lf-everywhere"),
    pytest.param(b"GET /hello/x HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400, id="bare-lf-field-line"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X: a", b" folded"), 400, id="obs-fold-space"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X: a", b"\tfolded"), 400, id="obs-fold-tab"),
    pytest.param(b"GET /hello/x HTTP/1.1\r\n Host: x\r\n\r\n", 400, id="space-before-first-field"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X : v"), 400, id="space-before-colon"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"X\t: v"), 400, id="tab-before-colon"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b": v"), 400, id="empty-field-name"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"NoColon"), 400, id="field-without-colon"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"No colon here"), 400, id="field-words-no-colon"),
    # Host (RFC 9112 3.2: missing on 1.1, more than one, or an invalid value: 400).
    pytest.param(get(b"GET /hello/x HTTP/1.1", host=False), 400, id="host-missing"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"Host: y"), 400, id="host-duplicate-differing"),
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"Host: x"), 400, id="host-duplicate-identical"),
    pytest.param(get(b"GET /hello/x HTTP/1.0", b"Host: y"), 400, id="host-duplicate-http10"),
    pytest.param(
        get(b"GET /hello/x HTTP/1.1", b"Host: a b", host=False), 400, id="host-invalid-space"
    ),
    pytest.param(
        get(b"GET /hello/x HTTP/1.1", b"Host: a/b", host=False), 400, id="host-invalid-slash"
    ),
    # Expect: only 100-continue exists (RFC 9110 10.1.1).
    pytest.param(get(b"GET /hello/x HTTP/1.1", b"Expect: something-else"), 417, id="expect-get"),
    pytest.param(
        post(b"/echo", b"Content-Length: 2", b"Expect: 200-ok", body=b"hi"), 417, id="expect-post"
    ),
]

FRAMING_CASES = [
    # Content-Length together with Transfer-Encoding (RFC 9112 6.1, 6.3): 400 and close.
    pytest.param(
        post(b"/echo", b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
        400,
        id="cl-then-te",
    ),
    pytest.param(
        post(b"/echo", b"Transfer-Encoding: chunked", b"Content-Length: 5", body=b"0\r\n\r\n"),
        400,
        id="te-then-cl",
    ),
    # Content-Length values (RFC 9112 6.3 item 5): 400, except a number too large to hold: 413.
    pytest.param(
        post(b"/echo", b"Content-Length: 5", b"Content-Length: 5", body=b"hello"),
        400,
        id="cl-duplicate-identical",
    ),
    pytest.param(
        post(b"/echo", b"Content-Length: 5", b"Content-Length: 6", body=b"hello!"),
        400,
        id="cl-duplicate-differing",
    ),
    pytest.param(post(b"/echo", b"Content-Length: 5, 6", body=b"hello!"), 400, id="cl-list"),
    pytest.param(post(b"/echo", b"Content-Length: +5", body=b"hello"), 400, id="cl-plus"),
    pytest.param(post(b"/echo", b"Content-Length: -1", body=b"hello"), 400, id="cl-negative"),
    pytest.param(post(b"/echo", b"Content-Length: 0x5", body=b"hello"), 400, id="cl-hex"),
    pytest.param(post(b"/echo", b"Content-Length: 5 5", body=b"hello"), 400, id="cl-inner-space"),
    pytest.param(post(b"/echo", b"Content-Length:", body=b"hello"), 400, id="cl-empty"),
    pytest.param(
        post(b"/echo", b"Content-Length: 99999999999999999999", body=b"hello"),
        413,
        id="cl-overflow-2^64",
    ),
    # Transfer-Encoding (RFC 9112 6.1, 6.3): chunked not last, or twice: 400; an unknown coding
    # before chunked: 501; any Transfer-Encoding in HTTP/1.0: faulty framing, 400.
    pytest.param(
        post(b"/echo", b"Transfer-Encoding: chunked, gzip", body=b"0\r\n\r\n"),
        400,
        id="te-chunked-gzip",
    ),
    pytest.param(
        post(b"/echo", b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"),
        501,
        id="te-gzip-chunked",
    ),
    pytest.param(post(b"/echo", b"Transfer-Encoding: identity", body=b"x"), 400, id="te-identity"),
    pytest.param(post(b"/echo", b"Transfer-Encoding: gzip", body=b"x"), 400, id="te-gzip-alone"),
    pytest.param(post(b"/echo", b"Transfer-Encoding:", body=b"x"), 400, id="te-empty"),
    pytest.param(
        post(b"/echo", b"Transfer-Encoding: chunked, chunked", body=b"0\r\n\r\n"),
        400,
        id="te-chunked-twice-list",
    ),
    pytest.param(
        post(
            b"/echo",
            b"Transfer-Encoding: chunked",
            b"Transfer-Encoding: chunked",
            body=b"0\r\n\r\n",
        ),
        400,
        id="te-chunked-twice-fields",
    ),
    pytest.param(
        post(b"/echo", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n", version=b"1.0"),
        400,
        id="te-in-http10",
    ),
    # Bad chunked bodies on a route that reads the body: the handler layer answers 400.
    pytest.param(chunked(b"/echo", b"zz\r\nhello\r\n0\r\n\r\n"), 400, id="chunk-size-zz"),
    pytest.param(chunked(b"/echo", b"\r\nhello\r\n0\r\n\r\n"), 400, id="chunk-size-empty"),
    pytest.param(chunked(b"/echo", b"-5\r\nhello\r\n0\r\n\r\n"), 400, id="chunk-size-negative"),
    pytest.param(chunked(b"/echo", b"0x5\r\nhello\r\n0\r\n\r\n"), 400, id="chunk-size-0x"),
    pytest.param(
        chunked(b"/echo", b"f" * 18 + b"\r\nhello\r\n0\r\n\r\n"), 400, id="chunk-size-overflow"
    ),
    pytest.param(chunked(b"/echo", b"5\r\nhelloXX0\r\n\r\n"), 400, id="chunk-no-crlf-after-data"),
    pytest.param(chunked(b"/echo", b"5\r\nhello!\r\n0\r\n\r\n"), 400, id="chunk-data-too-long"),
    pytest.param(chunked(b"/echo", b"5;\x01\r\nhello\r\n0\r\n\r\n"), 400, id="chunk-ext-ctl"),
    pytest.param(chunked(b"/echo", b"5;a=@\r\nhello\r\n0\r\n\r\n"), 400, id="chunk-ext-value"),
    pytest.param(chunked(b"/echo", b"5\nhello\r\n0\r\n\r\n"), 400, id="chunk-bare-lf"),
    pytest.param(chunked(b"/echo", b"5\r\nhello\r\n0\r\nBad trailer\r\n\r\n"), 400, id="trailer"),
]


@pytest.mark.parametrize(("data", "status"), HEAD_CASES + FRAMING_CASES)
def test_malformed_request_gets_one_error_and_close(
    server: ServerThread, data: bytes, status: int
) -> None:
    check(server, data, [status])


def test_head_over_64k_in_pieces(server: ServerThread) -> None:
    data = get(b"GET /hello/x HTTP/1.1", *(b"X-%d: " % i + b"v" * 700 for i in range(120)))
    check(server, [data[i : i + 8192] for i in range(0, len(data), 8192)], [431])


def test_target_over_8190_in_pieces(server: ServerThread) -> None:
    data = get(b"GET /" + b"a" * LONG + b" HTTP/1.1")
    check(server, [data[i : i + 1000] for i in range(0, len(data), 1000)], [414])


# -- bodies on a route that never reads them ------------------------------------------------------
#
# POST /ignore answers "ignored" without reading: the handler runs as soon as the head is parsed
# (protocol.py on_headers_complete -> _dispatch) and has its 200 out before the parser reaches the
# broken chunk. That 200 is the one answer this request gets; the broken framing then means the
# next request cannot be found, so the connection must close, with no second (400) answer to a
# request that was never sent.

IGNORED_BODY_CASES = [
    pytest.param(chunked(b"/ignore", b"zz\r\nhello\r\n0\r\n\r\n"), id="chunk-size-zz"),
    pytest.param(chunked(b"/ignore", b"f" * 18 + b"\r\nx\r\n0\r\n\r\n"), id="chunk-size-overflow"),
    pytest.param(chunked(b"/ignore", b"5\r\nhelloXX0\r\n\r\n"), id="chunk-no-crlf-after-data"),
    pytest.param(chunked(b"/ignore", b"5;\x01\r\nhello\r\n0\r\n\r\n"), id="chunk-ext-ctl"),
]


@pytest.mark.parametrize("data", IGNORED_BODY_CASES)
def test_bad_chunked_body_on_route_that_does_not_read(server: ServerThread, data: bytes) -> None:
    (resp,) = check(server, data, [200])
    assert resp.body == b"ignored"


@pytest.mark.parametrize("data", IGNORED_BODY_CASES)
def test_bad_chunked_body_after_head_on_route_that_does_not_read(
    server: ServerThread, data: bytes
) -> None:
    head, sep, body = data.partition(b"\r\n\r\n")
    (resp,) = check(server, [head + sep, body], [200], pause=0.1)
    assert resp.body == b"ignored"


# -- pipelining: never two requests read out of one ----------------------------------------------

PIPELINE_CASES = [
    pytest.param(OK_GET + b"\x01\x02\x03 / HTTP/1.1\r\n\r\n", [200, 400], id="ctl-garbage"),
    pytest.param(OK_GET + b"@@@@ garbage\r\n\r\n", [200, 400], id="non-token-garbage"),
    pytest.param(OK_GET + b"\x00" * 64, [200, 400], id="nul-bytes"),
    pytest.param(OK_GET + get(b"FOO /hello/x HTTP/1.1"), [200, 501], id="unknown-method"),
    pytest.param(OK_GET + get(b"GET /hello/x HTTP/1.2"), [200, 505], id="version-1.2"),
    pytest.param(OK_GET + get(b"GET /hello/x HTTX/1.1"), [200, 400], id="version-HTTX"),
    pytest.param(OK_GET + get(b"GET /hello/x HTTP/1.1", b"X : y"), [200, 400], id="bad-field"),
    pytest.param(OK_GET + get(b"GET /hello/x HTTP/1.1", host=False), [200, 400], id="no-host"),
    pytest.param(
        OK_GET + OK_GET + b"GET /hello/\x00 HTTP/1.1\r\n\r\n", [200, 200, 400], id="third-bad"
    ),
    pytest.param(
        post(b"/echo", b"Content-Length: 3", body=b"abc") + b"\x01junk\r\n\r\n",
        [200, 400],
        id="after-cl-body",
    ),
    pytest.param(
        chunked(b"/echo", b"3\r\nabc\r\n0\r\n\r\n") + b"{json: 1}\r\n\r\n",
        [200, 400],
        id="after-chunked-body",
    ),
    pytest.param([OK_GET, b"\x01\x02garbage\r\n\r\n"], [200, 400], id="garbage-in-later-packet"),
]


@pytest.mark.parametrize(("data", "statuses"), PIPELINE_CASES)
def test_garbage_after_valid_pipelined_request(
    server: ServerThread, data: bytes | list[bytes], statuses: list[int]
) -> None:
    responses = check(server, data, statuses, pause=0.1 if isinstance(data, list) else 0.0)
    for resp in responses[:-1]:
        assert resp.body in (b"Hello, x!", b"abc")


# -- smuggling: a second request hidden in the first must never be answered -----------------------

SMUGGLING_CASES = [
    pytest.param(
        post(b"/echo", b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n")
        + SMUGGLED,
        id="CL.TE",
    ),
    pytest.param(
        post(
            b"/ignore",
            b"Transfer-Encoding: chunked",
            b"Content-Length: %d" % (len(SMUGGLED) + 5),
            body=b"0\r\n\r\n" + SMUGGLED,
        ),
        id="TE.CL",
    ),
    pytest.param(
        post(b"/ignore", b"Content-Length: 0", b"Transfer-Encoding: chunked", body=SMUGGLED),
        id="CL0.TE",
    ),
    pytest.param(
        post(
            b"/ignore",
            b"Content-Length: 0",
            b"Content-Length: %d" % len(SMUGGLED),
            body=SMUGGLED,
        ),
        id="CL.CL",
    ),
    pytest.param(
        post(
            b"/ignore",
            b"Transfer-Encoding: chunked",
            b"Transfer-Encoding: identity",
            body=b"0\r\n\r\n" + SMUGGLED,
        ),
        id="TE.TE-identity",
    ),
    pytest.param(
        post(
            b"/ignore",
            b"Content-Length: %d" % (len(SMUGGLED) + 5),
            b"Transfer-Encoding : chunked",
            body=b"0\r\n\r\n" + SMUGGLED,
        ),
        id="TE-space-before-colon",
    ),
    pytest.param(
        post(
            b"/ignore",
            b"Content-Length: %d" % (len(SMUGGLED) + 5),
            b"Transfer-Encoding: xchunked",
            body=b"0\r\n\r\n" + SMUGGLED,
        ),
        id="TE-xchunked",
    ),
    pytest.param(
        post(
            b"/ignore",
            b"Content-Length: %d" % (len(SMUGGLED) + 5),
            b"X: y",
            b" Transfer-Encoding: chunked",
            body=b"0\r\n\r\n" + SMUGGLED,
        ),
        id="TE-in-obs-fold",
    ),
    pytest.param(
        post(
            b"/ignore",
            b"Transfer-Encoding: chunked",
            b"Content-Length: 5",
            body=b"0\r\n\r\n" + SMUGGLED,
            version=b"1.0",
        ),
        id="TE.CL-http10",
    ),
    pytest.param(
        post(
            b"/ignore", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n" + SMUGGLED, version=b"1.0"
        ).replace(b"Host: x\r\n", b"Host: x\r\nConnection: keep-alive\r\n"),
        id="TE-http10-keep-alive",
    ),
    pytest.param(
        post(b"/echo", b"Transfer-Encoding: chunked", body=b"0\nSMUGGLE\r\n\r\n" + SMUGGLED),
        id="chunk-bare-lf",
    ),
]


@pytest.mark.parametrize("data", SMUGGLING_CASES)
def test_smuggling_attempt_answered_once(server: ServerThread, data: bytes) -> None:
    check(server, data, [400])


def test_smuggling_attempt_in_pieces(server: ServerThread) -> None:
    head = post(b"/echo", b"Content-Length: 5", b"Transfer-Encoding: chunked")
    check(server, [head, b"0\r\n\r\n", SMUGGLED], [400], pause=0.05)


# -- slow and partial clients ---------------------------------------------------------------------


def test_dribbled_request_head_gets_408_in_bounded_time(server: ServerThread) -> None:
    with connect(server) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /hello/x HTTP/1.1\r\n")
        raw = b""
        while time.monotonic() - start < HEADER_TIMEOUT + 2.5:
            try:
                sock.sendall(b"X-Slow: y\r\n")
            except OSError:
                break
            sock.settimeout(0.25)
            try:
                raw = sock.recv(65536)
            except TimeoutError:
                continue
            break
        rest, closed = read_to_close(sock)
        elapsed = time.monotonic() - start
    responses = parse_responses(raw + rest)
    assert [r.status for r in responses] == [408]
    assert_short_plain_error(responses[0])
    assert closed
    # The server checks deadlines on a 1 s tick and stamps them with the tick's clock, so the
    # answer comes between header_timeout - 1 s and header_timeout + 1 s after the first byte.
    assert HEADER_TIMEOUT - 1.1 <= elapsed <= HEADER_TIMEOUT + 1.5, elapsed
    assert_next_client_served(server)


CUT_SHORT_CASES = [
    pytest.param(post(b"/echo", b"Content-Length: 10", body=b"abc"), [400], id="cl-body-echo"),
    pytest.param(chunked(b"/echo", b"5\r\nhel"), [400], id="chunked-body-echo"),
    pytest.param(chunked(b"/echo", b"5\r\nhello\r\n"), [400], id="chunked-no-last-chunk-echo"),
    pytest.param(post(b"/ignore", b"Content-Length: 10", body=b"abc"), [200], id="cl-body-ignore"),
]


@pytest.mark.parametrize(("data", "statuses"), CUT_SHORT_CASES)
def test_body_cut_short_by_half_close(
    server: ServerThread, data: bytes, statuses: list[int]
) -> None:
    """The client half-closes mid-body: no hang; the body's reader fails (400) and we close."""
    start = time.monotonic()
    check(server, [data], statuses, half_close=True)
    assert time.monotonic() - start < READ_TIMEOUT


def test_head_cut_short_by_half_close(server: ServerThread) -> None:
    """Half a head, then EOF: there is no request to answer; the server just closes, promptly."""
    start = time.monotonic()
    responses, closed, raw = exchange(
        server, b"GET /hello/x HTTP/1.1\r\nHost: x\r\nX-", half_close=True
    )
    assert responses == [] or [r.status for r in responses] == [400], raw
    assert closed
    assert time.monotonic() - start < 1.0
    assert_next_client_served(server)
