"""Request smuggling and message framing, RFC 9112 sections 6 and 7 (issue #9).

Each case is one message followed by a pipelined canary request (``GET /hello/canary``). The
verdict is exact: either the message is refused (one error response, then close, and the canary
is never answered), or it is served and the canary gets its own answer, once. No message may
ever yield a second answer. tests/test_malformed.py holds the first battery (CL+TE in both
orders, CL values, TE lists, bad chunk sizes, obs-fold, bare CR/LF in heads); these are the
cases it does not have: casing, whitespace, list syntax, large numbers, chunk extensions,
trailers, bare CR/LF inside bodies, and every split point of the interesting messages.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from .conftest import ServerThread
from .test_malformed import (
    assert_next_client_served,
    assert_short_plain_error,
    parse_responses,
    read_to_close,
)
from .wire_harness import Harness, read_replies

CANARY = b"GET /hello/canary HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
SMUGGLED = b"GET /hello/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNKED_ABC = b"3\r\nabc\r\n0\r\n\r\n"


def post(*headers: bytes, body: bytes = b"", path: bytes = b"/echo", v: bytes = b"1.1") -> bytes:
    head = b"POST %b HTTP/%b\r\nHost: x\r\n" % (path, v)
    return head + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


def chunked(body: bytes, *headers: bytes) -> bytes:
    return post(b"Transfer-Encoding: chunked", *headers, body=body)


OK = [200, 200]  # served, then the canary

CASES = [
    # Transfer-Encoding: names and values are case-insensitive; OWS (spaces) around the value.
    pytest.param(post(b"Transfer-Encoding: CHUNKED", body=CHUNKED_ABC), OK, id="te-value-upper"),
    pytest.param(post(b"Transfer-Encoding: ChUnKeD", body=CHUNKED_ABC), OK, id="te-value-mixed"),
    pytest.param(post(b"transfer-encoding: chunked", body=CHUNKED_ABC), OK, id="te-name-lower"),
    pytest.param(post(b"Transfer-Encoding:   chunked  ", body=CHUNKED_ABC), OK, id="te-spaces"),
    # llhttp takes a tab after the value for part of it: not chunked, refused (safe side).
    pytest.param(post(b"Transfer-Encoding:\tchunked\t", body=CHUNKED_ABC), [400], id="te-tabs"),
    pytest.param(
        post(b"TRANSFER-ENCODING: chunked", b"CONTENT-LENGTH: 3", body=CHUNKED_ABC),
        [400],
        id="te-cl-upper-names",
    ),
    pytest.param(
        post(b"content-length: 3", b"transfer-encoding: chunked", body=CHUNKED_ABC),
        [400],
        id="cl-te-lower-names",
    ),
    pytest.param(
        post(b"Content-Length: 0", b"Transfer-Encoding: chunked", body=CHUNKED_ABC),
        [400],
        id="cl0-te",
    ),
    pytest.param(
        post(
            b"Content-Length: 3",
            b"Transfer-Encoding: chunked",
            b"Content-Length: 3",
            body=CHUNKED_ABC,
        ),
        [400],
        id="cl-te-cl",
    ),
    pytest.param(
        post(b"Transfer-Encoding: identity", b"Content-Length: 3", body=b"abc"),
        [400],
        id="te-identity-with-cl",
    ),
    # Transfer-Encoding lists: chunked must be last and once; unknown codings are 501.
    pytest.param(post(b"Transfer-Encoding: chunked,chunked", body=CHUNKED_ABC), [400], id="te-cc"),
    pytest.param(
        post(b"Transfer-Encoding: chunked, identity", body=CHUNKED_ABC), [400], id="te-c-id"
    ),
    pytest.param(
        post(b"Transfer-Encoding: identity, chunked", body=CHUNKED_ABC), [501], id="te-id-c"
    ),
    # An empty list element could be ignored (RFC 9110 5.6.1.2): squall refuses instead.
    pytest.param(post(b"Transfer-Encoding: , chunked", body=CHUNKED_ABC), [501], id="te-empty-c"),
    pytest.param(post(b"Transfer-Encoding: chunked,", body=CHUNKED_ABC), [400], id="te-c-empty"),
    pytest.param(post(b'Transfer-Encoding: "chunked"', body=CHUNKED_ABC), [400], id="te-quoted"),
    pytest.param(post(b"Transfer-Encoding: chunked;q=1", body=CHUNKED_ABC), [400], id="te-param"),
    pytest.param(post(b"Transfer-Encoding: chunked\x0b", body=CHUNKED_ABC), [400], id="te-vtab"),
    pytest.param(post(b"Transfer-Encoding: \x0cchunked", body=CHUNKED_ABC), [400], id="te-ff"),
    pytest.param(post(b"Transfer-Encoding: chunked\x00", body=CHUNKED_ABC), [400], id="te-nul"),
    pytest.param(post(b"Transfer-Encoding\n: chunked", body=CHUNKED_ABC), [400], id="te-lf-name"),
    pytest.param(
        post(b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked", body=CHUNKED_ABC),
        [400],
        id="te-fields-gzip-chunked",
    ),
    pytest.param(
        post(b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip", body=CHUNKED_ABC),
        [400],
        id="te-fields-chunked-gzip",
    ),
    pytest.param(
        post(b"Transfer-Encoding: ", b" chunked", body=CHUNKED_ABC), [400], id="te-obs-fold"
    ),
    pytest.param(
        post(
            b"Connection: keep-alive",
            b"Content-Length: 3",
            b"Transfer-Encoding: chunked",
            body=b"abc",
            v=b"1.0",
        ),
        [400],
        id="cl-te-http10-keep-alive",
    ),
    # Content-Length: 1*DIGIT, OWS around it; anything else is 400.
    pytest.param(post(b"Content-Length: 003", body=b"abc"), OK, id="cl-leading-zeros"),
    pytest.param(post(b"Content-Length: " + b"0" * 30 + b"3", body=b"abc"), OK, id="cl-31-digits"),
    pytest.param(post(b"Content-Length:   3  ", body=b"abc"), OK, id="cl-spaces"),
    pytest.param(post(b"Content-Length:\t3", body=b"abc"), OK, id="cl-tab"),
    pytest.param(post(b"Content-Length: 3,", body=b"abc"), [400], id="cl-trailing-comma"),
    pytest.param(post(b"Content-Length: ,3", body=b"abc"), [400], id="cl-leading-comma"),
    pytest.param(post(b"Content-Length: 3, 3", body=b"abc"), [400], id="cl-list-same"),
    pytest.param(post(b"Content-Length: 3,3", body=b"abc"), [400], id="cl-list-same-nospace"),
    pytest.param(post(b"Content-Length: 3e0", body=b"abc"), [400], id="cl-exponent"),
    pytest.param(post(b"Content-Length: 3.0", body=b"abc"), [400], id="cl-decimal"),
    pytest.param(post("Content-Length: ٣".encode(), body=b"abc"), [400], id="cl-arabic-digit"),
    pytest.param(post(b"Content-Length: 3\x00", body=b"abc"), [400], id="cl-nul"),
    pytest.param(post(b"Content-Length: 3\x0b", body=b"abc"), [400], id="cl-vtab"),
    pytest.param(post(b"Content-Length : 3", body=b"abc"), [400], id="cl-space-before-colon"),
    pytest.param(post(b" Content-Length: 3", body=b"abc"), [400], id="cl-space-before-name"),
    pytest.param(post(b"X: y", b" Content-Length: 3", body=b"abc"), [400], id="cl-obs-fold"),
    pytest.param(
        post(b"Content-Length: 3", b"content-length: 3", body=b"abc"), [400], id="cl-dup-case"
    ),
    pytest.param(
        post(b"Content-Length:", b"Content-Length: 3", body=b"abc"), [400], id="cl-empty-then-3"
    ),
    # Lengths that fit in 64 bits but not under client_max_size (1 MiB): the handler's 413.
    pytest.param(post(b"Content-Length: 9223372036854775808", body=b"abc"), [413], id="cl-2^63"),
    pytest.param(post(b"Content-Length: 18446744073709551615", body=b"abc"), [413], id="cl-2^64-1"),
    # Chunk sizes: hex digits only, leading zeros fine, no sign, no 0x, no whitespace.
    pytest.param(chunked(b"0003\r\nabc\r\n0\r\n\r\n"), OK, id="chunk-leading-zeros"),
    pytest.param(chunked(b"0" * 40 + b"3\r\nabc\r\n0\r\n\r\n"), OK, id="chunk-41-digits"),
    pytest.param(chunked(b"A\r\n0123456789\r\n0\r\n\r\n"), OK, id="chunk-upper-hex"),
    pytest.param(chunked(b"10000000000000000\r\nabc\r\n0\r\n\r\n"), [400], id="chunk-2^64"),
    pytest.param(chunked(b"+3\r\nabc\r\n0\r\n\r\n"), [400], id="chunk-plus"),
    pytest.param(chunked(b"0X3\r\nabc\r\n0\r\n\r\n"), [400], id="chunk-0X"),
    pytest.param(chunked(b"3 \r\nabc\r\n0\r\n\r\n"), [400], id="chunk-size-space"),
    pytest.param(chunked(b"3\rabc\r\n0\r\n\r\n"), [400], id="chunk-size-bare-cr"),
    # Chunk extensions: parsed and ignored (never buffered), whatever their length. llhttp takes
    # no whitespace around ";" (BWS, which RFC 9112 7.1.1 allows): refused, the safe side.
    pytest.param(chunked(b'3;a="b c"\r\nabc\r\n0\r\n\r\n'), OK, id="ext-quoted"),
    pytest.param(chunked(b'3;a="b\\"c"\r\nabc\r\n0\r\n\r\n'), OK, id="ext-quoted-pair"),
    pytest.param(chunked(b"3;a\r\nabc\r\n0\r\n\r\n"), OK, id="ext-no-value"),
    pytest.param(chunked(b"3" + b";a=b" * 100 + b"\r\nabc\r\n0\r\n\r\n"), OK, id="ext-100"),
    pytest.param(chunked(b"3;a=" + b"x" * 100_000 + b"\r\nabc\r\n0\r\n\r\n"), OK, id="ext-100k"),
    pytest.param(chunked(b"3\r\nabc\r\n0;last=1\r\n\r\n"), OK, id="ext-on-last-chunk"),
    pytest.param(chunked(b"3 ;a=b\r\nabc\r\n0\r\n\r\n"), [400], id="ext-space-before"),
    pytest.param(chunked(b"3; a = b\r\nabc\r\n0\r\n\r\n"), [400], id="ext-bws"),
    pytest.param(chunked(b"3;a=b\rc\r\nabc\r\n0\r\n\r\n"), [400], id="ext-bare-cr"),
    pytest.param(chunked(b"3;a=b\nabc\r\n0\r\n\r\n"), [400], id="ext-bare-lf"),
    # Bare CR / LF inside chunked framing.
    pytest.param(chunked(b"3\r\nabc\n0\r\n\r\n"), [400], id="chunk-data-bare-lf"),
    pytest.param(chunked(b"3\r\nabc\r0\r\n\r\n"), [400], id="chunk-data-bare-cr"),
    pytest.param(chunked(b"3\r\nabc\r\n0\n\r\n"), [400], id="last-chunk-bare-lf"),
    pytest.param(chunked(b"3\r\nabc\r\n0\r\n\n"), [400], id="final-bare-lf"),
    # Trailers: kept out of the request; framing fields and malformed lines refused.
    pytest.param(chunked(b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"), OK, id="trailer"),
    pytest.param(chunked(b"3\r\nabc\r\n0\r\nHost: evil\r\n\r\n"), OK, id="trailer-host-ignored"),
    pytest.param(chunked(b"3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n"), [400], id="trailer-cl"),
    pytest.param(
        chunked(b"3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"), [400], id="trailer-te"
    ),
    pytest.param(chunked(b"3\r\nabc\r\n0\r\nX-T: 1\r\n folded\r\n\r\n"), [400], id="trailer-fold"),
    pytest.param(chunked(b"3\r\nabc\r\n0\r\nX-T : 1\r\n\r\n"), [400], id="trailer-space-colon"),
    pytest.param(chunked(b"3\r\nabc\r\n0\r\nX-T: 1\n\r\n"), [400], id="trailer-bare-lf"),
    pytest.param(
        chunked(b"3\r\nabc\r\n0\r\nX-T: " + b"v" * 70_000 + b"\r\n\r\n"), [400], id="trailer-70k"
    ),
    pytest.param(
        chunked(b"3\r\nabc\r\n0\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n"),
        [400],
        id="trailers-200",
    ),
    # Heads: bare CR / LF where a CRLF belongs; empty lines before a request are allowed.
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\rabc", [400], id="head-end-cr"
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\nabc", [400], id="head-end-lf"
    ),
    pytest.param(b"GET /hello/x\rHTTP/1.1\r\nHost: x\r\n\r\n", [400], id="request-line-cr"),
    pytest.param(b"GET /hello/x HTTP/1.1\r\nHost: x\r\nX: a\nb\r\n\r\n", [400], id="value-lf"),
    pytest.param(b"GET /hello/x HTTP/1.1\r\nHost: x\r\nX\r: a\r\n\r\n", [400], id="name-cr"),
    pytest.param(b"\r\nGET /hello/x HTTP/1.1\r\nHost: x\r\n\r\n", OK, id="crlf-before"),
    pytest.param(b"\r\n" * 50 + b"GET /hello/x HTTP/1.1\r\nHost: x\r\n\r\n", OK, id="50-crlf"),
    # A body on GET is framed like any other (and dropped when the handler does not read it).
    pytest.param(
        b"GET /hello/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", OK, id="get-cl-body"
    ),
    pytest.param(
        b"GET /hello/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_ABC,
        OK,
        id="get-chunked-body",
    ),
    # HTTP/1.0 without keep-alive: the connection ends with the answer; the canary is not read.
    pytest.param(post(b"Content-Length: 3", body=b"abc", v=b"1.0"), [200], id="http10-closes"),
    # The classic pairs with the smuggled request inside the body, by either reading.
    pytest.param(
        post(
            b"Transfer-Encoding: chunked",
            b"Content-Length: %d" % (len(SMUGGLED) + 5),
            path=b"/ignore",
            body=b"0\r\n\r\n" + SMUGGLED,
        ).replace(b"Transfer-Encoding", b"Transfer-encoding"),
        [400],
        id="TE.CL-casing",
    ),
    pytest.param(
        post(
            b"Content-Length: 4",
            b"Transfer-Encoding: chunked",
            path=b"/ignore",
            body=b"5c\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
        ),
        [400],
        id="CL.TE-smuggled-chunk",
    ),
]


def verdict(server: ServerThread, pieces: list[bytes], expected: list[int]) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        for piece in pieces:
            try:
                sock.sendall(piece)
            except OSError:  # refused early and closed: what it sent is still readable
                break
        raw, closed = read_to_close(sock)
    responses = parse_responses(raw)
    got = [r.status for r in responses]
    assert got == expected, f"statuses {got}, want {expected}: {raw[:400]!r}"
    assert closed
    assert b"smuggled" not in raw, "a request hidden in a message was answered"
    if expected == OK:
        assert raw.count(b"Hello, canary!") == 1
    else:
        assert b"canary" not in raw
        if expected[-1] >= 400:
            assert_short_plain_error(responses[-1])
    assert_next_client_served(server)


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_framing_verdict(server: ServerThread, data: bytes, expected: list[int]) -> None:
    verdict(server, [data + CANARY], expected)


@pytest.mark.parametrize(
    "data",
    [
        post(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n" + SMUGGLED),
        chunked(b"3;a=b\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"),
    ],
    ids=["CL.TE", "chunked-ext-trailer"],
)
def test_byte_at_a_time_over_a_socket(server: ServerThread, data: bytes) -> None:
    expected = [400] if b"Content-Length" in data else OK
    message = data + CANARY
    verdict(server, [message[i : i + 1] for i in range(len(message))], expected)


# -- every split point (the fake transport: one data_received per piece) -------------------------


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    from .apps import make_app

    h = Harness(make_app())
    yield h
    h.close()


SPLIT_CASES = [
    pytest.param(post(b"Content-Length: 3", body=b"abc"), [200, 200], id="cl"),
    pytest.param(chunked(b"3;a=b\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"), [200, 200], id="chunked"),
    pytest.param(
        post(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n" + SMUGGLED),
        [400],
        id="CL.TE",
    ),
    pytest.param(
        post(
            b"Transfer-Encoding: chunked",
            b"Content-Length: %d" % (len(SMUGGLED) + 5),
            path=b"/ignore",
            body=b"0\r\n\r\n" + SMUGGLED,
        ),
        [400],
        id="TE.CL",
    ),
    pytest.param(chunked(b"3\r\nabc\n0\r\n\r\n"), [400], id="chunk-bare-lf"),
    pytest.param(b"GET /hello/x HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", [400], id="value-bare-cr"),
]


@pytest.mark.parametrize(("data", "expected"), SPLIT_CASES)
def test_same_verdict_at_every_split_point(
    harness: Harness, data: bytes, expected: list[int]
) -> None:
    message = data + CANARY
    start = time.monotonic()
    for cut in range(1, len(message)):
        for pieces in (
            [message[:cut], message[cut:]],
            [message[:cut], *message[cut:].splitlines(keepends=True)],
        ):
            outcome = harness.run([p for p in pieces if p])
            assert not outcome.errors and not outcome.loop_errors
            replies, complete = read_replies(outcome.out)
            assert complete and [r.status for r in replies] == expected, (cut, outcome.out[:300])
            assert b"smuggled" not in outcome.out
    assert time.monotonic() - start < 20
