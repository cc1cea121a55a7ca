"""Slow and greedy clients (issue #9): each is cut off or held to bounded memory, and a normal
client is served promptly meanwhile.

Real servers with short timeouts, plus deterministic regressions driven through the fake
transport of tests/wire_harness.py. (tests/test_protocol.py and tests/test_malformed.py already
cover a head dribbled line by line and a 4 MiB response to a slow reader, with one client.)
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from squall import web
from squall.http import Limits
from squall.server.config import Config

from .apps import make_app
from .conftest import ServerThread, serve
from .wire_harness import FakeTransport, Harness, read_replies

HELLO = b"GET /hello/x HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with serve(
        make_app(),
        access_log=None,
        header_timeout=2.0,
        body_timeout=1.5,
        send_timeout=3.0,
        keepalive_timeout=10.0,
    ) as server:
        yield server


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


def _connect(server: ServerThread, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def _latency(server: ServerThread) -> float:
    """Seconds one request on a fresh connection takes."""
    start = time.monotonic()
    with _connect(server) as sock:
        sock.sendall(b"GET /hello/probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.endswith(b"Hello, probe!"), data
    return time.monotonic() - start


def _read_until(sock: socket.socket, done: Callable[[bytes], bool], timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.2)
    while time.monotonic() < deadline and not done(data):
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _server_buffers(server: ServerThread) -> list[tuple[int, int]]:
    """(transport write-buffer bytes, queued requests) of each open connection."""
    assert server.runner is not None and server.runner.server is not None
    conns = server.runner.server.connections

    def sample() -> list[tuple[int, int]]:
        return [
            (c.transport.get_write_buffer_size(), c.queued)
            for c in conns
            if c.transport is not None
        ]

    result: list[tuple[int, int]] = server.call(sample)
    return result


# -- slowloris ------------------------------------------------------------------------------------


def test_slowloris_heads_one_byte_at_a_time_are_cut_and_others_served(srv: ServerThread) -> None:
    """30 connections dribble a head a byte every 0.1 s: each gets 408 at header_timeout (2 s),
    and a normal client is served in well under a second all along."""
    head = b"GET /hello/x HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 200
    socks = [_connect(srv) for _ in range(30)]
    stop = threading.Event()
    cut: list[float] = []
    start = time.monotonic()

    def dribble() -> None:
        for byte_no in range(len(head)):
            if stop.is_set():
                return
            for sock in list(socks):
                try:
                    sock.sendall(head[byte_no : byte_no + 1])
                except OSError:
                    socks.remove(sock)
                    cut.append(time.monotonic() - start)
            time.sleep(0.1)

    thread = threading.Thread(target=dribble, daemon=True)
    thread.start()
    try:
        latencies = [_latency(srv) for _ in range(10) if time.sleep(0.15) is None]
        answers = []
        for sock in list(socks):
            data = _read_until(sock, lambda d: d.endswith(b"\n"), 5)
            answers.append((data[:12], time.monotonic() - start))
    finally:
        stop.set()
        thread.join(5)
        for sock in socks:
            sock.close()
    assert max(latencies) < 0.5, latencies
    assert answers and all(status == b"HTTP/1.1 408" for status, _ in answers), answers[:3]
    # header_timeout=2 on a 1 s tick: every head is cut within about 3 s.
    assert max(t for _, t in answers) < 4.0, answers


# -- slow request bodies (Limits.body_timeout) ----------------------------------------------------


def test_body_that_stops_coming_is_cut_at_body_timeout(srv: ServerThread) -> None:
    with _connect(srv) as sock:
        start = time.monotonic()
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        data = _read_until(sock, lambda d: b"\r\n\r\n" in d and d.endswith(b"\n"), 6)
        elapsed = time.monotonic() - start
        rest = _read_until(sock, lambda d: False, 2.5)  # then the server closes
    assert data.startswith(b"HTTP/1.1 408 "), data  # request.read(): the 408 of body_timeout
    assert b"not received in time" in data
    assert b"Connection: close" in data
    assert rest == b""
    assert 1.4 <= elapsed < 3.6, elapsed  # body_timeout=1.5 on a 1 s tick


def test_slow_but_steady_body_is_not_cut(srv: ServerThread) -> None:
    """A byte every 0.5 s for 4 s: always less than body_timeout (1.5 s) without one."""
    with _connect(srv) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n")
        for byte in b"abcdefgh":
            time.sleep(0.5)
            sock.sendall(bytes([byte]))
        data = _read_until(sock, lambda d: d.endswith(b"abcdefgh"), 3)
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"abcdefgh"), data


def test_chunk_extension_stuffing_is_cut_at_body_timeout(srv: ServerThread) -> None:
    """Framing bytes without payload (an endless chunk extension) do not count as progress."""
    with _connect(srv) as sock:
        start = time.monotonic()
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=")
        data = b""
        while time.monotonic() - start < 6 and not data:
            try:
                sock.sendall(b"a" * 64)
            except OSError:
                break
            data = _read_until(sock, lambda d: d.endswith(b"\n"), 0.1)
        data += _read_until(sock, lambda d: d.endswith(b"\n"), 2)
        elapsed = time.monotonic() - start
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert elapsed < 4.0, elapsed


def test_handler_not_reading_is_not_a_body_timeout(srv: ServerThread) -> None:
    """Only a handler waiting for bytes is timed: /sleep holds a body it never reads."""
    with _connect(srv) as sock:
        sock.sendall(
            b"GET /sleep?s=2.5&tag=t HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Connection: close\r\n\r\nab"
        )
        data = _read_until(sock, lambda d: d.endswith(b"slept t"), 5)
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"slept t"), data


def test_head_timeout_counts_from_the_first_byte(srv: ServerThread) -> None:
    """header_timeout (2 s here) runs from the head's first byte: not from the connection's
    opening (the first byte comes 1.5 s after it) nor from the last byte (one every 0.5 s)."""
    head = b"GET /hello/x HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 40
    with _connect(srv) as sock:
        opened = time.monotonic()
        time.sleep(1.5)
        first = time.monotonic()
        answer = b""
        for i in range(len(head)):
            try:
                sock.sendall(head[i : i + 1])
            except OSError:
                break
            answer = _read_until(sock, lambda d: d.endswith(b"\n"), 0.5)  # (the pause too)
            if answer:
                break
        answered = time.monotonic()
        answer += _read_until(sock, lambda d: d.endswith(b"\n"), 2)
        rest = _read_until(sock, lambda d: False, 3)  # then the server closes
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"Connection: close" in answer
    assert rest == b""
    assert 1.9 <= answered - first < 3.6, answered - first  # 2 s from it, on a 1 s tick
    assert answered - opened >= 3.3, answered - opened  # from the opening: by 3.0 at the latest


def test_connection_that_sends_nothing_is_closed_at_header_timeout(srv: ServerThread) -> None:
    """A new connection waits for its first byte as long as for a whole head (2 s here), then
    is closed without an answer (there is no request to answer)."""
    with _connect(srv) as sock:
        start = time.monotonic()
        data = _read_until(sock, lambda d: False, 5)
        elapsed = time.monotonic() - start
    assert data == b""
    assert 1.9 <= elapsed < 3.6, elapsed


# -- a minimum request-body rate (Limits.min_body_rate, body_grace) -------------------------------

PAYLOAD_ERRORS: list[int] = []


async def _read_body(request: web.Request) -> web.Response:
    """Reads the whole body from the stream; a RequestPayloadError is noted (its status), then
    goes on up (and is answered with its status)."""
    await asyncio.sleep(float(request.query.get("wait", "0")))
    try:
        body = await request.content.read()
    except web.RequestPayloadError as exc:
        PAYLOAD_ERRORS.append(exc.status)
        raise
    return web.Response(text=str(len(body)))


@pytest.fixture(scope="module")
def rate_srv() -> Iterator[ServerThread]:
    """min_body_rate 1000 B/s after body_grace 1 s; body_timeout far away."""
    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/read", _read_body)
    with serve(
        app, access_log=None, min_body_rate=1000, body_grace=1.0, body_timeout=30.0
    ) as server:
        yield server


def _send_paced(sock: socket.socket, total: int, rate: float, until: float) -> bytes:
    """Send ``total`` bytes at ``rate`` bytes/s (by the clock: late sends catch up), stopping at
    an answer or after ``until`` seconds; return the answer's first bytes."""
    start = time.monotonic()
    sent = 0
    while sent < total and time.monotonic() - start < until:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        if due > sent:
            try:
                sock.sendall(b"x" * (due - sent))
            except OSError:
                break
            sent = due
        answer = _read_until(sock, lambda d: d.endswith(b"\n"), 0.05)
        if answer:
            return answer
    return b""


def test_body_below_the_minimum_rate_is_cut_after_the_grace(rate_srv: ServerThread) -> None:
    """200 B/s against a minimum of 1000 B/s after 1 s: 408 before the body could end, the
    handler's read fails with RequestPayloadError (408), and the connection closes."""
    PAYLOAD_ERRORS.clear()
    with _connect(rate_srv) as sock:
        sock.sendall(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        start = time.monotonic()
        answer = _send_paced(sock, 100000, 200, until=6.0)
        elapsed = time.monotonic() - start
        answer += _read_until(sock, lambda d: b"\r\n\r\n" in d and d.endswith(b"\n"), 2)
        rest = _read_until(sock, lambda d: False, 3)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"too slow" in answer and b"Connection: close" in answer
    assert rest == b""
    # Cut once fewer than (t - 1) * 1000 bytes have come, seen at a 1 s tick: 1.25 s-2.3 s.
    assert 1.2 <= elapsed < 3.5, elapsed
    assert PAYLOAD_ERRORS == [408]


def test_body_just_above_the_minimum_rate_completes(rate_srv: ServerThread) -> None:
    """1200 B/s for 4 s against a minimum of 1000 B/s: served whole."""
    with _connect(rate_srv) as sock:
        sock.sendall(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 4800\r\n\r\n")
        answer = _send_paced(sock, 4800, 1200, until=8.0)
        answer += _read_until(sock, lambda d: d.endswith(b"4800"), 3)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\n4800"), answer


def test_body_rate_does_not_count_the_wait_for_100_continue(rate_srv: ServerThread) -> None:
    """A handler that reads only after 2.5 s sends 100 Continue then: the client, which waited
    for it, is not charged for those seconds (which are past the 1 s grace)."""
    with _connect(rate_srv) as sock:
        sock.sendall(
            b"POST /read?wait=2.5 HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        interim = _read_until(sock, lambda d: d.endswith(b"\r\n\r\n"), 5)
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        sock.sendall(b"x" * 3000)
        answer = _read_until(sock, lambda d: d.endswith(b"3000"), 3)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"3000"), answer


def test_body_rate_does_not_count_the_time_reading_is_paused() -> None:
    """The handler reads only after 3.5 s and the body is past the read buffer (1 KiB here), so
    reading stops with 1500 bytes in: those seconds are the server's, not the client's (who
    could not send), and the body completes once the handler reads."""
    app = web.Application()
    app.router.add_post("/read", _read_body)
    with serve(app, access_log=None, min_body_rate=1000, body_grace=1.0) as server:
        assert server.runner is not None and server.runner.server is not None
        server.runner.server.limits.read_high_water = 1024
        with _connect(server) as sock:
            sock.sendall(
                b"POST /read?wait=3.5 HTTP/1.1\r\nHost: x\r\nContent-Length: 21500\r\n\r\n"
                + b"x" * 1500
            )
            time.sleep(0.3)
            sock.sendall(b"x" * 20000)  # (waits in the kernel's buffers)
            answer = _read_until(sock, lambda d: d.endswith(b"21500"), 8)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"21500"), answer


def test_content_read_of_a_body_past_the_read_buffer_completes() -> None:
    """``await request.content.read()`` of 600 KB, over the 256 KiB read buffer: it used to
    wait for an EOF that could not come (reading paused, nothing consumed) until body_timeout."""
    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/read", _read_body)
    with serve(app, access_log=None) as server, _connect(server) as sock:
        sock.sendall(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 600000\r\n\r\n")
        sock.sendall(b"x" * 600000)
        answer = _read_until(sock, lambda d: d.endswith(b"600000"), 5)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"600000"), answer


def test_the_slow_client_defaults() -> None:
    """10 s for a head, 500 B/s for a body after 20 s (mod_reqtimeout's), 60 s between bytes;
    the command line's defaults are the same."""
    limits = Limits()
    assert limits.header_timeout == 10.0
    assert (limits.min_body_rate, limits.body_grace, limits.body_timeout) == (500, 20.0, 60.0)
    config = Config("m:app")
    assert (config.timeout_header, config.timeout_body) == (10.0, 60.0)
    assert (config.min_body_rate, config.body_grace) == (500, 20.0)


def test_body_rate_keywords_reach_the_limits() -> None:
    with serve(web.Application(), min_body_rate=7, body_grace=3.5, header_timeout=4.0) as server:
        assert server.runner is not None and server.runner.server is not None
        limits = server.runner.server.limits
        assert (limits.min_body_rate, limits.body_grace, limits.header_timeout) == (7, 3.5, 4.0)


# -- slow readers and greedy pipeliners -----------------------------------------------------------


def test_slow_reader_of_a_big_response_is_not_buffered(srv: ServerThread) -> None:
    """64 MiB streamed to a client reading 64 KiB every 20 ms: the server holds ~its high-water
    mark, not the response; the client is served normally meanwhile. The slow reader reads, so
    it is never dropped (send_timeout) however long the response takes."""
    with _connect(srv) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /big?mb=64 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        peak = 0
        first = sock.recv(65536)
        received = len(first)
        start = time.monotonic()
        while time.monotonic() - start < 4.0:
            chunk = sock.recv(65536)
            assert chunk, f"dropped after {received} bytes"
            received += len(chunk)
            time.sleep(0.02)
            peak = max([peak, *(size for size, _ in _server_buffers(srv))])
        latency = _latency(srv)
    assert received < 48 * 1024 * 1024  # it really was slow, and still being served
    assert b"HTTP/1.1 200 " in first
    assert peak <= 1024 * 1024, peak
    assert latency < 0.5, latency


def test_client_that_never_reads_is_dropped_at_send_timeout(srv: ServerThread) -> None:
    """64 MiB asked for and nothing read: dropped send_timeout (3 s) after the buffer filled."""
    with _connect(srv) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /big?mb=64 HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        time.sleep(0.5)
        before = srv.connections
        assert _wait_for_count(srv, before - 1, timeout=6)
        elapsed = time.monotonic() - start
    assert 2.4 <= elapsed <= 5.0, elapsed


def _wait_for_count(server: ServerThread, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.connections <= count:
            return True
        time.sleep(0.05)
    return False


def test_twenty_thousand_pipelined_requests_without_reading(srv: ServerThread) -> None:
    """A client sends 20,000 requests and reads nothing for 2 s (less than send_timeout): the
    server answers until its write buffer is full, then queues at most a read's worth and stops
    reading. Another client is served promptly meanwhile. Once the client reads, all 20,000
    answers arrive in order."""
    count = 20_000
    with _connect(srv, timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sender = threading.Thread(target=sock.sendall, args=(HELLO * count,), daemon=True)
        sender.start()
        peak_buffer = peak_queue = 0
        latencies = []
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            for size, queued in _server_buffers(srv):
                peak_buffer = max(peak_buffer, size)
                peak_queue = max(peak_queue, queued)
            latencies.append(_latency(srv))
            time.sleep(0.1)
        expected = count * len(b"Hello, x!")
        received = 0
        bodies = 0
        tail = b""
        sock.settimeout(10)
        while bodies < count:
            chunk = sock.recv(1 << 20)
            assert chunk, f"closed after {bodies} answers"
            received += len(chunk)
            bodies += (tail + chunk).count(b"Hello, x!")
            tail = chunk[-8:]
        sender.join(5)
    assert bodies == count and expected <= received
    assert peak_buffer <= 1024 * 1024, peak_buffer
    # A read is at most 256 KiB: at most that many requests' worth are ever queued.
    assert peak_queue <= 256 * 1024 // len(HELLO) + 16, peak_queue
    assert max(latencies) < 0.5, latencies


# -- the same, deterministic, through the fake transport -------------------------------------


def test_pipelined_batch_read_after_a_partial_head_is_not_a_431(harness: Harness) -> None:
    """A read that ends a head begun in the previous one may carry many more requests.

    squall used to count the whole read against max_head_size (64 KiB) and answer 431 to a
    client pipelining big batches (the first 20,000-request test failed at ~2,400)."""
    req = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    outcome = harness.run([req[:10], req[10:] + req * 3000])
    replies, complete = read_replies(outcome.out)
    assert complete and [r.status for r in replies] == [200] * 3001


def test_head_spanning_many_reads_is_still_bounded(harness: Harness) -> None:
    """The bound that check exists for: one field dribbled over many reads still gets 431."""
    chunks = [b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Long: "] + [b"v" * 4096] * 40
    outcome = harness.run(chunks)
    replies, _ = read_replies(outcome.out)
    assert [r.status for r in replies] == [431]


def test_client_not_reading_holds_the_queue(harness: Harness) -> None:
    """Answers stop at the write buffer's high-water mark instead of piling up (squall used to
    answer all 20,000 into the transport buffer: 3 MB for 0.7 MB of requests)."""
    req = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    data = req * 20_000
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    outcome = harness.run(chunks, reader=False, eof=False)
    assert outcome.max_buffered < 65536 + 1024, outcome.max_buffered
    assert outcome.handled < 1000
    # The same client reading as it goes gets every answer, in order.
    outcome = harness.run(chunks, reader=False, between=lambda t: t.client_reads(), spins=200)
    replies, complete = read_replies(outcome.out)
    assert complete and len(replies) == 20_000 and outcome.handled == 20_000
    assert outcome.max_buffered < 65536 + 1024


def test_reading_resumes_only_once_the_queue_is_short(harness: Harness) -> None:
    """One read can queue far more than max_pipeline (16) requests; taking one off the queue
    used to resume reading at once, so the queue grew by a read's worth each time."""
    req = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    seen: list[int] = []

    def client(transport: FakeTransport) -> None:
        proto = transport.protocol
        if proto is not None and transport.reading:
            seen.append(proto.queued)
        transport.client_reads()

    data = req * 5000
    outcome = harness.run(
        [data[i : i + 65536] for i in range(0, len(data), 65536)], reader=False, between=client
    )
    assert outcome.handled == 5000
    assert seen and max(seen) < 16, max(seen)


def test_body_timeout_is_a_limit_of_the_runner() -> None:
    with serve(web.Application(), body_timeout=7.5, limit_concurrency=3) as server:
        assert server.runner is not None and server.runner.server is not None
        limits = server.runner.server.limits
        assert (limits.body_timeout, limits.max_connections) == (7.5, 3)
