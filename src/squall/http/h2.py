"""H2Protocol: one HTTP/2 connection (RFC 9113), its frames, streams and flow control.

A connection comes here from :class:`~.protocol.HttpProtocol` once it has opened with the
HTTP/2 preface (cleartext, "prior knowledge") or negotiated ``h2`` by ALPN (TLS): see
:mod:`.preface`. Each request stream becomes an :class:`~.h2exchange.H2Exchange` handed to the
same handler an HTTP/1.1 request goes to, so the web and ASGI layers serve both alike. The
frame layer is our own and compiles with the request path; header blocks are decoded and
encoded by :mod:`.h2fields` (docs/design.md says why, with the figures).

Reading: each ``data_received`` walks the complete frames in what arrived (a partial frame
waits for its rest, never longer than one maximum frame). A breach of the protocol that
affects the whole connection (RFC 9113 5.4.1) raises :class:`ConnectionFault`, which sends
GOAWAY with its code and closes; one that affects a stream resets that stream (5.4.2).

Handlers run as on HTTP/1.1 (http/running.py): stepped eagerly in ``data_received``, and one
that suspends is carried on by a worker task. Streams are concurrent, so the connection keeps
a pool of :class:`~.running.Runner` "lanes", one per handler suspended at once: a handler that
finishes without suspending (the common case) costs no Task, and a lane's worker is reused
for the next suspended handler. Frames made while reading leave in one write at its end;
frames made later (by a handler that had suspended) leave together at the end of the loop
iteration.

Flow control, both ways: a request body's bytes are acknowledged (WINDOW_UPDATE) in batches
as they are buffered, until the stream's reader holds more than its high-water mark; then only
as the handler reads them. A response body is sent as far as the peer's windows allow; the
rest waits for WINDOW_UPDATE, and the handler waits with it in ``drain()``. A stream that
waits for a window longer than the send timeout is reset.

Abuse is bounded: a header block larger than the header limit (however many CONTINUATION
frames carry it), streams reset by the client faster than a steady rate (rapid reset), and
PING or SETTINGS frames sent faster than their answers are read, each end the connection with
ENHANCE_YOUR_CALM; streams past the concurrency limit are refused (REFUSED_STREAM).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

from .errors import RequestPayloadError
from .flow import ReadFlow
from .h2exchange import Fields, H2Exchange, StreamOutput
from .h2fields import (
    Decoder,
    HpackError,
    Malformed,
    check_trailers,
    encode_fields,
    request_fields,
)
from .limits import LINGER
from .output import Output
from .running import BUSY, Runner
from .stats import BODY_TIMEOUT, HTTP2_PROTOCOL, SEND_TIMEOUT
from .streams import EMPTY_PAYLOAD, BodyWatch, StreamReader

if TYPE_CHECKING:
    from .connection import UpgradeSink
    from .limits import Limits
    from .shared import Shared

__all__ = ("ConnectionFault", "H2Protocol")

log = logging.getLogger("squall.server")

CUT: Final = BodyWatch()
"""The ``watch`` of a stream whose request body came too slowly (see ``_watch_bodies``)."""

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 6).
DATA: Final = 0x0
HEADERS: Final = 0x1
PRIORITY: Final = 0x2
RST_STREAM: Final = 0x3
SETTINGS: Final = 0x4
PUSH_PROMISE: Final = 0x5
PING: Final = 0x6
GOAWAY: Final = 0x7
WINDOW_UPDATE: Final = 0x8
CONTINUATION: Final = 0x9
END_STREAM: Final = 0x1
ACK: Final = 0x1
END_HEADERS: Final = 0x4
PADDED: Final = 0x8
PRIORITY_FLAG: Final = 0x20

# Error codes (RFC 9113 7).
NO_ERROR: Final = 0x0
PROTOCOL_ERROR: Final = 0x1
INTERNAL_ERROR: Final = 0x2
FLOW_CONTROL_ERROR: Final = 0x3
STREAM_CLOSED: Final = 0x5
FRAME_SIZE_ERROR: Final = 0x6
REFUSED_STREAM: Final = 0x7
CANCEL: Final = 0x8
COMPRESSION_ERROR: Final = 0x9
ENHANCE_YOUR_CALM: Final = 0xB

# Settings (RFC 9113 6.5.2).
HEADER_TABLE_SIZE: Final = 0x1
ENABLE_PUSH: Final = 0x2
MAX_CONCURRENT_STREAMS_ID: Final = 0x3
INITIAL_WINDOW_SIZE: Final = 0x4
MAX_FRAME_SIZE: Final = 0x5
MAX_HEADER_LIST_SIZE: Final = 0x6

MAX_WINDOW: Final = (1 << 31) - 1
DEFAULT_WINDOW: Final = 65535
DEFAULT_FRAME: Final = 16384
MAX_FRAME: Final = (1 << 24) - 1

MAX_CONCURRENT_STREAMS: Final = 100
STREAM_WINDOW: Final = DEFAULT_WINDOW
STREAM_HIGH_WATER: Final = 65536
"""Request-body bytes a stream buffers unread before its window stops being reopened: with the
initial window (64 KiB), what one stream may hold; 100 streams, ~13 MiB at worst."""
CONNECTION_WINDOW: Final = 1 << 20
"""The connection-level receive window: room for many streams' uploads at once."""
BLOCK_FRAMES: Final = 64
"""CONTINUATION frames one header block may take (empty ones cost work and carry nothing)."""
RESET_RATE: Final = 100.0
RESET_BURST: Final = 200.0
"""Streams the client may reset before their response is complete: RESET_BURST at once, then
RESET_RATE a second (a browser cancels a few; a rapid-reset attack, thousands)."""
CONTROL_DEBT: Final = 1000
"""PING and SETTINGS frames answered before the answers have all left our buffers: one read
of a flood holds thousands, a well-behaved client a few."""
CLOSED_REMEMBERED: Final = 256

_METHODS: Final = {
    m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
}
_SETTINGS_ACK: Final = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"

# What the connection is reading: the client's preface, then its first SETTINGS, then frames.
READING_PREFACE: Final = "preface"
READING_SETTINGS: Final = "first SETTINGS"
READING_FRAMES: Final = "frames"


class ConnectionFault(Exception):
    """A connection error (RFC 9113 5.4.1): GOAWAY with ``code``, then the connection closes."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def frame_head(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    """The 9 bytes before a frame's payload."""
    return length.to_bytes(3, "big") + bytes((kind, flags)) + stream_id.to_bytes(4, "big")


def _u32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "big") & 0x7FFFFFFF


class _Stream:
    """One open stream: its exchange, the lane running its handler, both flow-control windows,
    its unsent DATA, and the request body's flow control (it is the body's ``FlowControl``)."""

    __slots__ = (
        "conn",
        "done",
        "exchange",
        "id",
        "lane",
        "length",
        "paused",
        "pending",
        "pending_end",
        "received",
        "recv_window",
        "remote_ended",
        "send_window",
        "stalled_since",
        "trailers",
        "unacked",
        "waiters",
        "watch",
    )

    def __init__(self, conn: H2Protocol, stream_id: int, send_window: int) -> None:
        self.conn = conn
        self.id = stream_id
        self.exchange: H2Exchange | None = None
        self.lane: _Lane | None = None  # while its handler is suspended
        self.send_window = send_window  # the peer's, for our DATA
        self.recv_window = STREAM_WINDOW  # ours, for the peer's DATA
        self.length = -1  # the request's Content-Length
        self.received = 0  # request body bytes so far
        self.paused = False  # the body's reader is full: its window is not reopened
        self.unacked = 0  # received body bytes not acknowledged yet
        self.pending = bytearray()  # DATA waiting for the peer's window
        self.pending_end = False  # ... and END_STREAM after it
        self.trailers: Fields | None = None  # ... or trailers after it
        self.stalled_since = 0.0  # when DATA started waiting for a window
        self.waiters: list[asyncio.Future[None]] = []  # drain_stream() callers
        self.remote_ended = False  # the request is whole (END_STREAM received)
        self.done = False  # the response is complete (END_STREAM or RST_STREAM sent)
        # While its body arrives, the tick's look at it; CUT once the body failed for it (the
        # stream is then reset when answered).
        self.watch: BodyWatch | None = None

    def pause_reading_body(self) -> None:
        self.paused = True

    def resume_reading_body(self) -> None:
        self.paused = False
        if self.unacked and not self.remote_ended:
            self.conn.acknowledge(self)

    def wake(self, exc: BaseException | None = None) -> None:
        waiters, self.waiters = self.waiters, []
        for fut in waiters:
            if not fut.done():
                if exc is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(exc)


class _Lane:
    """A :class:`~.running.Runner` of this connection's and the host it reports to: one
    handler at a time, then back to the connection's pool of idle lanes."""

    __slots__ = ("conn", "runner")

    def __init__(self, conn: H2Protocol, shared: Shared) -> None:
        self.conn = conn
        self.runner = Runner(shared, self, conn, conn.output, conn.flow)

    def finished(self, req: Any) -> bool:
        return True  # a stream never closes its connection

    def idle(self) -> None:
        self.conn.lane_free(self)

    def handler_cancelled(self) -> None:
        self.conn.lane_free(self)


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection (server side)."""

    def __init__(self, shared: Shared, admitted: bool = False, peername: Any = None) -> None:
        self.shared = shared
        self.loop = shared.loop
        self.limits: Limits = shared.limits
        self.output = Output(shared.loop)
        # The lanes' ReadFlow, never given the transport: an HTTP/2 connection does not stop
        # reading for one request (each stream has its own window instead).
        self.flow = ReadFlow()
        self.decoder = Decoder(self.limits.max_head_size)
        self.streams: dict[int, _Stream] = {}
        # Recently closed streams (oldest first): True for those we reset.
        self.closed: dict[int, bool] = {}
        self.lanes: list[_Lane] = []  # idle ones
        self.transport: asyncio.Transport | None = None
        self.peername: Any = peername  # (the HTTP/1.1 connection's: a PROXY header may set it)
        self.sockname: Any = None
        self.deadline = 0.0
        self._watching = False  # the deadline is the tick's look at request bodies arriving
        self.reading = READING_PREFACE
        self._buf = b""  # a frame's first part, waiting for the rest
        self._highest = 0  # the highest stream id the client has opened
        self._block = bytearray()  # a header block arriving in CONTINUATION frames
        self._block_stream = 0  # ... on this stream (0: none)
        self._block_flags = 0
        self._block_frames = 0
        self._send_window = DEFAULT_WINDOW  # the connection's, for our DATA
        self._recv_window = DEFAULT_WINDOW  # ours
        self._recv_unacked = 0
        self._initial_window = DEFAULT_WINDOW  # the peer's SETTINGS_INITIAL_WINDOW_SIZE
        self._max_frame = DEFAULT_FRAME  # the peer's SETTINGS_MAX_FRAME_SIZE
        self._resets = RESET_BURST  # the rapid-reset budget
        self._resets_at = 0.0
        self._control_debt = 0
        self._admitted = admitted
        self._reading = False  # inside data_received: writes are gathered and flushed after
        self._gathering = False
        self._flush_handle: asyncio.Handle | None = None
        self._closing = False
        self._lingering = False  # half-closed after our GOAWAY, reading until the client's FIN
        self._peer_done = False  # the client has half-closed
        self._going_away = False
        self._peer_gone = False  # the client sent GOAWAY: no new streams
        self._last_stream = 0  # the last stream the GOAWAY promised to serve

    # -- what the server's tick and shutdown use ------------------------------------------

    @property
    def busy(self) -> bool:
        return bool(self.streams)

    @property
    def worker(self) -> asyncio.Task[None] | None:
        return None

    @property
    def stalled(self) -> bool:
        if self.output.stall_since:
            return True
        return any(stream.stalled_since for stream in self.streams.values())

    def on_timeout(self, now: float) -> None:
        self.deadline = 0.0
        watching, self._watching = self._watching, False
        if self._lingering:
            if self.transport is not None:
                self.transport.close()
        elif not self.streams:
            self._close(NO_ERROR)
        elif watching:
            self._watch_bodies(now)

    def _watch_bodies(self, now: float) -> None:
        """The request bodies still arriving: each too slow (BodyWatch) fails with 408, as on
        HTTP/1.1; its handler answers, and the stream is then reset (``_response_done``)."""
        limits = self.limits
        for stream in list(self.streams.values()):
            watch = stream.watch
            exchange = stream.exchange
            if watch is None or watch is CUT or exchange is None or stream.remote_ended:
                continue
            if stream.done:
                continue
            body = exchange.body
            why = watch.verdict(limits, body, now, stream.paused)
            if why:
                log.info("HTTP/2 stream %d: %s", stream.id, why)
                self.shared.errors[BODY_TIMEOUT] += 1
                body.set_exception(RequestPayloadError(why, 408))
                stream.watch = CUT
            else:
                self._watching = True
        if self._watching:
            self.deadline = now + 0.5  # look again at the next tick

    def on_write_stall(self, now: float) -> None:
        timeout = self.limits.send_timeout
        # (the socket's own stall, only while its buffer is full: a stream waiting for a
        # window is not one)
        stalled = self.output.stalled_for(now) if self.output.stall_since else 0.0
        if stalled >= timeout and self.transport is not None:
            log.info("Client read nothing for %.0f s: connection dropped", stalled)
            self.shared.errors[SEND_TIMEOUT] += 1
            self.output.stall_since = 0.0
            self.transport.abort()
            return
        for stream in list(self.streams.values()):
            since = stream.stalled_since
            if since and now - since >= timeout:
                log.info(
                    "HTTP/2 stream %d waited %.0f s for the client's window: reset",
                    stream.id,
                    now - since,
                )
                self._reset_stream(stream, CANCEL)
                self._release_soon()

    def shutdown(self) -> None:
        """Server shutdown: GOAWAY (no new streams), close once the open ones are answered."""
        if self._going_away or self.transport is None:
            return
        self._going_away = True
        self._last_stream = self._highest
        self._goaway(NO_ERROR)
        if not self.streams:
            self._close(None)
        else:
            self._release_soon()

    def going_away(self) -> None:
        pass

    def abort(self) -> None:
        for stream in list(self.streams.values()):
            if stream.lane is not None:
                stream.lane.runner.cancel()
        if self.transport is not None:
            self.transport.abort()

    # -- what the application layers use (http/connection.py) ------------------------------

    @property
    def write_paused(self) -> bool:
        return self.output.write_paused

    def lost(self) -> asyncio.Future[None]:
        return self.output.lost()

    def write(self, data: bytes) -> None:
        raise RuntimeError("An HTTP/2 connection carries no upgraded protocol")

    async def drain(self) -> None:
        await self.output.drain()

    def pause_reading_body(self) -> None:
        pass

    def resume_reading_body(self) -> None:
        pass

    def upgrade(self, sink: UpgradeSink) -> None:
        raise RuntimeError("Protocol upgrades do not exist in HTTP/2")

    @property
    def upgraded(self) -> bool:
        """Never: an HTTP/2 connection does not switch protocols."""
        return False

    def run_parked(self, parked: asyncio.Future[None]) -> bool:
        return False

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.output.transport = transport  # type: ignore[assignment]
        if self.peername is None:
            self.peername = transport.get_extra_info("peername")
        self.sockname = transport.get_extra_info("sockname")
        self.shared.connections.add(self)
        settings = (
            MAX_CONCURRENT_STREAMS_ID.to_bytes(2, "big")
            + MAX_CONCURRENT_STREAMS.to_bytes(4, "big")
            + MAX_HEADER_LIST_SIZE.to_bytes(2, "big")
            + self.limits.max_head_size.to_bytes(4, "big")
        )
        increment = CONNECTION_WINDOW - DEFAULT_WINDOW
        self._recv_window = CONNECTION_WINDOW
        self._send(
            frame_head(len(settings), SETTINGS, 0, 0)
            + settings
            + frame_head(4, WINDOW_UPDATE, 0, 0)
            + increment.to_bytes(4, "big")
        )
        self._arm_idle()
        if self.shared.closing:
            self.shutdown()
        self._release_soon()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closing = True
        shared = self.shared
        if shared.count_bytes:  # (metrics on; the socket is still open here)
            shared.closed(self.transport)
        self.transport = None
        shared.connections.discard(self)
        if self._admitted:
            self._admitted = False
            shared.admitted -= 1
        self.output.connection_lost()
        self._gathering = False
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        streams = list(self.streams.values())
        self.streams.clear()
        for stream in streams:
            self._stream_gone(stream, "Connection lost")
        # Idle lanes' workers end now; a suspended handler goes on (it sees the client gone
        # when it writes), unless the server cancels handlers of clients that left.
        for lane in self.lanes:
            lane.runner.cancel()
        self.lanes.clear()
        if shared.handler_cancellation:
            for stream in streams:
                if stream.lane is not None:
                    stream.lane.runner.cancel()

    def eof_received(self) -> bool | None:
        self._peer_done = True
        for stream in list(self.streams.values()):
            self._stream_gone(stream, "Connection closed")
        return None

    def pause_writing(self) -> None:
        self.output.pause_writing()

    def resume_writing(self) -> None:
        self.output.resume_writing()
        for stream in self.streams.values():
            if not stream.pending:
                stream.wake()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if self._buf:
            data = self._buf + data
            self._buf = b""
        self._reading = True
        try:
            pos = 0
            if self.reading == READING_PREFACE:
                if len(data) < len(PREFACE):
                    if PREFACE[: len(data)] != data:
                        raise ConnectionFault(PROTOCOL_ERROR, "Not the HTTP/2 preface")
                    self._buf = data
                    return
                if data[: len(PREFACE)] != PREFACE:
                    raise ConnectionFault(PROTOCOL_ERROR, "Not the HTTP/2 preface")
                pos = len(PREFACE)
                self.reading = READING_SETTINGS
            end = len(data)
            while end - pos >= 9:
                length = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
                if length > DEFAULT_FRAME:
                    raise ConnectionFault(FRAME_SIZE_ERROR, f"A frame of {length} bytes")
                stop = pos + 9 + length
                if stop > end:
                    break
                kind = data[pos + 3]
                flags = data[pos + 4]
                stream_id = _u32(data, pos + 5)
                payload = data[pos + 9 : stop]
                pos = stop
                self._frame(kind, flags, stream_id, payload)
                if self.closing():
                    return
            if pos < end:
                self._buf = data[pos:]
        except ConnectionFault as fault:
            self._fault(fault)
        finally:
            self._reading = False
            self._release()
            transport = self.transport
            # (all taken by the kernel: the answers so far are on their way)
            if self._control_debt and transport and not transport.get_write_buffer_size():
                self._control_debt = 0

    def closing(self) -> bool:
        """Whether the connection is closing (it reads no more frames)."""
        return self._closing

    # -- frames ---------------------------------------------------------------------------

    def _frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self._block_stream:
            if kind != CONTINUATION:
                raise ConnectionFault(PROTOCOL_ERROR, "A frame inside a header block")
            self._continuation(flags, stream_id, payload)
            return
        if self.reading == READING_SETTINGS:
            if kind != SETTINGS or flags & ACK:
                raise ConnectionFault(PROTOCOL_ERROR, "The preface's SETTINGS is missing")
            self.reading = READING_FRAMES
        if kind == HEADERS:
            self._headers(flags, stream_id, payload)
        elif kind == DATA:
            self._data(flags, stream_id, payload)
        elif kind == WINDOW_UPDATE:
            self._window_update(stream_id, payload)
        elif kind == RST_STREAM:
            self._rst_stream(stream_id, payload)
        elif kind == SETTINGS:
            self._settings(flags, stream_id, payload)
        elif kind == PING:
            self._ping(flags, stream_id, payload)
        elif kind == PRIORITY:
            self._priority(stream_id, payload)
        elif kind == GOAWAY:
            if stream_id:
                raise ConnectionFault(PROTOCOL_ERROR, "GOAWAY on a stream")
            self._peer_gone = True
            if not self.streams:
                self._close(None)
        elif kind == CONTINUATION:
            raise ConnectionFault(PROTOCOL_ERROR, "CONTINUATION outside a header block")
        elif kind == PUSH_PROMISE:
            raise ConnectionFault(PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        # Unknown frame types are ignored (RFC 9113 4.1).

    def _headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if not stream_id:
            raise ConnectionFault(PROTOCOL_ERROR, "HEADERS on stream 0")
        start = 0
        end = len(payload)
        if flags & PADDED:
            if not end:
                raise ConnectionFault(FRAME_SIZE_ERROR, "HEADERS too short for its padding")
            end -= payload[0]
            start = 1
        self_dependent = False
        if flags & PRIORITY_FLAG:
            if end - start < 5:
                raise ConnectionFault(FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            self_dependent = _u32(payload, start) == stream_id
            start += 5
        if end < start:
            raise ConnectionFault(PROTOCOL_ERROR, "Padding longer than the frame")
        fragment = payload[start:end] if start or end < len(payload) else payload
        if flags & END_HEADERS:
            self._block_done(stream_id, flags, fragment, self_dependent)
        else:
            self._block_stream = stream_id
            self._block_flags = flags | (PRIORITY_FLAG if self_dependent else 0)
            self._block_frames = 0
            self._block = bytearray(fragment)

    def _continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id != self._block_stream:
            raise ConnectionFault(PROTOCOL_ERROR, "CONTINUATION on another stream")
        block = self._block
        block += payload
        self._block_frames += 1
        if len(block) > self.limits.max_head_size or self._block_frames > BLOCK_FRAMES:
            raise ConnectionFault(ENHANCE_YOUR_CALM, "A header block past the limit")
        if flags & END_HEADERS:
            head_flags = self._block_flags
            self._block_stream = 0
            self._block = bytearray()
            self._block_done(stream_id, head_flags, bytes(block), bool(head_flags & PRIORITY_FLAG))

    def _block_done(self, stream_id: int, flags: int, block: bytes, self_dependent: bool) -> None:
        try:
            pairs = self.decoder.decode(block)
        except HpackError as exc:
            raise ConnectionFault(COMPRESSION_ERROR, f"HPACK: {exc}") from None
        stream = self.streams.get(stream_id)
        if stream is not None:
            self._trailers(stream, flags, pairs)
            return
        if stream_id <= self._highest:
            reset_by_us = self.closed.get(stream_id)
            if reset_by_us:
                return  # frames in flight when we reset it are ignored (RFC 9113 5.1)
            if reset_by_us is not None:
                raise ConnectionFault(STREAM_CLOSED, f"HEADERS on closed stream {stream_id}")
            raise ConnectionFault(PROTOCOL_ERROR, f"Stream {stream_id} reused or out of order")
        if not stream_id & 1:
            raise ConnectionFault(PROTOCOL_ERROR, f"Even stream id {stream_id} from a client")
        self._highest = stream_id
        if self_dependent:
            self._refuse(stream_id, PROTOCOL_ERROR)
        elif (self._going_away and stream_id > self._last_stream) or self._peer_gone:
            self._refuse(stream_id, REFUSED_STREAM)  # after our GOAWAY: safe to retry
        elif len(self.streams) >= MAX_CONCURRENT_STREAMS:
            self._refuse(stream_id, REFUSED_STREAM)
        else:
            self._request(stream_id, flags, pairs)

    def _request(self, stream_id: int, flags: int, pairs: Fields) -> None:
        try:
            head = request_fields(pairs)
        except Malformed as exc:
            log.info("Malformed HTTP/2 request on stream %d: %s", stream_id, exc)
            self._refuse(stream_id, PROTOCOL_ERROR)
            return
        stream = _Stream(self, stream_id, self._initial_window)
        stream.length = head.length
        headers = head.fields
        method = head.method
        path = head.path
        if head.authority:  # Host from :authority, first as a browser would send it
            for name, _value in headers:
                if name == b"host":
                    break
            else:
                headers.insert(0, (b"host", head.authority))
        ended = bool(flags & END_STREAM)
        limits = self.limits
        if ended:
            if head.length > 0:
                log.info("HTTP/2 stream %d: Content-Length without a body", stream_id)
                self._refuse(stream_id, PROTOCOL_ERROR)
                return
            body = EMPTY_PAYLOAD
            stream.remote_ended = True
        else:
            body = StreamReader(stream, min(STREAM_HIGH_WATER, limits.read_high_water))
        expect_continue = not ended and any(
            n == b"expect" and v.lower() == b"100-continue" for n, v in headers
        )
        out = StreamOutput(self.loop, self.transport, self, stream_id)
        exchange = H2Exchange(
            _METHODS.get(method) or method.decode("ascii", "replace"),
            path,
            "2",
            headers,
            True,
            False,
            expect_continue,
            body,
            out,
        )
        if expect_continue:
            body.set_continue(exchange.send_continue)
        stream.exchange = exchange
        self.streams[stream_id] = stream
        if body is not EMPTY_PAYLOAD:
            watch = stream.watch = BodyWatch()
            now = self.loop.time()
            watch.begin(now)
            if not self._watching:  # the next tick looks at it
                self._watching = True
                self.deadline = now
        elif not self._watching:
            self.deadline = 0.0
        if method == b"CONNECT":
            exchange.respond_error(501, "CONNECT is not supported")
            return
        if self.decoder.oversized:
            exchange.respond_error(431, "Request header fields too large")
            return
        if len(path) > limits.max_line_size:
            exchange.respond_error(414, "Request target too long")
            return
        if len(headers) > limits.max_headers:
            exchange.respond_error(431, "Too many request header fields")
            return
        if limits.max_connections and not self._admit():
            log.warning("Exceeded the connection limit (%d): 503", limits.max_connections)
            exchange.respond_error(503, "Too many connections")
            return
        lanes = self.lanes
        lane = lanes.pop() if lanes else _Lane(self, self.shared)
        if lane.runner.start(exchange) == BUSY:
            stream.lane = lane
        else:
            lanes.append(lane)

    def _trailers(self, stream: _Stream, flags: int, pairs: Fields) -> None:
        """A second header block on an open stream: trailers, which end the request."""
        if stream.remote_ended:
            self._reset_stream(stream, STREAM_CLOSED)
            return
        try:
            if not flags & END_STREAM:
                raise Malformed("A second header block without END_STREAM")
            check_trailers(pairs)
        except Malformed as exc:
            log.info("Malformed HTTP/2 request on stream %d: %s", stream.id, exc)
            self._reset_stream(stream, PROTOCOL_ERROR)
            return
        self._ended(stream)

    def _refuse(self, stream_id: int, code: int) -> None:
        """Reset a stream that is not opened (no handler ran for it)."""
        self._remember_closed(stream_id, True)
        self._send(frame_head(4, RST_STREAM, 0, stream_id) + code.to_bytes(4, "big"))

    def _admit(self) -> bool:
        if self._admitted:
            return True
        shared = self.shared
        if shared.admitted >= self.limits.max_connections:
            return False
        shared.admitted += 1
        self._admitted = True
        return True

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if not stream_id:
            raise ConnectionFault(PROTOCOL_ERROR, "DATA on stream 0")
        size = len(payload)  # what flow control counts, padding included
        data = payload
        if flags & PADDED:
            if not size or payload[0] >= size:
                raise ConnectionFault(PROTOCOL_ERROR, "Padding longer than the frame")
            data = payload[1 : size - payload[0]]
        self._recv_window -= size
        if self._recv_window < 0:
            raise ConnectionFault(FLOW_CONTROL_ERROR, "DATA past the connection's window")
        self._recv_unacked += size
        if self._recv_unacked >= CONNECTION_WINDOW // 2:
            self._ack_connection()
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self._highest:
                raise ConnectionFault(PROTOCOL_ERROR, f"DATA on idle stream {stream_id}")
            if not self.closed.get(stream_id):  # (after our RST_STREAM: ignored, 5.1)
                self._send(frame_head(4, RST_STREAM, 0, stream_id) + b"\x00\x00\x00\x05")
            return
        if stream.remote_ended:
            self._reset_stream(stream, STREAM_CLOSED)
            return
        stream.recv_window -= size
        if stream.recv_window < 0:
            self._reset_stream(stream, FLOW_CONTROL_ERROR)
            return
        stream.received += len(data)
        if 0 <= stream.length < stream.received:
            log.info("HTTP/2 stream %d: more DATA than its Content-Length", stream_id)
            self._reset_stream(stream, PROTOCOL_ERROR)
            return
        exchange = stream.exchange
        stream.unacked += size
        if data and exchange is not None and not stream.done:  # (else: not wanted, dropped)
            exchange.body.feed_data(data)
        if flags & END_STREAM:
            self._ended(stream)
        elif stream.unacked >= STREAM_WINDOW // 2 and (stream.done or not stream.paused):
            self.acknowledge(stream)

    def acknowledge(self, stream: _Stream) -> None:
        """Reopen the stream's window for the body bytes it has taken (read or dropped)."""
        size = stream.unacked
        if size and stream.id in self.streams:
            stream.unacked = 0
            stream.recv_window += size
            self._send(frame_head(4, WINDOW_UPDATE, 0, stream.id) + size.to_bytes(4, "big"))
            self._release_soon()

    def _ack_connection(self) -> None:
        size = self._recv_unacked
        self._recv_unacked = 0
        self._recv_window += size
        self._send(frame_head(4, WINDOW_UPDATE, 0, 0) + size.to_bytes(4, "big"))

    def _ended(self, stream: _Stream) -> None:
        if 0 <= stream.length != stream.received:
            log.info("HTTP/2 stream %d: less DATA than its Content-Length", stream.id)
            self._reset_stream(stream, PROTOCOL_ERROR)
            return
        stream.remote_ended = True
        stream.unacked = 0
        exchange = stream.exchange
        if exchange is not None:
            exchange.body.feed_eof()
        if stream.done:
            self._forget(stream)

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ConnectionFault(FRAME_SIZE_ERROR, "WINDOW_UPDATE of the wrong size")
        increment = _u32(payload, 0)
        if not stream_id:
            if not increment:
                raise ConnectionFault(PROTOCOL_ERROR, "A connection window increment of 0")
            self._send_window += increment
            if self._send_window > MAX_WINDOW:
                raise ConnectionFault(FLOW_CONTROL_ERROR, "The connection's window overflows")
            self._window_opened()
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self._highest:
                raise ConnectionFault(PROTOCOL_ERROR, f"WINDOW_UPDATE on idle {stream_id}")
            return
        if not increment:
            self._reset_stream(stream, PROTOCOL_ERROR)
            return
        stream.send_window += increment
        if stream.send_window > MAX_WINDOW:
            self._reset_stream(stream, FLOW_CONTROL_ERROR)
            return
        if stream.pending:
            self._push_pending(stream)

    def _rst_stream(self, stream_id: int, payload: bytes) -> None:
        if not stream_id:
            raise ConnectionFault(PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if len(payload) != 4:
            raise ConnectionFault(FRAME_SIZE_ERROR, "RST_STREAM of the wrong size")
        if stream_id > self._highest:
            raise ConnectionFault(PROTOCOL_ERROR, f"RST_STREAM on idle stream {stream_id}")
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if not stream.done:
            now = self.loop.time()
            budget = self._resets + (now - self._resets_at) * RESET_RATE
            self._resets = min(budget, RESET_BURST) - 1.0
            self._resets_at = now
            if self._resets < 0:
                raise ConnectionFault(ENHANCE_YOUR_CALM, "Streams reset too fast")
        self._reset_by_client(stream)

    def _settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise ConnectionFault(PROTOCOL_ERROR, "SETTINGS on a stream")
        size = len(payload)
        if flags & ACK:
            if size:
                raise ConnectionFault(FRAME_SIZE_ERROR, "A SETTINGS ACK with a payload")
            return
        if size % 6:
            raise ConnectionFault(FRAME_SIZE_ERROR, "SETTINGS of the wrong size")
        opened = False
        for pos in range(0, size, 6):
            key = (payload[pos] << 8) | payload[pos + 1]
            value = int.from_bytes(payload[pos + 2 : pos + 6], "big")
            if key == INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ConnectionFault(FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE")
                delta = value - self._initial_window
                self._initial_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
                    if stream.send_window > MAX_WINDOW:
                        raise ConnectionFault(FLOW_CONTROL_ERROR, "A stream window overflows")
                opened = opened or delta > 0
            elif key == MAX_FRAME_SIZE:
                if not DEFAULT_FRAME <= value <= MAX_FRAME:
                    raise ConnectionFault(PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE")
                self._max_frame = value
            elif key == ENABLE_PUSH and value > 1:
                raise ConnectionFault(PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH")
            # HEADER_TABLE_SIZE bounds a table our encoder never uses; the others are
            # advisory or unknown (ignored, RFC 9113 6.5.2).
        self._control(_SETTINGS_ACK)
        if opened:
            self._window_opened()

    def _ping(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise ConnectionFault(PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise ConnectionFault(FRAME_SIZE_ERROR, "PING of the wrong size")
        if not flags & ACK:
            self._control(frame_head(8, PING, ACK, 0) + payload)

    def _control(self, frame: bytes) -> None:
        """An answer the protocol requires (PING, SETTINGS): a client that asks for more of
        them than CONTROL_DEBT while the earlier ones are not all on their way is cut off."""
        self._control_debt += 1
        if self._control_debt > CONTROL_DEBT:
            raise ConnectionFault(ENHANCE_YOUR_CALM, "Too many PING or SETTINGS frames")
        self._send(frame)

    def _priority(self, stream_id: int, payload: bytes) -> None:
        if not stream_id:
            raise ConnectionFault(PROTOCOL_ERROR, "PRIORITY on stream 0")
        stream = self.streams.get(stream_id)
        if len(payload) != 5:
            if stream is not None:
                self._reset_stream(stream, FRAME_SIZE_ERROR)
            else:
                self._send(frame_head(4, RST_STREAM, 0, stream_id) + b"\x00\x00\x00\x06")
            return
        if _u32(payload, 0) == stream_id:
            if stream is not None:
                self._reset_stream(stream, PROTOCOL_ERROR)
            else:
                self._send(frame_head(4, RST_STREAM, 0, stream_id) + b"\x00\x00\x00\x01")

    # -- streams that end early -------------------------------------------------------------

    def _reset_by_client(self, stream: _Stream) -> None:
        """RST_STREAM from the client: it wants no more of this stream; its handler is
        cancelled (it sees the cancellation where it waits)."""
        self.streams.pop(stream.id, None)
        self._remember_closed(stream.id, False)
        stream.done = True
        lane = stream.lane
        self._stream_gone(stream, "Stream reset by the client")
        if lane is not None:
            stream.lane = None
            lane.runner.cancel()
        self._after_close()

    def _reset_stream(self, stream: _Stream, code: int) -> None:
        """A stream error of ours (RFC 9113 5.4.2): RST_STREAM, and its handler cancelled."""
        if self.streams.pop(stream.id, None) is None:
            return
        self._remember_closed(stream.id, True)
        self._send(frame_head(4, RST_STREAM, 0, stream.id) + code.to_bytes(4, "big"))
        stream.done = True
        lane = stream.lane
        self._stream_gone(stream, "Stream reset")
        if lane is not None:
            stream.lane = None
            lane.runner.cancel()
        self._after_close()

    def _stream_gone(self, stream: _Stream, why: str) -> None:
        stream.pending = bytearray()
        stream.stalled_since = 0.0
        stream.wake(ConnectionResetError(why))
        exchange = stream.exchange
        if exchange is not None:
            if not exchange.body.is_eof():
                exchange.body.set_exception(RequestPayloadError(why))
            exchange.client_left()
            exchange.stream.transport = None

    def _remember_closed(self, stream_id: int, reset_by_us: bool) -> None:
        closed = self.closed
        closed[stream_id] = reset_by_us
        if len(closed) > CLOSED_REMEMBERED:
            del closed[next(iter(closed))]

    # -- responses (h2exchange.StreamSender) ------------------------------------------------

    def send_head(self, stream_id: int, fields: Fields, end: bool) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.done:
            return
        block = encode_fields(fields)
        flags = END_STREAM if end else 0
        size = len(block)
        limit = self._max_frame
        if size <= limit:
            self._send(frame_head(size, HEADERS, flags | END_HEADERS, stream_id) + block)
        else:
            self._send(frame_head(limit, HEADERS, flags, stream_id) + block[:limit])
            for pos in range(limit, size, limit):
                piece = block[pos : pos + limit]
                last = END_HEADERS if pos + limit >= size else 0
                self._send(frame_head(len(piece), CONTINUATION, last, stream_id) + piece)
        if end:
            self._response_done(stream)
        self._release_soon()

    def send_trailers(self, stream_id: int, fields: Fields) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.done:
            return
        if stream.pending:
            stream.trailers = fields  # (sent once the DATA before them has gone)
        else:
            self.send_head(stream_id, fields, True)

    def send_body(self, stream_id: int, data: bytes, end: bool) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.done:
            return
        if stream.pending:
            stream.pending += data
            stream.pending_end = end
            return
        sent = self._push(stream, data, end)
        if sent < len(data):
            stream.pending = bytearray(data[sent:] if sent else data)
            stream.pending_end = end
            stream.stalled_since = self.loop.time()
        self._release_soon()

    def _push(self, stream: _Stream, data: bytes | bytearray, end: bool) -> int:
        """Send what the windows allow of ``data`` (END_STREAM on its last frame if ``end``
        and it all fits); return how much was sent."""
        stream_id = stream.id
        size = len(data)
        if not size:
            if end:
                self._send(frame_head(0, DATA, END_STREAM, stream_id))
                self._response_done(stream)
            return 0
        window = min(self._send_window, stream.send_window)
        limit = self._max_frame
        sent = 0
        while sent < size and window > 0:
            chunk = min(window, limit, size - sent)
            last = end and sent + chunk == size
            head = frame_head(chunk, DATA, END_STREAM if last else 0, stream_id)
            if chunk == size:
                self._send(head + data)
            else:
                self._send(head)
                self._send(bytes(data[sent : sent + chunk]))
            sent += chunk
            window -= chunk
        self._send_window -= sent
        stream.send_window -= sent
        if sent == size and end:
            self._response_done(stream)
        return sent

    def _push_pending(self, stream: _Stream) -> None:
        pending = stream.pending
        sent = self._push(stream, pending, stream.pending_end)
        if sent == len(pending):
            stream.pending = bytearray()
            stream.stalled_since = 0.0
            trailers = stream.trailers
            if trailers is not None:
                stream.trailers = None
                self.send_head(stream.id, trailers, True)
            if not self.output.write_paused:
                stream.wake()
        elif sent:
            del pending[:sent]
            stream.stalled_since = self.loop.time()
        self._release_soon()

    def _window_opened(self) -> None:
        """WINDOW_UPDATE on the connection (or a larger initial window): send what waited."""
        for stream in list(self.streams.values()):
            if self._send_window <= 0:
                break
            if stream.pending and not stream.done:
                self._push_pending(stream)

    def reset(self, stream_id: int, code: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.done:
            return
        self._send(frame_head(4, RST_STREAM, 0, stream_id) + code.to_bytes(4, "big"))
        self._remember_closed(stream_id, True)
        stream.pending = bytearray()
        stream.stalled_since = 0.0
        stream.wake(ConnectionResetError("Stream reset"))
        stream.done = True
        self._forget(stream)
        self._release_soon()

    async def drain_stream(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            if self.transport is None:
                raise ConnectionResetError("Connection lost")
            return
        if not stream.pending and not self.output.write_paused:
            return
        fut = self.loop.create_future()
        stream.waiters.append(fut)
        await fut

    def _response_done(self, stream: _Stream) -> None:
        """END_STREAM is sent: the stream is over once the request is whole too.

        The rest of a request body nobody reads is acknowledged and dropped as it arrives, as
        on HTTP/1.1, rather than declined with RST_STREAM NO_ERROR (RFC 9113 8.1 allows it):
        clients that are still sending then (httpx, after an early 413) wait forever for a
        window on the reset stream instead of reading the response.
        """
        stream.done = True
        if not stream.remote_ended and stream.watch is CUT:
            # Its body came too slowly and failed: not read on. RST_STREAM NO_ERROR after a
            # complete response asks the client to stop sending (RFC 9113 8.1).
            if self.streams.pop(stream.id, None) is not None:
                self._remember_closed(stream.id, True)
                self._send(frame_head(4, RST_STREAM, 0, stream.id) + NO_ERROR.to_bytes(4, "big"))
                stream.wake()
                self._after_close()
        elif not stream.remote_ended:
            exchange = stream.exchange
            if exchange is not None and not exchange.body.is_eof():
                exchange.body.feed_eof()
            if stream.unacked:  # (the reader had paused it: give that window back too)
                self.acknowledge(stream)
        else:
            self._forget(stream)

    def _forget(self, stream: _Stream) -> None:
        if self.streams.pop(stream.id, None) is not None:
            self._remember_closed(stream.id, False)
        stream.wake()
        self._after_close()

    def _after_close(self) -> None:
        if not self.streams:
            if self._going_away or self._peer_gone:
                self._release()
                self._close(None)
            else:
                self._arm_idle()

    def lane_free(self, lane: _Lane) -> None:
        """A lane's suspended handler is done: the lane serves the next one."""
        if len(self.lanes) < MAX_CONCURRENT_STREAMS:
            self.lanes.append(lane)
        for stream in self.streams.values():
            if stream.lane is lane:
                stream.lane = None
                break

    # -- writing and closing --------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        """Queue bytes: they leave at the end of the read, or of this loop iteration."""
        if self.transport is None or self._closing:
            return
        if not self._gathering:
            self._gathering = True
            self.output.gather()
        self.output.write(frame)

    def _release_soon(self) -> None:
        if not self._reading and self._gathering and self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._release)

    def _release(self) -> None:
        self._flush_handle = None
        if self._gathering:
            self._gathering = False
            self.output.release()

    def _goaway(self, code: int) -> None:
        self._send(
            frame_head(8, GOAWAY, 0, 0) + self._highest.to_bytes(4, "big") + code.to_bytes(4, "big")
        )

    def _fault(self, fault: ConnectionFault) -> None:
        log.info("HTTP/2 connection error from the client: %s", fault)
        self.shared.errors[HTTP2_PROTOCOL] += 1
        if not self._closing and self.transport is not None:
            self._goaway(fault.code)
        self._close(None)

    def _arm_idle(self) -> None:
        if not self.streams and not self._closing:
            self._watching = False
            self.deadline = self.loop.time() + self.limits.keepalive_timeout

    def _close(self, code: int | None) -> None:
        if self._closing:
            return
        transport = self.transport
        if transport is None:
            self._closing = True
            return
        if code is not None and not self._going_away:
            self._goaway(code)
        self._release()
        self._closing = True
        if self.output.half_close(self._peer_done):  # (the client then reads our GOAWAY)
            self._lingering = True
            self.deadline = self.loop.time() + LINGER
