"""HTTP/1.1 behaviour on the wire: keep-alive, pipelining, HEAD, 1.0, bodies, 100-continue."""

from __future__ import annotations

import socket
import time

from .conftest import ServerThread, is_closed, raw_request, read_until_close


def _connect(server: ServerThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


_leftover: dict[int, bytes] = {}


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read one Content-Length-framed response; return (head, body). Extra bytes are kept."""
    data = _leftover.pop(sock.fileno(), b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a full head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    if len(rest) > length:
        _leftover[sock.fileno()] = rest[length:]
    return head, rest[:length]


def test_keep_alive_serves_many_requests_on_one_connection(server: ServerThread) -> None:
    with _connect(server) as sock:
        for i in range(20):
            sock.sendall(f"GET /hello/n{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head, body = _read_response(sock)
            assert head.startswith(b"HTTP/1.1 200 OK")
            assert b"connection:" not in head.lower()
            assert body == f"Hello, n{i}!".encode()


def test_connection_close_closes_after_response(server: ServerThread) -> None:
    data = raw_request(
        server.port, b"GET /hello/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"\r\nConnection: close\r\n" in data
    assert data.endswith(b"Hello, x!")


def test_http10_closes_by_default_and_keeps_alive_on_request(server: ServerThread) -> None:
    data = raw_request(server.port, b"GET /hello/a HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"Hello, a!")
    with _connect(server) as sock:
        for _ in range(2):
            sock.sendall(b"GET /hello/b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            head, body = _read_response(sock)
            assert b"Connection: keep-alive" in head
            assert body == b"Hello, b!"


def test_pipelined_requests_answered_in_order(server: ServerThread) -> None:
    reqs = b"".join(
        f"GET /sleep?s={0.05 if i % 2 else 0}&tag={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        for i in range(10)
    )
    with _connect(server) as sock:
        sock.sendall(reqs)
        for i in range(10):
            _, body = _read_response(sock)
            assert body == f"slept {i}".encode()


def test_deep_pipeline_is_bounded_but_complete(server: ServerThread) -> None:
    n = 200
    reqs = b"GET /sleep?s=0.001 HTTP/1.1\r\nHost: x\r\n\r\n" * n
    with _connect(server) as sock:
        sock.sendall(reqs)
        for _ in range(n):
            _read_response(sock)


def test_head_has_headers_and_no_body(server: ServerThread) -> None:
    data = raw_request(
        server.port, b"HEAD /hello/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Length: 9" in head
    assert body == b""


def test_date_and_server_headers(server: ServerThread) -> None:
    data = raw_request(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"\r\nDate: " in data and b" GMT\r\n" in data
    assert b"\r\nServer: Python/3." in data and b"squall/" in data


def test_content_length_body(server: ServerThread) -> None:
    data = raw_request(
        server.port,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"\r\n\r\nhello")


def test_chunked_body(server: ServerThread) -> None:
    data = raw_request(
        server.port,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
    )
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"\r\n\r\nhello world")


def test_body_sent_slowly_in_pieces(server: ServerThread) -> None:
    pieces = [b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"]
    pieces += [b"ab"] * 5
    data = raw_request(server.port, pieces, pause=0.02)
    assert data.endswith(b"\r\n\r\nababababab")


def test_expect_100_continue(server: ServerThread) -> None:
    with _connect(server) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = sock.recv(1024)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"data")
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and body == b"data"


def test_expect_100_continue_not_sent_when_body_unread(server: ServerThread) -> None:
    with _connect(server) as sock:
        sock.sendall(
            b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and body == b"ignored"
        assert b"100 Continue" not in head
        assert is_closed(sock)


def test_unread_body_is_discarded_and_connection_reused(server: ServerThread) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        _, body = _read_response(sock)
        assert body == b"ignored"
        sock.sendall(b"56789GET /hello/after HTTP/1.1\r\nHost: x\r\n\r\n")
        _, body = _read_response(sock)
        assert body == b"Hello, after!"


def test_streamed_response_is_chunked(server: ServerThread) -> None:
    data = raw_request(
        server.port, b"GET /stream?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"7\r\npart 0\n\r\n7\r\npart 1\n\r\n7\r\npart 2\n\r\n0\r\n\r\n"


def test_streamed_response_http10_is_close_delimited(server: ServerThread) -> None:
    data = raw_request(server.port, b"GET /stream?n=2 HTTP/1.0\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert body == b"part 0\npart 1\n"


def test_handler_exception_is_500_and_server_goes_on(server: ServerThread) -> None:
    for path in (b"/boom", b"/boom/later"):
        data = raw_request(server.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 500 Internal Server Error")
        assert b"Traceback" not in data and b"boom" not in data
    data = raw_request(
        server.port, b"GET /hello/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert data.endswith(b"Hello, ok!")


def test_large_response_with_slow_reader(server: ServerThread) -> None:
    with _connect(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.sendall(b"GET /big?mb=4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        time.sleep(0.3)  # let the server hit the transport's high-water mark
        data = read_until_close(sock, 10)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 4194304" in head
    assert len(body) == 4 * 1024 * 1024


def test_idle_keep_alive_connection_is_closed_after_timeout(server: ServerThread) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _read_response(sock)
        start = time.monotonic()
        assert is_closed(sock, timeout=10)
        assert 3.5 < time.monotonic() - start < 8  # keepalive_timeout=5 in the fixture


def test_dribbled_headers_are_dropped_in_bounded_time(server: ServerThread) -> None:
    with _connect(server) as sock:
        start = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        for _ in range(30):
            try:
                sock.sendall(b"X-A: b\r\n")
            except OSError:
                break
            time.sleep(0.2)
            if time.monotonic() - start > 5:
                break
        data = read_until_close(sock, 5)
        assert data.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - start < 5.5  # header_timeout=2 in the fixture


def test_pipelined_batch_keeps_order_with_interim_100_continue(server: ServerThread) -> None:
    """Answers gathered during one read go out before a later request's 100 Continue."""
    with _connect(server) as sock:
        sock.sendall(
            b"GET /hello/first HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and body == b"Hello, first!"
        data = _leftover.pop(sock.fileno(), b"")
        while len(data) < len(b"HTTP/1.1 100 Continue\r\n\r\n"):
            data += sock.recv(1024)
        assert data == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"data")
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and body == b"data"


def test_big_response_written_without_suspending_is_not_held_back(server: ServerThread) -> None:
    data = raw_request(
        server.port, b"GET /big?mb=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=10
    )
    assert len(data.partition(b"\r\n\r\n")[2]) == 2 * 1024 * 1024


def test_http_version_seen_with_and_without_connection_fields(server: ServerThread) -> None:
    """The version is inferred from keep-alive when no Connection field is sent: every case
    of that shortcut must see the version the client sent."""
    import json

    cases = [
        (b"HTTP/1.1", b"", [1, 1], True),
        (b"HTTP/1.1", b"User-Agent: t\r\n", [1, 1], True),
        (b"HTTP/1.1", b"connection: CLOSE\r\n", [1, 1], False),
        (b"HTTP/1.1", b"Connection: keep-alive\r\n", [1, 1], True),
        (b"HTTP/1.0", b"", [1, 0], False),
        (b"HTTP/1.0", b"User-Agent: t\r\n", [1, 0], False),
        (b"HTTP/1.0", b"connection: Keep-Alive\r\n", [1, 0], True),
        (b"HTTP/1.0", b"CONNECTION: keep-alive, x\r\n", [1, 0], True),
    ]
    for version, field, seen, keep_alive in cases:
        with _connect(server) as sock:
            sock.sendall(b"GET /info/v " + version + b"\r\nHost: x\r\n" + field + b"\r\n")
            head, body = _read_response(sock)
            assert head.startswith(b"HTTP/1.1 200 OK"), (version, field, head)
            info = json.loads(body)
            assert info["version"] == seen, (version, field)
            assert info["keep_alive"] is keep_alive, (version, field)
    for version in (b"HTTP/2.0", b"HTTP/0.9"):
        data = raw_request(server.port, b"GET /info/v " + version + b"\r\nHost: x\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 505 "), (version, data)


def test_request_headers_keep_case_order_and_duplicates_across_requests() -> None:
    """request.headers decodes each field name once per process (istr, cached): the mapping
    must still be case-insensitive, keep the names as sent, their order and duplicates."""
    from squall.http.exchange import Exchange
    from squall.http.output import Output
    from squall.http.streams import EMPTY_PAYLOAD
    from squall.web.request import Request

    fields = [(b"Host", b"x"), (b"X-Dup", b"1"), (b"x-dup", b"2"), (b"ACCEPT", b"a\xc3\xa9")]
    for _ in range(2):  # the second time the names come from the cache
        raw = Exchange(
            "GET", b"/", "1.1", list(fields), True, False, False, EMPTY_PAYLOAD, Output(None)
        )
        headers = Request(raw, None, None).headers  # type: ignore[arg-type]
        assert list(headers.items()) == [
            ("Host", "x"),
            ("X-Dup", "1"),
            ("x-dup", "2"),
            ("ACCEPT", "a\u00e9"),
        ]
        assert headers.getall("X-DUP") == ["1", "2"] and headers["accept"] == "a\u00e9"
