"""The framing table and the request-head checks, without sockets (sans-I/O).

``body_framing`` decides how every response body is delimited; ``Exchange`` holds a response
to it; ``head.py`` checks what llhttp leaves to us. Each is driven here directly, the wire
behaviour of the same rules is tested on real servers in test_response_framing.py and
test_smuggling.py.
"""

from __future__ import annotations

import pytest

from squall.http.errors import BadRequest
from squall.http.exchange import (
    CHUNKED,
    COMPLETE,
    FIXED_LENGTH,
    HEAD_HELD,
    NO_BODY,
    SENDING,
    UNTIL_CLOSE,
    WAITING,
    Exchange,
    body_framing,
)
from squall.http.head import (
    EXPECTS_CONTINUE,
    FRAMED_BODY,
    UPGRADE_FIELD,
    check_fields,
    check_request_line,
    check_transfer_encoding,
)
from squall.http.limits import Limits
from squall.http.output import Output
from squall.http.streams import EMPTY_PAYLOAD


@pytest.mark.parametrize(
    ("method", "version", "status", "length", "framing"),
    [
        ("GET", "1.1", 200, 5, FIXED_LENGTH),
        ("GET", "1.1", 200, 0, FIXED_LENGTH),
        ("GET", "1.1", 200, -1, CHUNKED),
        ("GET", "1.0", 200, -1, UNTIL_CLOSE),
        ("GET", "1.0", 200, 3, FIXED_LENGTH),
        ("HEAD", "1.1", 200, 5, NO_BODY),
        ("HEAD", "1.1", 200, -1, NO_BODY),
        ("GET", "1.1", 204, 5, NO_BODY),
        ("GET", "1.1", 304, -1, NO_BODY),
        ("GET", "1.1", 101, -1, NO_BODY),
        ("GET", "1.1", 100, -1, NO_BODY),
        ("POST", "1.1", 404, -1, CHUNKED),
    ],
)
def test_body_framing_table(
    method: str, version: str, status: int, length: int, framing: int
) -> None:
    assert body_framing(method, version, status, length) == framing


class Transport:
    """Records what an Output writes."""

    def __init__(self) -> None:
        self.out = bytearray()

    def write(self, data: bytes) -> None:
        self.out += data


def exchange(method: str = "GET", version: str = "1.1") -> tuple[Exchange, Transport]:
    out = Output(None)
    transport = Transport()
    out.transport = transport  # type: ignore[assignment]
    return Exchange(method, b"/", version, [], True, False, False, EMPTY_PAYLOAD, out), transport


def test_a_body_longer_than_declared_is_cut_and_closes() -> None:
    ex, wire = exchange()
    ex.start(200, None, None, [(b"Content-Length", b"5")], -1)
    assert ex.state == HEAD_HELD and ex.framing == FIXED_LENGTH
    ex.write(b"0123")
    assert ex.state == SENDING
    ex.write(b"456789")
    ex.end(b"more")
    assert ex.state == COMPLETE and not ex.keep_alive
    head, _, body = bytes(wire.out).partition(b"\r\n\r\n")
    assert body == b"01234" and b"Content-Length: 5" in head


def test_a_body_shorter_than_declared_closes() -> None:
    ex, wire = exchange()
    ex.start(200, None, None, None, 10)
    ex.end(b"12345")
    assert not ex.keep_alive and bytes(wire.out).endswith(b"\r\n\r\n12345")


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_no_body_is_sent_where_none_may_follow(method: str, status: int) -> None:
    ex, wire = exchange(method)
    ex.respond(status, None, "text/plain", None, b"a body")
    assert ex.keep_alive  # dropping it leaves the connection in step
    assert bytes(wire.out).endswith(b"\r\n\r\n")
    assert (b"Content-Length: 6" in wire.out) == (method == "HEAD")


def test_chunked_and_close_delimited() -> None:
    ex, wire = exchange()
    ex.start(200, None, None, None, -1)
    ex.write(b"ab")
    ex.write(b"")  # no empty chunk: it would end the body
    ex.end(b"c")
    assert bytes(wire.out).endswith(b"\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n") and ex.keep_alive
    ex10, wire10 = exchange(version="1.0")
    ex10.start(200, None, None, None, -1)
    ex10.end(b"abc")
    assert bytes(wire10.out).endswith(b"\r\n\r\nabc") and not ex10.keep_alive
    assert b"Connection" not in wire10.out  # HTTP/1.0 closes unless told otherwise


def test_framing_fields_from_the_application_are_the_exchanges() -> None:
    ex, wire = exchange()
    fields = [
        (b"Transfer-Encoding", b"gzip, chunked"),
        (b"Connection", b"keep-alive"),
        (b"Server", b"mine"),
        (b"X-A", b"1"),
    ]
    ex.respond(200, None, None, fields, b"xy")
    head = bytes(wire.out).partition(b"\r\n\r\n")[0]
    assert b"Transfer-Encoding" not in head and b"Content-Length: 2" in head
    assert head.count(b"Server:") == 1 and b"Server: mine" in head and b"Date: " in head
    assert b"Connection: keep-alive" in head


@pytest.mark.parametrize(
    "fields",
    [
        [(b"X-A", b"1\r\nInjected: yes")],
        [(b"X A", b"1")],
        [(b"", b"1")],
        [("X-A", "1")],  # str: the web layer encodes (encode_fields), ASGI gives bytes
        [(b"Content-Length", b"1x")],
        [(b"Content-Length", b"1"), (b"Content-Length", b"2")],
    ],
)
def test_bad_fields_are_refused_before_anything_is_sent(fields: list) -> None:
    ex, wire = exchange()
    with pytest.raises(ValueError):
        ex.start(200, None, None, fields, -1)
    assert ex.state == WAITING and not wire.out
    assert ex.fail()  # nothing went out: an error response may still replace it


def test_fail_after_the_head_cuts() -> None:
    ex, _ = exchange()
    ex.start(200, None, None, None, -1)
    ex.write(b"part")
    assert ex.fail() is False and ex.state == COMPLETE and not ex.keep_alive


def test_client_left_stops_streamed_writes_but_not_a_whole_answer() -> None:
    ex, wire = exchange()
    ex.client_left()
    assert ex.left and not ex.keep_alive
    ex.respond(200, None, "text/plain", None, b"still here")
    assert bytes(wire.out).endswith(b"still here")
    streamed, _ = exchange()
    streamed.start(200, None, None, None, -1)
    streamed.client_left()
    with pytest.raises(ConnectionResetError):
        streamed.write(b"x")


# -- head.py ----------------------------------------------------------------------------------


def test_check_fields_finds_what_frames_the_request() -> None:
    limits = Limits()
    fields = [
        (b"Host", b"example.com:8080"),
        (b"Content-Length", b"3"),
        (b"Expect", b"100-continue"),
        (b"Upgrade", b"websocket"),
    ]
    found, size, host = check_fields(fields, "1.1", limits, b"")
    assert found == FRAMED_BODY | EXPECTS_CONTINUE | UPGRADE_FIELD
    assert host == b"example.com:8080" and size == sum(len(n) + len(v) + 4 for n, v in fields)
    assert check_fields([(b"host", b"h")], "1.1", limits, b"")[0] == 0
    assert check_fields([(b"Content-Length", b"0")], "1.0", limits, b"")[0] == 0


@pytest.mark.parametrize(
    ("fields", "version", "status"),
    [
        ([], "1.1", 400),  # no Host
        ([(b"Host", b"a"), (b"Host", b"b")], "1.1", 400),
        ([(b"Host", b"a b")], "1.1", 400),
        ([(b"Host", b"a"), (b"Expect", b"200-ok")], "1.1", 417),
        ([(b"Host", b"a"), (b"X", b"y" * 9000)], "1.1", 431),
        ([(b"Host", b"a"), (b"Transfer-Encoding", b"chunked")], "1.0", 400),
    ],
)
def test_check_fields_refusals(fields: list, version: str, status: int) -> None:
    with pytest.raises(BadRequest) as caught:
        check_fields(fields, version, Limits(), b"")
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("value", "status"),
    [(b"gzip", 400), (b"chunked, chunked", 400), (b"chunked, gzip", 400), (b"gzip, chunked", 501)],
)
def test_transfer_encoding_lists(value: bytes, status: int) -> None:
    with pytest.raises(BadRequest) as caught:
        check_transfer_encoding(value, "1.1")
    assert caught.value.status == status
    check_transfer_encoding(b"Chunked", "1.1")


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        (b"GET", b"*", 400),
        (b"GET", b"ftp://x/", 400),
        (b"GET", b"/" + b"a" * 9000, 414),
    ],
)
def test_request_line_refusals(method: bytes, url: bytes, status: int) -> None:
    with pytest.raises(BadRequest) as caught:
        check_request_line(method, url, Limits())
    assert caught.value.status == status
    check_request_line(b"OPTIONS", b"*", Limits())
    check_request_line(b"GET", b"http://x/y", Limits())
    check_request_line(b"CONNECT", b"x:443", Limits())
