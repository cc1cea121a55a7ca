"""HTTP/2 against hostile clients: each case bounded in time, and the connection closed (or the
stream refused) while the server stays responsive and its memory does not grow with the attack.

Rapid reset (CVE-2023-44487), CONTINUATION floods, HPACK bombs, SETTINGS and PING floods, a
receive window never opened, a client that never reads, too many concurrent streams.
"""

from __future__ import annotations

import gc
import resource
import time
from collections.abc import Iterator

import pytest
from hyperframe.frame import (
    GoAwayFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from .h2_wire import (
    CANCEL,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    MAX_WINDOW,
    NO_ERROR,
    REFUSED_STREAM,
    BatteryServer,
    Closed,
    Conn,
    frame,
    get,
    literal,
)

SEND_TIMEOUT = 1.0  # the server's send_timeout here: a stalled client is dropped after it
MIB = 1 << 20


@pytest.fixture(scope="module")
def server() -> Iterator[BatteryServer]:
    srv = BatteryServer(send_timeout=SEND_TIMEOUT).start()
    try:
        yield srv
    finally:
        srv.stop()


def peak_rss() -> int:
    """This process's peak resident size in bytes (the server runs in it, in a thread)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def send_all(c: Conn, data: bytes, chunk: int = 65536) -> int:
    """Send ``data`` until done or the server shuts the connection; the bytes sent."""
    sent = 0
    try:
        while sent < len(data):
            c.sock.sendall(data[sent : sent + chunk])
            sent += chunk
    except OSError:  # reset, broken pipe, or a full buffer for TIMEOUT: the server stopped us
        pass
    return min(sent, len(data))


def assert_responsive(server: BatteryServer, within: float = 2.0) -> None:
    """A fresh connection is served at once."""
    start = time.monotonic()
    with Conn(server.port) as c:
        c.request(1, get("/"))
        assert c.response(1).body == b"Hello, World!"
    assert time.monotonic() - start < within


def wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.02)
    return bool(callable(predicate) and predicate())


def rapid_resets(c: Conn, first: int, count: int) -> bytes:
    """``count`` streams each opened (a handler that waits) and reset at once."""
    return b"".join(
        c.headers(i, get("/forever")) + RstStreamFrame(i, error_code=CANCEL).serialize()
        for i in range(first, first + 2 * count, 2)
    )


# -- rapid reset (CVE-2023-44487) --------------------------------------------------------------


def test_rapid_reset_server_stays_responsive(server: BatteryServer) -> None:
    with Conn(server.port) as c:
        send_all(c, rapid_resets(c, 1, 2000))
        assert_responsive(server, within=3.0)
        try:
            c.ping()
        except (Closed, AssertionError):
            pass  # closing the connection is allowed too


def test_rapid_reset_cancels_the_handlers(server: BatteryServer) -> None:
    """Streams opened and reset at once: every handler that started sees its cancellation."""
    probe = server.probe
    started, cancelled = probe.started, probe.cancelled
    with Conn(server.port) as c:
        send_all(c, rapid_resets(c, 1, 200))
        try:
            c.ping()
        except (Closed, AssertionError):
            pass  # closing the connection is allowed too
    assert probe.started > started
    assert wait_for(lambda: probe.cancelled - cancelled == probe.started - started, 1.0), (
        probe.started - started,
        probe.cancelled - cancelled,
    )


def test_rapid_reset_closes_the_connection(server: BatteryServer) -> None:
    start = time.monotonic()
    with Conn(server.port) as c:
        send_all(c, rapid_resets(c, 1, 5000))
        assert_responsive(server)
        assert c.scan_for_goaway(1.0) == ENHANCE_YOUR_CALM
        c.expect_closed()
    assert time.monotonic() - start < 6.0


# -- CONTINUATION flood, HPACK bomb ------------------------------------------------------------


@pytest.mark.parametrize("size", [16000, 8])
def test_continuation_flood_is_cut(server: BatteryServer, size: int) -> None:
    """A field block that never ends: the connection is closed near the header list limit
    (16 KiB here), not buffered as it grows (4 MiB sent)."""
    rss = peak_rss()
    with Conn(server.port) as c:
        fields = literal(b"x-flood", b"a" * (size - 10)) if size > 10 else b"\x00\x01a\x01b"
        continuation = frame(CONTINUATION, 0, 1, fields)
        flood = c.headers(1, get("/"), end_headers=False) + continuation * (
            4 * MIB // len(continuation)
        )
        send_all(c, flood)
        c.expect_closed()
    assert peak_rss() - rss < 32 * MIB
    assert_responsive(server)


def test_hpack_bomb_is_refused(server: BatteryServer) -> None:
    """A 14 KB block that decodes to 40 MB of fields (one 4000-octet entry indexed into the
    dynamic table, then referenced 10000 times): refused at once, not decoded into memory."""
    rss = peak_rss()
    start = time.monotonic()
    with Conn(server.port) as c:
        block = (
            c.block_for(get("/info"))
            + literal(b"x-bomb", b"b" * 4000, indexing=True)
            + b"\xbe" * 10000
        )
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        refused = False
        for f, fields in c.frames():
            if isinstance(f, GoAwayFrame) or (isinstance(f, RstStreamFrame) and f.stream_id == 1):
                refused = True
                break
            if fields is not None and f.stream_id == 1:
                assert dict(fields)[b":status"] == b"431", fields
                refused = True
                break
        assert refused or c.closed
    assert time.monotonic() - start < 2.0
    assert peak_rss() - rss < 32 * MIB
    assert_responsive(server)


# -- SETTINGS and PING floods ------------------------------------------------------------------


def test_settings_flood_is_cut(server: BatteryServer) -> None:
    """20000 SETTINGS without reading the ACKs: ENHANCE_YOUR_CALM, not an output buffer that
    grows with the flood."""
    with Conn(server.port, rcvbuf=4096) as c:
        send_all(c, SettingsFrame(0, settings={INITIAL_WINDOW_SIZE: 65535}).serialize() * 20000)
        assert c.scan_for_goaway(1.0) == ENHANCE_YOUR_CALM
        c.expect_closed()
    assert_responsive(server)


def test_ping_flood_is_cut(server: BatteryServer) -> None:
    with Conn(server.port, rcvbuf=4096) as c:
        send_all(c, PingFrame(0, opaque_data=b"flooding").serialize() * 20000)
        assert c.scan_for_goaway(1.0) == ENHANCE_YOUR_CALM
        c.expect_closed()
    assert_responsive(server)


# -- slow readers ------------------------------------------------------------------------------


def test_receive_window_never_opened(server: BatteryServer) -> None:
    """The client's windows stay at 0: the stream (or the connection) is given up after the
    send timeout, and the handler, held at drain(), wrote only a bounded amount."""
    probe = server.probe
    probe.written, probe.stopped = 0, False
    with Conn(server.port, {INITIAL_WINDOW_SIZE: 0}) as c:
        c.request(1, get("/stream_big"))
        ended = False
        for f, _ in c.frames(SEND_TIMEOUT + 2.5):
            if isinstance(f, GoAwayFrame) or (isinstance(f, RstStreamFrame) and f.stream_id == 1):
                ended = True
                break
        assert ended or c.closed, "the stream is still waiting for a window"
    assert wait_for(lambda: probe.stopped, 2.0)
    assert probe.written <= MIB


def test_a_stream_waiting_for_a_window_costs_only_that_stream(server: BatteryServer) -> None:
    """The stream is reset after the send timeout; the connection, whose socket the client
    reads, stays open over several of the server's ticks and serves the next stream."""
    with Conn(server.port, {INITIAL_WINDOW_SIZE: 0}) as c:
        c.request(1, get("/stream_big"))
        reset = None
        for f, _ in c.frames(SEND_TIMEOUT + 2.5):
            assert not isinstance(f, GoAwayFrame), f"GOAWAY {f.error_code}"
            if isinstance(f, RstStreamFrame) and f.stream_id == 1:
                reset = f.error_code
                break
        assert reset == CANCEL
        time.sleep(2.2)  # two more ticks
        c.ping()
        assert not c.closed


def test_client_that_never_reads_is_dropped(server: BatteryServer) -> None:
    """Windows wide open but the socket never read: drain() holds the handler (bounded
    buffering), the connection is dropped after the send timeout and the handler stops."""
    probe = server.probe
    probe.written, probe.stopped = 0, False
    with Conn(server.port, {INITIAL_WINDOW_SIZE: MAX_WINDOW}, rcvbuf=4096) as c:
        c.send(WindowUpdateFrame(0, window_increment=MAX_WINDOW - 65535))
        c.request(1, get("/stream_big"))
        assert wait_for(lambda: probe.stopped, SEND_TIMEOUT + 4.0), "the handler is still writing"
    assert probe.written < 32 * MIB


# -- concurrency -------------------------------------------------------------------------------


def test_streams_past_the_limit_are_refused_and_the_others_served(server: BatteryServer) -> None:
    with Conn(server.port) as c:
        limit = c.server_settings[MAX_CONCURRENT_STREAMS]
        ids = [1 + 2 * i for i in range(limit)]
        extra = ids[-1] + 2
        c.send(*(c.headers(i, get("/slow")) for i in ids), c.headers(extra, get("/")))
        done: set[int] = set()
        refused = False
        for f, _ in c.frames():
            assert not isinstance(f, GoAwayFrame), f"GOAWAY {f.error_code}"
            if isinstance(f, RstStreamFrame):
                assert (f.stream_id, f.error_code) == (extra, REFUSED_STREAM)
                refused = True
            elif "END_STREAM" in f.flags:
                done.add(f.stream_id)
            if refused and done == set(ids):
                break
        assert refused and done == set(ids)


# -- found along the way -----------------------------------------------------------------------


def test_reset_during_an_upload_logs_no_error(
    server: BatteryServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A client resets a stream whose handler waits for the body: the handler is cancelled,
    and asyncio has no "Future exception was never retrieved" to log about it."""
    with Conn(server.port) as c:
        c.send(
            c.headers(1, get("/echo", "POST"), end_stream=False),
            RstStreamFrame(1, error_code=CANCEL),
        )
        c.ping()
    time.sleep(0.1)
    server.call(gc.collect)
    time.sleep(0.1)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


# -- slow request bodies: the same minimum rate as HTTP/1.1 (Limits.min_body_rate) -----------


@pytest.fixture(scope="module")
def rate_server() -> Iterator[BatteryServer]:
    """min_body_rate 1000 B/s after body_grace 1 s (HTTP/1.1's rate tests use the same)."""
    srv = BatteryServer(min_body_rate=1000, body_grace=1.0).start()
    try:
        yield srv
    finally:
        srv.stop()


def _trickle(c: Conn, stream_id: int, total: int, rate: float, until: float) -> list[object]:
    """DATA for ``total`` bytes at ``rate`` bytes/s by the clock (END_STREAM on the last),
    until a header block or RST_STREAM for the stream comes back or ``until`` seconds pass;
    the list holds it (the block's fields, or the frame)."""
    start = time.monotonic()
    sent = 0
    got: list[object] = []
    while time.monotonic() - start < until:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        if due > sent:
            end = END_STREAM if due == total else 0
            c.send(frame(DATA, end, stream_id, b"x" * (due - sent)))
            sent = due
        try:
            f, fields = c.read(0.05)
        except TimeoutError:
            continue
        if f.stream_id == stream_id and (fields is not None or isinstance(f, RstStreamFrame)):
            got.append(fields if fields is not None else f)
            return got
    return got


def test_body_below_the_minimum_rate_is_cut_on_its_stream(rate_server: BatteryServer) -> None:
    """200 B/s against 1000 B/s after 1 s: the stream's handler fails with 408 (its answer),
    the stream is then reset with NO_ERROR, and the connection serves on."""
    with Conn(rate_server.port, {INITIAL_WINDOW_SIZE: MAX_WINDOW}) as c:
        fields = [*get("/echo", "POST"), (b"content-length", b"100000")]
        c.send(c.headers(1, fields, end_stream=False))
        start = time.monotonic()
        got = _trickle(c, 1, 100000, 200, until=6.0)
        elapsed = time.monotonic() - start
        assert got and isinstance(got[0], list), got
        assert dict(got[0])[b":status"] == b"408", got
        assert 1.2 <= elapsed < 3.5, elapsed
        reset = None
        for f, _ in c.frames(2.0):
            if isinstance(f, RstStreamFrame) and f.stream_id == 1:
                reset = f.error_code
                break
        assert reset == NO_ERROR
        c.request(3, get("/"))
        assert c.response(3).body == b"Hello, World!"


def test_body_just_above_the_minimum_rate_completes_on_http2(rate_server: BatteryServer) -> None:
    with Conn(rate_server.port, {INITIAL_WINDOW_SIZE: MAX_WINDOW}) as c:
        fields = [*get("/echo", "POST"), (b"content-length", b"3600")]
        c.send(c.headers(1, fields, end_stream=False))
        got = _trickle(c, 1, 3600, 1200, until=6.0)
        assert got and isinstance(got[0], list) and dict(got[0])[b":status"] == b"200", got
        body = b""
        for f, _ in c.frames(2.0):
            if f.stream_id == 1 and hasattr(f, "data"):
                body += f.data
            if f.stream_id == 1 and "END_STREAM" in f.flags:
                break
        assert body == b"x" * 3600
