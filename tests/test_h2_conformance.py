"""HTTP/2 conformance over raw frames: RFC 9113 sections 3-8 and RFC 7541, the areas h2spec covers.

Each case asserts what the RFC requires: GOAWAY with the exact code for a connection error,
RST_STREAM with the exact code (and the connection still answering a PING) for a stream error,
either where the RFC leaves the choice (``expect_error``). A malformed request (RFC 9113 8.1.1)
is a stream error: RFC 9113 5.4 lets an endpoint escalate it to a connection error, but one bad
request should not cost the other streams theirs, so the cases hold the server to the stream
error.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator

import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from .h2_wire import (
    ACK,
    CANCEL,
    COMPRESSION_ERROR,
    CONTINUATION,
    DATA,
    ENABLE_PUSH,
    END_HEADERS,
    END_STREAM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADER_TABLE_SIZE,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    MAX_FRAME_SIZE,
    MAX_WINDOW,
    PADDED,
    PING,
    PREFACE,
    PRIORITY,
    PRIORITY_FLAG,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    RST_STREAM,
    SETTINGS,
    STREAM_CLOSED,
    WINDOW_UPDATE,
    BatteryServer,
    Closed,
    Conn,
    frame,
    get,
    hpack_int,
    literal,
    settings_payload,
    size_update,
)


@pytest.fixture(scope="module")
def server() -> Iterator[BatteryServer]:
    srv = BatteryServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def conn(server: BatteryServer) -> Iterator[Conn]:
    with Conn(server.port) as c:
        yield c


def open_stream(c: Conn, stream_id: int = 1, path: str = "/forever") -> None:
    """A request whose handler is still running: the stream is half-closed (remote)."""
    c.request(stream_id, get(path))


def upload(c: Conn, stream_id: int = 1, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """A POST whose body is still to come: the stream is open."""
    c.send(c.headers(stream_id, [*get("/echo", "POST"), *(extra or [])], end_stream=False))


# -- 3.4 the connection preface --------------------------------------------------------------


def test_server_first_frame_is_settings(server: BatteryServer) -> None:
    with Conn(server.port, handshake=False) as c:
        c.send(PREFACE)
        f, _ = c.read()
        assert isinstance(f, SettingsFrame) and "ACK" not in f.flags


def test_invalid_preface_closes_the_connection(server: BatteryServer) -> None:
    """RFC 9113 3.4: an invalid preface is a connection error (GOAWAY may be omitted)."""
    with Conn(server.port, handshake=False) as c:
        c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SettingsFrame(0).serialize())
        c.expect_closed()


def test_preface_not_followed_by_settings(server: BatteryServer) -> None:
    """RFC 9113 3.4: the preface's SETTINGS frame is missing: PROTOCOL_ERROR."""
    with Conn(server.port, handshake=False) as c:
        c.send(PREFACE, PingFrame(0, opaque_data=b"12345678"))
        assert c.scan_for_goaway(1.0) == PROTOCOL_ERROR


# -- 4.1, 4.2 frame format and size ----------------------------------------------------------


def test_unknown_frame_type_is_ignored(conn: Conn) -> None:
    conn.send(frame(0xFA, 0, 0, b"whatever"), frame(0xFB, 0xFF, 1, b"on an idle stream"))
    conn.ping()
    conn.request(1, get("/"))
    assert conn.response(1).status == 200


def test_unknown_flags_are_ignored(conn: Conn) -> None:
    conn.send(frame(PING, 0xF6, 0, b"flagsok!"))  # ACK (0x1) clear, every other bit set
    f, _ = conn.read()
    assert isinstance(f, PingFrame) and set(f.flags) == {"ACK"} and f.opaque_data == b"flagsok!"
    conn.send(frame(HEADERS, END_STREAM | END_HEADERS | 0xC2, 1, conn.block_for(get("/"))))
    assert conn.response(1).status == 200


def test_reserved_bit_is_ignored(conn: Conn) -> None:
    """RFC 9113 4.1: the stream identifier's reserved bit is ignored on receipt."""
    conn.send(frame(PING, 0, 0x80000000, b"reserved"))
    f, _ = conn.read()
    assert isinstance(f, PingFrame) and f.opaque_data == b"reserved"


def test_data_of_max_frame_size_is_accepted(conn: Conn) -> None:
    upload(conn)
    conn.send(DataFrame(1, b"d" * 16384, flags=["END_STREAM"]))
    assert conn.response(1).body == b"d" * 16384


def test_data_larger_than_max_frame_size(conn: Conn) -> None:
    upload(conn)
    conn.send(frame(DATA, END_STREAM, 1, b"d" * 16385))
    conn.expect_error(1, FRAME_SIZE_ERROR)


def test_headers_larger_than_max_frame_size(conn: Conn) -> None:
    """RFC 9113 4.2: a frame carrying a field block: always a connection error."""
    block = conn.block_for([*get("/"), (b"x-big", b"v" * 16400)], huffman=False)
    conn.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
    conn.expect_goaway(FRAME_SIZE_ERROR)


# -- 4.3 field blocks --------------------------------------------------------------------------


def test_undecodable_field_block(conn: Conn) -> None:
    conn.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, b"\x40\x0aabc"))  # 10 octets promised
    conn.expect_goaway(COMPRESSION_ERROR)


def test_priority_inside_a_field_block(conn: Conn) -> None:
    block = conn.block_for(get("/"))
    conn.send(
        frame(HEADERS, END_STREAM, 1, block[:3]),
        PriorityFrame(1, depends_on=0, stream_weight=15),
        frame(CONTINUATION, END_HEADERS, 1, block[3:]),
    )
    conn.expect_goaway(PROTOCOL_ERROR)


def test_headers_of_another_stream_inside_a_field_block(conn: Conn) -> None:
    block = conn.block_for(get("/"))
    conn.send(
        frame(HEADERS, END_STREAM, 1, block[:3]),
        frame(HEADERS, END_STREAM | END_HEADERS, 3, block[3:]),
    )
    conn.expect_goaway(PROTOCOL_ERROR)


def test_data_inside_a_field_block(conn: Conn) -> None:
    block = conn.block_for(get("/echo", "POST"))
    conn.send(frame(HEADERS, 0, 1, block[:3]), frame(DATA, 0, 1, b"body"))
    conn.expect_goaway(PROTOCOL_ERROR)


# -- 5.1 stream states -------------------------------------------------------------------------


def test_data_on_an_idle_stream(conn: Conn) -> None:
    conn.send(frame(DATA, END_STREAM, 1, b"idle"))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_even_stream_id(conn: Conn) -> None:
    conn.request(2, get("/"))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_stream_id_lower_than_a_previous_one(conn: Conn) -> None:
    conn.request(5, get("/"))
    assert conn.response(5).status == 200
    conn.request(3, get("/"))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_window_update_on_an_idle_stream(conn: Conn) -> None:
    conn.send(WindowUpdateFrame(1, window_increment=100))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_rst_stream_on_an_idle_stream(conn: Conn) -> None:
    conn.send(RstStreamFrame(1, error_code=CANCEL))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_data_on_a_half_closed_remote_stream(conn: Conn) -> None:
    """RFC 9113 5.1 half-closed (remote), 6.1: stream error STREAM_CLOSED."""
    open_stream(conn)
    conn.send(DataFrame(1, b"late", flags=["END_STREAM"]))
    conn.expect_rst(1, STREAM_CLOSED)


def test_headers_on_a_half_closed_remote_stream(conn: Conn) -> None:
    open_stream(conn)
    conn.request(1, get("/"))
    conn.expect_rst(1, STREAM_CLOSED)


def test_data_on_a_stream_closed_both_ways(conn: Conn) -> None:
    conn.request(1, get("/"))
    conn.response(1)
    conn.send(DataFrame(1, b"late", flags=["END_STREAM"]))
    conn.expect_error(1, STREAM_CLOSED)


def test_data_after_rst_stream(conn: Conn) -> None:
    upload(conn)
    conn.send(RstStreamFrame(1, error_code=CANCEL), DataFrame(1, b"late", flags=["END_STREAM"]))
    conn.expect_error(1, STREAM_CLOSED)


def test_headers_after_rst_stream(conn: Conn) -> None:
    open_stream(conn)
    conn.send(RstStreamFrame(1, error_code=CANCEL))
    conn.request(1, get("/"))
    conn.expect_error(1, STREAM_CLOSED)


def test_window_update_and_priority_on_a_closed_stream_are_allowed(conn: Conn) -> None:
    """RFC 9113 5.1: WINDOW_UPDATE and RST_STREAM may cross a closing frame; PRIORITY always."""
    conn.request(1, get("/"))
    conn.response(1)
    conn.send(
        PriorityFrame(1, depends_on=0, stream_weight=7), WindowUpdateFrame(1, window_increment=10)
    )
    conn.ping()
    conn.request(3, get("/"))
    assert conn.response(3).status == 200


# -- 5.1.2 stream concurrency ------------------------------------------------------------------


def test_streams_past_max_concurrent_streams(server: BatteryServer, conn: Conn) -> None:
    limit = conn.server_settings.get(MAX_CONCURRENT_STREAMS)
    assert limit is not None, "the server advertises no SETTINGS_MAX_CONCURRENT_STREAMS"
    ids = [1 + 2 * i for i in range(limit)]
    conn.send(*(conn.headers(i, get("/forever")) for i in ids))
    extra = ids[-1] + 2
    conn.request(extra, get("/"))
    for f, _ in conn.frames():
        if isinstance(f, GoAwayFrame):
            raise AssertionError(f"GOAWAY {f.error_code}: wanted a stream error on {extra}")
        if isinstance(f, RstStreamFrame) and f.stream_id == extra:
            assert f.error_code in (REFUSED_STREAM, PROTOCOL_ERROR)
            break
    else:
        raise AssertionError(f"stream {extra} was not refused")
    conn.send(*(RstStreamFrame(i, error_code=CANCEL) for i in ids))
    conn.request(extra + 2, get("/"))
    assert conn.response(extra + 2).status == 200


# -- 5.3 priority ------------------------------------------------------------------------------


def test_priority_on_idle_and_open_streams_is_accepted(conn: Conn) -> None:
    conn.send(PriorityFrame(9, depends_on=0, stream_weight=200))  # idle
    conn.request(1, get("/"))
    conn.send(PriorityFrame(1, depends_on=9, stream_weight=3, exclusive=True))
    assert conn.response(1).status == 200


def test_headers_with_priority_are_served(conn: Conn) -> None:
    block = struct.pack(">IB", 0x80000000, 255) + conn.block_for(get("/"))
    conn.send(frame(HEADERS, END_STREAM | END_HEADERS | PRIORITY_FLAG, 1, block))
    assert conn.response(1).status == 200


def test_priority_depending_on_itself(conn: Conn) -> None:
    """RFC 9113 5.3.1: a stream cannot depend on itself: stream error PROTOCOL_ERROR."""
    open_stream(conn)
    conn.send(PriorityFrame(1, depends_on=1, stream_weight=15))
    conn.expect_rst(1, PROTOCOL_ERROR)


def test_headers_depending_on_itself(conn: Conn) -> None:
    block = struct.pack(">IB", 1, 15) + conn.block_for(get("/"))
    conn.send(frame(HEADERS, END_STREAM | END_HEADERS | PRIORITY_FLAG, 1, block))
    conn.expect_rst(1, PROTOCOL_ERROR)


# -- 6.1 DATA ----------------------------------------------------------------------------------


def test_data_on_stream_zero(conn: Conn) -> None:
    conn.send(frame(DATA, 0, 0, b"zero"))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_data_padding_longer_than_the_payload(conn: Conn) -> None:
    upload(conn)
    conn.send(frame(DATA, PADDED | END_STREAM, 1, b"\x06abcde"))  # 6 of padding in 5 octets
    conn.expect_goaway(PROTOCOL_ERROR)


def test_padded_data_is_accepted(conn: Conn) -> None:
    upload(conn)
    conn.send(frame(DATA, PADDED | END_STREAM, 1, b"\x03abc\x00\x00\x00"))
    assert conn.response(1).body == b"abc"


# -- 6.2 HEADERS -------------------------------------------------------------------------------


def test_headers_on_stream_zero(conn: Conn) -> None:
    conn.send(conn.headers(0, get("/")))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_headers_padding_longer_than_the_block(conn: Conn) -> None:
    block = conn.block_for(get("/"))
    conn.send(frame(HEADERS, PADDED | END_STREAM | END_HEADERS, 1, bytes([len(block) + 1]) + block))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_padded_headers_are_accepted(conn: Conn) -> None:
    block = conn.block_for(get("/"))
    conn.send(frame(HEADERS, PADDED | END_STREAM | END_HEADERS, 1, b"\x04" + block + b"\x00" * 4))
    assert conn.response(1).status == 200


# -- 6.3 PRIORITY ------------------------------------------------------------------------------


def test_priority_on_stream_zero(conn: Conn) -> None:
    conn.send(frame(PRIORITY, 0, 0, struct.pack(">IB", 1, 15)))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_priority_of_the_wrong_length(conn: Conn) -> None:
    """RFC 9113 6.3: stream error FRAME_SIZE_ERROR."""
    open_stream(conn)
    conn.send(frame(PRIORITY, 0, 1, struct.pack(">I", 0)))
    conn.expect_rst(1, FRAME_SIZE_ERROR)


# -- 6.4 RST_STREAM ----------------------------------------------------------------------------


def test_rst_stream_on_stream_zero(conn: Conn) -> None:
    conn.send(frame(RST_STREAM, 0, 0, struct.pack(">I", CANCEL)))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_rst_stream_of_the_wrong_length(conn: Conn) -> None:
    open_stream(conn)
    conn.send(frame(RST_STREAM, 0, 1, b"\x00\x00\x08"))
    conn.expect_goaway(FRAME_SIZE_ERROR)


# -- 6.5 SETTINGS ------------------------------------------------------------------------------


def test_settings_are_acknowledged(conn: Conn) -> None:
    conn.send(SettingsFrame(0, settings={HEADER_TABLE_SIZE: 8192, INITIAL_WINDOW_SIZE: 100000}))
    f, _ = conn.read()
    assert isinstance(f, SettingsFrame) and set(f.flags) == {"ACK"} and not f.settings


def test_unknown_setting_is_ignored(conn: Conn) -> None:
    conn.send(frame(SETTINGS, 0, 0, settings_payload({0xFF: 1, 0x4242: 7})))
    f, _ = conn.read()
    assert isinstance(f, SettingsFrame) and set(f.flags) == {"ACK"}
    conn.request(1, get("/"))
    assert conn.response(1).status == 200


def test_settings_ack_with_a_payload(conn: Conn) -> None:
    conn.send(frame(SETTINGS, ACK, 0, settings_payload({INITIAL_WINDOW_SIZE: 1})))
    conn.expect_goaway(FRAME_SIZE_ERROR)


def test_settings_on_a_stream(conn: Conn) -> None:
    conn.send(frame(SETTINGS, 0, 1, settings_payload({INITIAL_WINDOW_SIZE: 1})))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_settings_length_not_a_multiple_of_six(conn: Conn) -> None:
    conn.send(frame(SETTINGS, 0, 0, b"\x00\x04\x00\x00"))
    conn.expect_goaway(FRAME_SIZE_ERROR)


def test_settings_enable_push_not_0_or_1(conn: Conn) -> None:
    conn.send(frame(SETTINGS, 0, 0, settings_payload({ENABLE_PUSH: 2})))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_settings_initial_window_size_too_large(conn: Conn) -> None:
    conn.send(frame(SETTINGS, 0, 0, settings_payload({INITIAL_WINDOW_SIZE: 2**31})))
    conn.expect_goaway(FLOW_CONTROL_ERROR)


@pytest.mark.parametrize("size", [16383, 2**24])
def test_settings_max_frame_size_out_of_range(conn: Conn, size: int) -> None:
    conn.send(frame(SETTINGS, 0, 0, settings_payload({MAX_FRAME_SIZE: size})))
    conn.expect_goaway(PROTOCOL_ERROR)


# -- 6.7 PING ----------------------------------------------------------------------------------


def test_ping_is_answered_with_the_same_payload(conn: Conn) -> None:
    conn.send(PingFrame(0, opaque_data=b"\x00\x01\x02\x03\xfc\xfd\xfe\xff"))
    f, _ = conn.read()
    assert isinstance(f, PingFrame) and set(f.flags) == {"ACK"}
    assert f.opaque_data == b"\x00\x01\x02\x03\xfc\xfd\xfe\xff"


def test_ping_ack_is_not_answered(conn: Conn) -> None:
    conn.send(
        PingFrame(0, opaque_data=b"unasked!", flags=["ACK"]), PingFrame(0, opaque_data=b"asked...")
    )
    f, _ = conn.read()
    assert isinstance(f, PingFrame) and f.opaque_data == b"asked..."


def test_ping_on_a_stream(conn: Conn) -> None:
    conn.send(frame(PING, 0, 1, b"12345678"))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_ping_of_the_wrong_length(conn: Conn) -> None:
    conn.send(frame(PING, 0, 0, b"123456"))
    conn.expect_goaway(FRAME_SIZE_ERROR)


# -- 6.8 GOAWAY --------------------------------------------------------------------------------


def test_goaway_on_a_stream(conn: Conn) -> None:
    conn.send(frame(GOAWAY, 0, 1, struct.pack(">II", 0, 0)))
    conn.expect_goaway(PROTOCOL_ERROR)


# -- 6.9 WINDOW_UPDATE and flow control --------------------------------------------------------


def test_window_update_of_zero_on_the_connection(conn: Conn) -> None:
    conn.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)))
    conn.expect_goaway(PROTOCOL_ERROR)


def test_window_update_of_zero_on_a_stream(conn: Conn) -> None:
    open_stream(conn)
    conn.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0)))
    conn.expect_rst(1, PROTOCOL_ERROR)


def test_window_update_of_the_wrong_length(conn: Conn) -> None:
    conn.send(frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"))
    conn.expect_goaway(FRAME_SIZE_ERROR)


def test_connection_window_overflow(conn: Conn) -> None:
    conn.send(WindowUpdateFrame(0, window_increment=MAX_WINDOW))
    conn.expect_goaway(FLOW_CONTROL_ERROR)


def test_stream_window_overflow(conn: Conn) -> None:
    """RFC 9113 6.9.1: a stream error FLOW_CONTROL_ERROR."""
    open_stream(conn)
    conn.send(WindowUpdateFrame(1, window_increment=MAX_WINDOW))
    conn.expect_rst(1, FLOW_CONTROL_ERROR)


def test_initial_window_size_change_overflowing_a_stream(conn: Conn) -> None:
    """RFC 9113 6.9.2: a SETTINGS change that overflows a window is a connection error."""
    open_stream(conn)
    conn.send(WindowUpdateFrame(1, window_increment=MAX_WINDOW - 65535))
    conn.send(SettingsFrame(0, settings={INITIAL_WINDOW_SIZE: 65536}))
    conn.expect_goaway(FLOW_CONTROL_ERROR)


def expect_data(c: Conn, stream_id: int, size: int, end: bool = False) -> None:
    """The server sends exactly ``size`` more DATA octets on the stream (ending it if ``end``),
    then nothing more for a moment: it waits for the window."""
    got, ended = 0, False
    while got < size:
        f, _ = c.read()
        assert not isinstance(f, GoAwayFrame | RstStreamFrame), f
        if isinstance(f, DataFrame) and f.stream_id == stream_id:
            got += len(f.data)
            ended = "END_STREAM" in f.flags
    if not ended:
        for f, _ in c.frames(0.2):
            assert not isinstance(f, GoAwayFrame | RstStreamFrame), f
            if isinstance(f, DataFrame) and f.stream_id == stream_id:
                got += len(f.data)
                ended = "END_STREAM" in f.flags
    assert (got, ended) == (size, end)


def test_server_honours_the_stream_window(server: BatteryServer) -> None:
    with Conn(server.port, {INITIAL_WINDOW_SIZE: 1000}) as c:
        c.request(1, get("/big?n=5000"))
        expect_data(c, 1, 1000)
        c.send(WindowUpdateFrame(1, window_increment=1500))
        expect_data(c, 1, 1500)
        c.send(WindowUpdateFrame(1, window_increment=2500))
        expect_data(c, 1, 2500, end=True)


def test_server_honours_the_connection_window(server: BatteryServer) -> None:
    with Conn(server.port, {INITIAL_WINDOW_SIZE: 1 << 20}) as c:
        c.request(1, get("/big?n=100000"))
        expect_data(c, 1, 65535)
        c.send(WindowUpdateFrame(0, window_increment=100000 - 65535))
        expect_data(c, 1, 100000 - 65535, end=True)


def test_server_honours_initial_window_size_changes(server: BatteryServer) -> None:
    """RFC 9113 6.9.2: a new SETTINGS_INITIAL_WINDOW_SIZE moves open streams' windows, even
    below zero (h2spec 6.9.2/3: after the window went to -99, an increment of 100 lets 1 octet)."""
    with Conn(server.port, {INITIAL_WINDOW_SIZE: 100}) as c:
        c.request(1, get("/big?n=5000"))
        expect_data(c, 1, 100)
        c.send(SettingsFrame(0, settings={INITIAL_WINDOW_SIZE: 1}))
        expect_data(c, 1, 0)
        c.send(WindowUpdateFrame(1, window_increment=100))
        expect_data(c, 1, 1)
        c.send(SettingsFrame(0, settings={INITIAL_WINDOW_SIZE: 2000}))  # +1999
        expect_data(c, 1, 1999)


def test_server_honours_max_frame_size(server: BatteryServer) -> None:
    """Frames no larger than the client's SETTINGS_MAX_FRAME_SIZE (the default 16384 here)."""
    with Conn(server.port, {INITIAL_WINDOW_SIZE: MAX_WINDOW}) as c:
        c.send(WindowUpdateFrame(0, window_increment=MAX_WINDOW - 65535))
        c.request(1, get("/big?n=200000"))
        r = c.response(1)
    assert len(r.body) == 200000 and max(r.data_frames) <= 16384


# -- 6.10 CONTINUATION -------------------------------------------------------------------------


def test_field_block_over_several_continuations(conn: Conn) -> None:
    block = conn.block_for([*get("/"), (b"x-long", b"z" * 100)], huffman=False)
    conn.send(
        frame(HEADERS, END_STREAM, 1, block[:10]),
        frame(CONTINUATION, 0, 1, block[10:50]),
        frame(CONTINUATION, 0, 1, b""),
        frame(CONTINUATION, END_HEADERS, 1, block[50:]),
    )
    assert conn.response(1).status == 200


def test_continuation_after_the_block_ended(conn: Conn) -> None:
    block = conn.block_for(get("/"))
    conn.send(
        frame(HEADERS, END_HEADERS, 1, block),
        frame(CONTINUATION, END_HEADERS, 1, conn.block_for([(b"x-late", b"1")])),
    )
    conn.expect_goaway(PROTOCOL_ERROR)


def test_continuation_on_another_stream(conn: Conn) -> None:
    block = conn.block_for(get("/"))
    conn.send(
        frame(HEADERS, END_STREAM, 1, block[:3]), frame(CONTINUATION, END_HEADERS, 3, block[3:])
    )
    conn.expect_goaway(PROTOCOL_ERROR)


def test_continuation_after_data(conn: Conn) -> None:
    upload(conn)
    conn.send(
        DataFrame(1, b"x"), frame(CONTINUATION, END_HEADERS, 1, conn.block_for([(b"x-a", b"1")]))
    )
    conn.expect_goaway(PROTOCOL_ERROR)


# -- 8.1 HTTP messages -------------------------------------------------------------------------


def test_body_longer_than_content_length(conn: Conn) -> None:
    upload(conn, extra=[(b"content-length", b"3")])
    conn.send(DataFrame(1, b"abcdef", flags=["END_STREAM"]))
    conn.expect_rst(1, PROTOCOL_ERROR)


def test_body_shorter_than_content_length(conn: Conn) -> None:
    upload(conn, extra=[(b"content-length", b"10")])
    conn.send(DataFrame(1, b"abc", flags=["END_STREAM"]))
    conn.expect_rst(1, PROTOCOL_ERROR)


def test_body_matching_content_length(conn: Conn) -> None:
    upload(conn, extra=[(b"content-length", b"6")])
    conn.send(DataFrame(1, b"abc"), DataFrame(1, b"def", flags=["END_STREAM"]))
    assert conn.response(1).body == b"abcdef"


def test_trailers_are_accepted(conn: Conn) -> None:
    upload(conn)
    conn.send(DataFrame(1, b"abc"), conn.headers(1, [(b"x-checksum", b"1234")]))
    r = conn.response(1)
    assert (r.status, r.body) == (200, b"abc")


def test_trailers_with_a_pseudo_header(conn: Conn) -> None:
    upload(conn)
    conn.send(DataFrame(1, b"abc"), conn.headers(1, [(b":path", b"/x")]))
    conn.expect_rst(1, PROTOCOL_ERROR)


def test_second_headers_without_end_stream(conn: Conn) -> None:
    upload(conn)
    conn.send(DataFrame(1, b"abc"), conn.headers(1, [(b"x-checksum", b"1234")], end_stream=False))
    conn.expect_rst(1, PROTOCOL_ERROR)


# -- 8.2 fields --------------------------------------------------------------------------------

MALFORMED_FIELDS = {
    "uppercase name": (b"X-Upper", b"1"),
    "connection": (b"connection", b"keep-alive"),
    "transfer-encoding": (b"transfer-encoding", b"chunked"),
    "keep-alive": (b"keep-alive", b"timeout=5"),
    "upgrade": (b"upgrade", b"h2c"),
    "proxy-connection": (b"proxy-connection", b"keep-alive"),
    "te other than trailers": (b"te", b"gzip"),
    "space in name": (b"x foo", b"1"),
    "CR LF in value": (b"x-foo", b"a\r\nb"),
    "NUL in value": (b"x-foo", b"a\x00b"),
    "leading space in value": (b"x-foo", b" a"),
}
"""Fields that make a request malformed (RFC 9113 8.2, 8.2.1, 8.2.2)."""


@pytest.mark.parametrize("case", MALFORMED_FIELDS)
def test_malformed_field(conn: Conn, case: str) -> None:
    conn.request(1, [*get("/"), MALFORMED_FIELDS[case]])
    conn.expect_rst(1, PROTOCOL_ERROR)


def test_te_trailers_is_accepted(server: BatteryServer) -> None:
    seen = server.info([(b"te", b"trailers")])
    assert ["te", "trailers"] in [[k.lower(), v] for k, v in seen["headers"]]


def test_cookie_crumbs_reach_the_app_as_one_field(server: BatteryServer) -> None:
    """RFC 9113 8.2.3: crumbs are joined with "; " into one Cookie field."""
    seen = server.info(
        [(b"cookie", b"a=1"), (b"x-other", b"x"), (b"cookie", b"b=2"), (b"cookie", b"c=3")]
    )
    cookies = [v for k, v in seen["headers"] if k.lower() == "cookie"]
    assert cookies == ["a=1; b=2; c=3"]


# -- 8.3 pseudo-header fields ------------------------------------------------------------------


def pseudo(
    drop: bytes = b"", add: list[tuple[bytes, bytes]] | None = None
) -> list[tuple[bytes, bytes]]:
    return [f for f in get("/") if f[0] != drop] + (add or [])


MALFORMED_PSEUDO = {
    "unknown pseudo-header": pseudo(add=[(b":foo", b"bar")]),
    ":status in a request": pseudo(add=[(b":status", b"200")]),
    "pseudo-header after a field": [*get("/")[:3], (b"x-a", b"1"), (b":authority", b"localhost")],
    "duplicated :path": pseudo(add=[(b":path", b"/")]),
    "duplicated :method": [(b":method", b"GET"), *get("/")],
    "missing :method": pseudo(drop=b":method"),
    "missing :scheme": pseudo(drop=b":scheme"),
    "missing :path": pseudo(drop=b":path"),
    "empty :path": [*pseudo(drop=b":path"), (b":path", b"")],
    "CONNECT without :authority": [(b":method", b"CONNECT")],
    "CONNECT with :path": [(b":method", b"CONNECT"), (b":authority", b"a:443"), (b":path", b"/")],
}
"""Requests that are malformed by their pseudo-header fields (RFC 9113 8.3, 8.5)."""


@pytest.mark.parametrize("case", MALFORMED_PSEUDO)
def test_malformed_pseudo_headers(conn: Conn, case: str) -> None:
    conn.request(1, MALFORMED_PSEUDO[case])
    conn.expect_rst(1, PROTOCOL_ERROR)


def test_connect_is_answered_501(conn: Conn) -> None:
    """A well-formed CONNECT (RFC 9113 8.5): squall is no proxy, so 501 Not Implemented
    (http/h2.py) and the connection goes on."""
    conn.request(1, [(b":method", b"CONNECT"), (b":authority", b"example.com:443")])
    assert conn.response(1).status == 501
    conn.request(3, get("/"))
    assert conn.response(3).status == 200


# -- RFC 7541 HPACK ----------------------------------------------------------------------------


def test_table_size_update_above_the_setting(conn: Conn) -> None:
    """RFC 7541 6.3/4.2: above the server's SETTINGS_HEADER_TABLE_SIZE."""
    limit = conn.server_settings.get(HEADER_TABLE_SIZE, 4096)
    block = size_update(limit + 1) + conn.block_for(get("/"))
    conn.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
    conn.expect_goaway(COMPRESSION_ERROR)


def test_table_size_update_after_a_field(conn: Conn) -> None:
    """RFC 7541 4.2: a size update must come first in a field block."""
    block = b"\x82" + size_update(100) + conn.block_for(get("/")[1:])
    conn.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
    conn.expect_goaway(COMPRESSION_ERROR)


def test_table_size_update_first_is_accepted(conn: Conn) -> None:
    conn.encoder.header_table_size = 256  # the encoder sends the update at its next block's start
    conn.request(1, [*get("/"), (b"x-a", b"1")])
    assert conn.response(1).status == 200
    conn.request(3, [*get("/"), (b"x-a", b"1")])
    assert conn.response(3).status == 200


@pytest.mark.parametrize("index", [0, 62, 1000])
def test_index_out_of_range(conn: Conn, index: int) -> None:
    """Index 0 and an index past the static and (empty) dynamic tables: COMPRESSION_ERROR."""
    block = hpack_int(index, 7, 0x80) + conn.block_for(get("/"))
    conn.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
    conn.expect_goaway(COMPRESSION_ERROR)


def test_huffman_strings_are_decoded(server: BatteryServer) -> None:
    with Conn(server.port) as c:
        fields = [*get("/info"), (b"x-huffman", b"www.example.com, no-cache; q=0.5")]
        block = c.block_for(fields, huffman=True)
        assert b"www.example.com" not in block  # Huffman-coded
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        seen = json.loads(c.response(1).body)
    assert ["x-huffman", "www.example.com, no-cache; q=0.5"] in [
        [k.lower(), v] for k, v in seen["headers"]
    ]


def test_dynamic_table_entry_is_referenced(server: BatteryServer) -> None:
    """A literal with incremental indexing, then its index (62) in the next block."""
    # :method GET, :scheme http (static), :path and :authority with indexed names, not indexed
    pseudo = b"\x82\x86" + b"\x04\x05/info" + b"\x01\x09localhost"
    with Conn(server.port) as c:
        c.send(
            frame(
                HEADERS,
                END_STREAM | END_HEADERS,
                1,
                pseudo + literal(b"x-plain", b"v", indexing=True),
            )
        )
        seen = json.loads(c.response(1).body)
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, pseudo + b"\xbe"))
        again = json.loads(c.response(3).body)
    assert ["x-plain", "v"] in [[k.lower(), v] for k, v in seen["headers"]]
    assert ["x-plain", "v"] in [[k.lower(), v] for k, v in again["headers"]]


def test_responses_decode_with_one_decoder(server: BatteryServer) -> None:
    """The server's blocks use its dynamic table consistently across responses."""
    with Conn(server.port) as c:
        statuses = []
        for i in range(1, 12, 2):
            c.request(i, get("/hop" if i % 4 == 1 else "/"))
            r = c.response(i)
            statuses.append(r.status)
            assert r.header(b"content-length") == str(len(r.body)).encode()
            assert r.header(b"date") and r.header(b"server")
    assert statuses == [200] * 6


# -- responses ---------------------------------------------------------------------------------

CONNECTION_SPECIFIC = {
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
}


def test_response_is_right(conn: Conn) -> None:
    conn.request(1, get("/"))
    r = conn.response(1)
    assert r.headers[0] == (b":status", b"200")
    assert [n for n, _ in r.headers if n.startswith(b":")] == [b":status"]
    assert all(n == n.lower() for n, _ in r.headers)
    assert r.body == b"Hello, World!" and r.header(b"content-length") == b"13"


def test_no_connection_specific_fields_in_responses(conn: Conn) -> None:
    conn.request(1, get("/hop"))
    r = conn.response(1)
    assert r.status == 200 and r.header(b"x-ok") == b"1"
    assert not CONNECTION_SPECIFIC & {n for n, _ in r.headers}


@pytest.mark.parametrize(
    ("method", "path", "status"), [("HEAD", "/", 200), ("GET", "/empty", 204), ("GET", "/304", 304)]
)
def test_no_data_for_head_204_304(conn: Conn, method: str, path: str, status: int) -> None:
    conn.request(1, get(path, method))
    r = conn.response(1)
    assert (r.status, r.data_frames, r.head_ended) == (status, [], True)
    if method == "HEAD":
        assert r.header(b"content-length") == b"13"


def test_request_version_and_host(server: BatteryServer) -> None:
    with Conn(server.port) as c:
        c.request(1, get("/info", authority="example.org:8080"))
        seen = json.loads(c.response(1).body)
    assert seen["version"] == [2, 0]
    assert seen["host"] == "example.org:8080"


def test_request_body_reaches_the_app(conn: Conn) -> None:
    conn.send(conn.headers(1, get("/info", "POST"), end_stream=False))
    for i in range(3):
        conn.send(DataFrame(1, b"part%d;" % i))
        time.sleep(0.01)
    conn.send(DataFrame(1, b"", flags=["END_STREAM"]))
    seen = json.loads(conn.response(1).body)
    assert seen["body"] == "part0;part1;part2;"


def test_many_streams_at_once(conn: Conn) -> None:
    ids = list(range(1, 40, 2))
    conn.send(*(conn.headers(i, get("/slow")) for i in ids))
    start = time.monotonic()
    for i in ids:
        assert conn.response(i).body == b"slow"
    assert time.monotonic() - start < 2.0  # concurrent, not 20 x 0.3 s


def test_client_goaway_is_accepted(conn: Conn) -> None:
    """A client's GOAWAY (NO_ERROR): the server finishes and closes, without an error."""
    conn.request(1, get("/"))
    conn.response(1)
    conn.send(GoAwayFrame(0, last_stream_id=0, error_code=0))
    try:
        frames = [f for f, _ in conn.frames(1.0)]
    except Closed:
        frames = []
    assert not any(isinstance(f, GoAwayFrame) and f.error_code for f in frames)
    assert not any(isinstance(f, HeadersFrame | ContinuationFrame) for f in frames)
