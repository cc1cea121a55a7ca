"""Property-based fuzzing of the wire (issue #9), with hypothesis.

1. HttpProtocol fed generated, mutated and random byte streams through the fake transport of
   tests/wire_harness.py: nothing escapes ``data_received``, no own-bug is logged, everything
   written is a well-formed HTTP/1.1 response stream, a ``Connection: close`` answer is the last
   one, and there are never more final answers than requests the application saw plus one
   wire-level refusal. Valid streams, however split, get exactly their answers.
2. The same over a real socket, for fewer examples; the server serves a canary afterwards.
3. The WebSocket FrameReader fed generated and mutated frames: only WebSocketError escapes, and
   what it buffers or delivers stays within max_size.

``make test`` runs a bounded, derandomized campaign (deterministic in CI); ``make fuzz`` a long
random one: ``SQUALL_FUZZ=<examples per property>`` (the Makefile's default is 5,000).
"""

from __future__ import annotations

import os
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from squall.http.websocket import Deflate, FrameReader, WebSocketError

from .conftest import ServerThread, serve
from .wire_harness import Harness, Malformed, Outcome, make_app, read_replies

FUZZ = int(os.environ.get("SQUALL_FUZZ", "0"))


def _settings(examples: int) -> settings:
    """Bounded and derandomized by default; ``SQUALL_FUZZ`` examples, random, when fuzzing."""
    common: dict[str, Any] = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    }
    if FUZZ:
        return settings(
            max_examples=FUZZ,
            database=DirectoryBasedExampleDatabase(".pytest_cache/hypothesis"),
            **common,
        )
    return settings(max_examples=examples, derandomize=True, database=None, **common)


# -- generating requests ---------------------------------------------------------------------------

TOKEN = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~",
    min_size=1,
    max_size=12,
)
VALUE = st.binary(max_size=24).map(lambda b: bytes(c for c in b if 0x21 <= c <= 0x7E))
BODY = st.binary(max_size=200)
RESERVED = {"host", "content-length", "transfer-encoding", "connection", "expect", "upgrade"}


@dataclass
class Req:
    data: bytes
    expected: bytes  # the answer's body
    closes: bool


@st.composite
def requests(draw: st.DrawFn, last: bool = False) -> Req:
    path = draw(st.sampled_from(["/hello", "/echo", "/ignore", "/stream"]))
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS"]))
    if version == b"1.0" and path == "/stream":
        path = "/echo"  # a streamed answer to HTTP/1.0 ends with the connection
    query = draw(st.one_of(st.just(b""), TOKEN.map(lambda t: b"?q=" + t.encode())))
    headers = [b"Host: x"] if version == b"1.1" or draw(st.booleans()) else []
    for name, value in draw(st.lists(st.tuples(TOKEN, VALUE), max_size=4)):
        if name.lower() not in RESERVED:
            headers.append(name.encode() + b": " + value)
    closes = last and draw(st.booleans())
    if version == b"1.0" and not closes:
        headers.append(b"Connection: keep-alive")
    elif closes and version == b"1.1":
        headers.append(b"Connection: close")
    body = b""
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    if framing == "chunked" and version == b"1.0":
        framing = "length"
    payload = draw(BODY) if framing != "none" else b""
    if framing == "length":
        headers.append(b"Content-Length: %d" % len(payload))
        body = payload
    elif framing == "chunked":
        headers.append(b"Transfer-Encoding: chunked")
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        for piece in pieces:
            if piece:
                ext = draw(st.sampled_from([b"", b";a=b", b';n="q v"', b";x"]))
                body += b"%x%b\r\n%b\r\n" % (len(piece), ext, piece)
        body += b"0\r\n" + draw(st.sampled_from([b"", b"X-Trailer: t\r\n"])) + b"\r\n"
    head = b"%b %b%b HTTP/%b\r\n" % (method, path.encode(), query, version)
    data = head + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body
    expected = {
        "/hello": b"hello",
        "/echo": payload,
        "/ignore": b"ignored",
        "/stream": payload + b"end",
    }[path]
    return Req(data, expected, closes)


@st.composite
def conversations(draw: st.DrawFn) -> list[Req]:
    reqs = draw(st.lists(requests(), min_size=0, max_size=4))
    return [*reqs, draw(requests(last=True))]


def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=6))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if a < b]


INTERESTING = [
    b"\r", b"\n", b"\r\n", b"\r\n\r\n", b" ", b"\t", b":", b";", b",", b"0", b"\x00", b"\x7f",
    b"\xff", b"chunked", b"Transfer-Encoding: chunked\r\n", b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n", b"Transfer-Encoding: chunked, identity\r\n", b"ffffffffffffffffff",
    b"Expect: 100-continue\r\n", b"Connection: close\r\n", b"Upgrade: websocket\r\n",
    b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.0", b"HTTP/2.0", b"0\r\n\r\n", b" \r\n",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(r.data for r in draw(conversations())))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "duplicate", "token"]))
        if kind == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "duplicate":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
        else:
            data[pos:pos] = draw(st.sampled_from(INTERESTING))
    return bytes(data)


# -- the invariants ----------------------------------------------------------------------------

WIRE_ERRORS = {400, 404, 408, 413, 414, 417, 431, 501, 505}


def check_invariants(data: bytes, outcome: Outcome) -> None:
    assert not outcome.errors, f"escaped data_received: {outcome.errors!r}"
    assert not outcome.loop_errors, outcome.loop_errors
    assert outcome.writes_after_eof == 0, "written after the half-close"
    try:
        replies, _ = read_replies(outcome.out, heads=_heads(data))
    except Malformed as exc:
        raise AssertionError(f"{exc}\nwrote: {outcome.out[:600]!r}") from None
    finals = [r for r in replies if r.status >= 200]
    assert all(r.status == 100 for r in replies if r.status < 200)
    for reply in finals[:-1]:
        assert not reply.closes, "a response after one that said Connection: close"
    # Never more answers than requests seen, but for one refusal of what followed them.
    assert outcome.handled <= data.count(b"\r\n\r\n")
    assert len(finals) <= outcome.handled + 1
    if len(finals) == outcome.handled + 1:
        assert finals[-1].status in WIRE_ERRORS and finals[-1].closes, finals[-1]


def _heads(data: bytes) -> list[bool]:
    """Which answers are to HEAD requests (none here: no generated request is a HEAD)."""
    return [False] * data.count(b"HEAD ")


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    h = Harness(make_app(), header_timeout=2.0, body_timeout=2.0)
    yield h
    h.close()


@_settings(150)
@given(data=st.data())
def test_valid_conversations_however_split_get_their_answers(
    harness: Harness, data: st.DataObject
) -> None:
    reqs = data.draw(conversations())
    stream = b"".join(r.data for r in reqs)
    outcome = harness.run(split(data.draw, stream))
    check_invariants(stream, outcome)
    replies, complete = read_replies(outcome.out)
    assert complete
    assert [(r.status, r.body) for r in replies] == [(200, r.expected) for r in reqs]
    if reqs[-1].data.split(b"\r\n", 1)[0].endswith(b"HTTP/1.1"):
        assert replies[-1].closes == reqs[-1].closes


@_settings(300)
@given(data=st.data())
def test_mutated_streams_keep_the_invariants(harness: Harness, data: st.DataObject) -> None:
    stream = data.draw(mutated())
    check_invariants(stream, harness.run(split(data.draw, stream)))


@_settings(150)
@given(prefix=st.sampled_from([b"", b"GET / HTTP/1.1\r\n", b"POST /echo HTTP/1.1\r\nHost: x\r\n"]),
       noise=st.binary(min_size=1, max_size=300))  # fmt: skip
def test_random_bytes_keep_the_invariants(harness: Harness, prefix: bytes, noise: bytes) -> None:
    check_invariants(prefix + noise, harness.run([prefix + noise]))


# -- over a real socket ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with serve(make_app(), access_log=None, header_timeout=1.0, body_timeout=1.0) as srv:
        yield srv


def _over_socket(port: int, chunks: list[bytes]) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                break
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            out += chunk
    return out


@_settings(40)
@given(data=st.data())
def test_mutated_streams_over_a_socket(server: ServerThread, data: st.DataObject) -> None:
    stream = data.draw(mutated())
    out = _over_socket(server.port, split(data.draw, stream))
    try:
        replies, _ = read_replies(out, heads=_heads(stream))
    except Malformed as exc:
        raise AssertionError(f"{exc}\nwrote: {out[:600]!r}") from None
    finals = [r for r in replies if r.status >= 200]
    assert len(finals) <= stream.count(b"\r\n\r\n") + 1
    for reply in finals[:-1]:
        assert not reply.closes
    canary = _over_socket(
        server.port, [b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]
    )
    assert canary.startswith(b"HTTP/1.1 200 ") and canary.endswith(b"hello")


# -- WebSocket frames ------------------------------------------------------------------------------

MAX_SIZE = 4096


def _frame(op: int, payload: bytes, *, fin: bool, rsv: int, masked: bool, wide: int) -> bytes:
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if wide == 0 and n < 126:
        head = struct.pack("!BB", b0, mask_bit | n)
    elif wide <= 1 and n < 65536:
        head = struct.pack("!BBH", b0, mask_bit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mask_bit | 127, n)
    if not masked:
        return head + payload
    key = b"\x12\x34\x56\x78"
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    op = draw(st.sampled_from([0, 1, 2, 8, 9, 10, 3, 11]))
    kind = draw(st.sampled_from(["bytes", "text", "deflate", "bomb", "close"]))
    if kind == "text":
        payload = draw(st.text(max_size=64)).encode()
    elif kind == "deflate":
        comp = zlib.compressobj(wbits=-15)
        payload = comp.compress(draw(st.binary(max_size=300))) + comp.flush(zlib.Z_SYNC_FLUSH)
        payload = payload[:-4]
    elif kind == "bomb":
        comp = zlib.compressobj(wbits=-15)
        payload = comp.compress(b"\0" * draw(st.sampled_from([MAX_SIZE, 10 * MAX_SIZE, 10**6])))
        payload = (payload + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
    elif kind == "close":
        payload = struct.pack("!H", draw(st.integers(0, 5000))) + draw(st.binary(max_size=8))
    else:
        payload = draw(st.binary(max_size=draw(st.sampled_from([16, 200, MAX_SIZE + 10]))))
    return _frame(
        op,
        payload,
        fin=draw(st.booleans()),
        rsv=draw(st.sampled_from([0, 0, 0x40, 0x20, 0x10])),
        masked=draw(st.booleans()) or draw(st.booleans()),
        wide=draw(st.sampled_from([0, 0, 1, 2])),
    )


@st.composite
def frame_streams(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(frames(), min_size=1, max_size=6))))
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(data)))
        if draw(st.booleans()) and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=10))
    return bytes(data)


@_settings(400)
@given(data=st.data(), deflate=st.booleans(), no_takeover=st.booleans())
def test_frame_reader_raises_only_websocket_errors_and_stays_bounded(
    data: st.DataObject, deflate: bool, no_takeover: bool
) -> None:
    delivered: list[tuple[int, Any, Any]] = []
    reader = FrameReader(
        lambda op, payload, extra: delivered.append((op, payload, extra)),
        MAX_SIZE,
        Deflate(15, False, no_takeover) if deflate else None,
    )
    stream = data.draw(frame_streams())
    for chunk in split(data.draw, stream):
        try:
            reader.feed(chunk)
        except WebSocketError as exc:
            assert 1000 <= exc.code <= 1011
            break
        assert sum(len(p) for p in reader._parts) <= MAX_SIZE + 14
        assert reader._frag_size <= MAX_SIZE
    for op, payload, _ in delivered:
        if op in (1, 2):
            assert len(payload) <= MAX_SIZE


@_settings(300)
@given(data=st.data(), decode_text=st.booleans())
def test_frame_reader_checks_utf8_as_it_arrives(data: st.DataObject, decode_text: bool) -> None:
    """A text message cut into fragments anywhere, its frames cut into reads anywhere (the
    fragment-by-fragment and read-by-read UTF-8 checks): valid UTF-8 comes out whole, never
    refused; with a corrupted byte making it invalid, the reader fails with 1007."""
    delivered: list[Any] = []
    reader = FrameReader(lambda op, payload, _: delivered.append(payload), 0, None, decode_text)
    text = data.draw(st.text(min_size=1, max_size=40)).encode()
    bad = data.draw(st.none() | st.tuples(st.integers(0, len(text) - 1), st.integers(0x80, 0xFF)))
    if bad is not None:
        text = text[: bad[0]] + bytes((bad[1],)) + text[bad[0] + 1 :]
    try:
        valid = text.decode()
    except UnicodeDecodeError:
        valid = None
    cuts = split(data.draw, text) if len(text) > 1 else [text]
    frames = [
        _frame(0x0 if i else 0x1, part, fin=i == len(cuts) - 1, rsv=0, masked=True, wide=0)
        for i, part in enumerate(cuts)
    ]
    stream = b"".join(frames)
    try:
        for chunk in split(data.draw, stream):
            reader.feed(chunk)
    except WebSocketError as exc:
        assert valid is None and exc.code == 1007
    else:
        assert valid is not None, text
        assert delivered == [valid if decode_text else text]


# -- what the campaigns found, pinned ----------------------------------------------------------


def test_frame_reader_read_that_stops_inside_the_mask() -> None:
    """Found by fuzzing: a read of five bytes, a small frame's head and three bytes of its mask,
    passed the whole-frame fast path's length test (its length read as -1)."""
    delivered: list[Any] = []
    reader = FrameReader(lambda op, payload, _: delivered.append((op, payload)), 0, None)
    reader.feed(b"\x81\x81\x00\x00\x00")
    reader.feed(b"\x00a")
    assert delivered == [(1, "a")]


def test_bad_bytes_after_a_closing_answer_in_the_same_read(harness: Harness) -> None:
    """Found by fuzzing: an unanswered ``Expect: 100-continue`` closes the connection after the
    response (protocol._finish), but the rest of the read was still parsed; the garbage after it
    earned a 400 written after the half-close, and uvloop raised ``RuntimeError: Cannot call
    write() after write_eof()`` out of data_received."""
    data = (
        b"POST /ignore HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
        b"x\x00GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    outcome = harness.run([data])
    assert not outcome.errors and outcome.writes_after_eof == 0
    replies, complete = read_replies(outcome.out)
    assert complete and [(r.status, r.body) for r in replies] == [(200, b"ignored")]


def test_body_error_after_the_response_started_cuts_it_short(harness: Harness) -> None:
    """Found by fuzzing: a handler that prepared a streamed response, then read a malformed
    chunked body, got a whole 400 response written into the middle of its chunked 200."""
    data = (
        b"POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
        b"\x00\r\n\r\n"
    )
    outcome = harness.run([data[:-7], data[-7:]])
    replies, complete = read_replies(outcome.out)
    assert [r.status for r in replies] == [200]
    assert not complete and outcome.closed
