"""H2Protocol: one HTTP/2 connection, on the ``h2`` library's frames, HPACK and flow control.

A connection comes here from :class:`~.protocol.HttpProtocol` once it has opened with the
HTTP/2 preface (cleartext, "prior knowledge") or negotiated ``h2`` by ALPN (TLS): see
:mod:`.preface`. Each request stream becomes an :class:`~.h2exchange.H2Exchange` handed to the
same handler an HTTP/1.1 request goes to, so the web and ASGI layers serve both alike.

Handlers run as on HTTP/1.1 (http/running.py): stepped eagerly in ``data_received``, and one
that suspends is carried on by a worker task. Streams are concurrent, so the connection keeps
a pool of :class:`~.running.Runner` "lanes", one per handler suspended at once: a handler that
finishes without suspending (the common case) costs no Task, and a lane's worker is reused
for the next suspended handler.

Flow control, both ways: a request body is acknowledged (WINDOW_UPDATE) as it is buffered,
until the stream's reader holds more than its high-water mark; then only as the handler reads
it. A response body is sent as far as the peer's windows allow; the rest waits for
WINDOW_UPDATE, and the handler waits with it in ``drain()``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame

from .errors import RequestPayloadError
from .flow import ReadFlow
from .h2exchange import Fields, H2Exchange, StreamOutput
from .output import Output
from .running import BUSY, Runner
from .streams import EMPTY_PAYLOAD, StreamReader

if TYPE_CHECKING:
    from .connection import UpgradeSink
    from .limits import Limits
    from .shared import Shared

__all__ = ("H2Protocol",)

log = logging.getLogger("squall.server")

MAX_CONCURRENT_STREAMS: Final = 100
STREAM_HIGH_WATER: Final = 65536
"""Request-body bytes a stream buffers unread before its window stops being reopened: with the
initial window (64 KiB), what one stream may hold; 100 streams, ~13 MiB at worst."""
REFUSED_STREAM: Final = 0x7
CONNECTION_WINDOW: Final = 1 << 20
"""The connection-level receive window: room for many streams' uploads at once."""

_METHODS: Final = {
    m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
}


class _Stream:
    """One open stream: its exchange, the lane running its handler, its unsent DATA, and the
    request body's flow control (it is the body's ``FlowControl``)."""

    __slots__ = (
        "conn",
        "done",
        "exchange",
        "id",
        "lane",
        "paused",
        "pending",
        "pending_end",
        "remote_ended",
        "unacked",
        "waiters",
    )

    def __init__(self, conn: H2Protocol, stream_id: int) -> None:
        self.conn = conn
        self.id = stream_id
        self.exchange: H2Exchange | None = None
        self.lane: _Lane | None = None  # while its handler is suspended
        self.paused = False  # the body's reader is full: its window is not reopened
        self.unacked = 0  # received body bytes not acknowledged yet (while paused)
        self.pending = bytearray()  # DATA waiting for the peer's window
        self.pending_end = False  # ... and END_STREAM after it
        self.waiters: list[asyncio.Future[None]] = []  # drain_stream() callers
        self.remote_ended = False  # the request is whole (END_STREAM received)
        self.done = False  # the response is complete (END_STREAM or RST_STREAM sent)

    def pause_reading_body(self) -> None:
        self.paused = True

    def resume_reading_body(self) -> None:
        self.paused = False
        if self.unacked:
            unacked, self.unacked = self.unacked, 0
            self.conn.acknowledge(self.id, unacked)

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
        limits = self.limits
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            # Our exchange makes response heads valid already (lower-case names, no
            # connection-specific fields): h2's own pass over them would be a second one.
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(config)
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_head_size,
            },
        )
        self.h2.decoder.max_header_list_size = limits.max_head_size
        self.streams: dict[int, _Stream] = {}
        self.lanes: list[_Lane] = []  # idle ones
        self.transport: asyncio.Transport | None = None
        self.peername: Any = peername  # (the HTTP/1.1 connection's: a PROXY header may set it)
        self.sockname: Any = None
        self.deadline = 0.0
        self._admitted = admitted
        self._reading = False  # inside data_received: writes are gathered and flushed after
        self._flush_handle: asyncio.Handle | None = None
        self._closing = False
        self._going_away = False
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
        return bool(self.output.stall_since)

    def on_timeout(self, now: float) -> None:
        self.deadline = 0.0
        if not self.streams:
            self._close(h2.errors.ErrorCodes.NO_ERROR)

    def on_write_stall(self, now: float) -> None:
        stalled = self.output.stalled_for(now)
        if stalled >= self.limits.send_timeout and self.transport is not None:
            log.info("Client read nothing for %.0f s: connection dropped", stalled)
            self.output.stall_since = 0.0
            self.transport.abort()

    def shutdown(self) -> None:
        """Server shutdown: GOAWAY (no new streams), close once the open ones are answered."""
        if self._going_away or self.transport is None:
            return
        self._going_away = True
        # The GOAWAY frame is made here, not by h2's close_connection(): that closes h2's
        # state machine, which then refuses the responses of the streams still in flight.
        self._last_stream = self.h2.highest_inbound_stream_id
        self._flush()
        goaway = hyperframe.frame.GoAwayFrame(0, last_stream_id=self._last_stream, error_code=0)
        self.output.write(goaway.serialize())
        if not self.streams:
            self._close(None)

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

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.output.transport = transport  # type: ignore[assignment]
        if self.peername is None:
            self.peername = transport.get_extra_info("peername")
        self.sockname = transport.get_extra_info("sockname")
        self.shared.connections.add(self)
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self._flush()
        self._arm_idle()
        if self.shared.closing:
            self.shutdown()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closing = True
        self.transport = None
        shared = self.shared
        shared.connections.discard(self)
        if self._admitted:
            self._admitted = False
            shared.admitted -= 1
        self.output.connection_lost()
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
        self._reading = True
        try:
            try:
                events = self.h2.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                log.info("HTTP/2 protocol error from the client: %s", exc)
                self._flush()
                self._close(None)
                return
            for event in events:
                kind = type(event)
                if kind is h2.events.RequestReceived:
                    self._request(event)  # type: ignore[arg-type]
                elif kind is h2.events.DataReceived:
                    self._data(event)  # type: ignore[arg-type]
                elif kind is h2.events.StreamEnded:
                    self._ended(event.stream_id)  # type: ignore[attr-defined]
                elif kind is h2.events.StreamReset:
                    self._reset_by_client(event.stream_id)  # type: ignore[attr-defined]
                elif kind is h2.events.WindowUpdated or kind is h2.events.RemoteSettingsChanged:
                    self._window_opened()
                elif kind is h2.events.ConnectionTerminated:
                    self._close(None)
                    return
        finally:
            self._reading = False
            self._flush()

    # -- requests -------------------------------------------------------------------------

    def _request(self, event: h2.events.RequestReceived) -> None:
        stream_id: int = event.stream_id
        stream = _Stream(self, stream_id)
        method = b""
        path = b""
        authority = b""
        headers: list[tuple[bytes, bytes]] = []
        cookies: list[bytes] = []
        host = False
        for name, value in event.headers or ():
            name = bytes(name)
            value = bytes(value)
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
                continue
            if name == b"cookie":  # split into crumbs by HTTP/2 (RFC 9113 8.2.3): one field
                cookies.append(value)
                continue
            if name == b"host":
                host = True
            headers.append((name, value))
        if cookies:
            headers.append((b"cookie", b"; ".join(cookies)))
        if authority and not host:  # Host from :authority, first as a browser would send it
            headers.insert(0, (b"host", authority))
        ended = event.stream_ended is not None
        limits = self.limits
        if ended:
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
            path or b"*",
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
        self.deadline = 0.0
        if self._going_away and stream_id > self._last_stream:
            self.reset(stream_id, REFUSED_STREAM)  # after our GOAWAY: safe to retry elsewhere
            return
        if method == b"CONNECT":
            exchange.respond_error(501, "CONNECT is not supported")
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

    def _admit(self) -> bool:
        if self._admitted:
            return True
        shared = self.shared
        if shared.admitted >= self.limits.max_connections:
            return False
        shared.admitted += 1
        self._admitted = True
        return True

    def _data(self, event: h2.events.DataReceived) -> None:
        stream_id: int = event.stream_id
        size: int = event.flow_controlled_length
        stream = self.streams.get(stream_id)
        exchange = stream.exchange if stream is not None else None
        if stream is None or exchange is None or stream.done:
            self.acknowledge(stream_id, size)  # not wanted: give the window back
            return
        exchange.body.feed_data(event.data or b"")
        if stream.paused:
            stream.unacked += size
        else:
            self.acknowledge(stream_id, size)

    def acknowledge(self, stream_id: int, size: int) -> None:
        """Reopen the windows for ``size`` bytes of a stream's body (now read or dropped)."""
        if size:
            self.h2.acknowledge_received_data(size, stream_id)
            if not self._reading:
                self._flush_soon()

    def _ended(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        stream.remote_ended = True
        exchange = stream.exchange
        if exchange is not None:
            exchange.body.feed_eof()
        if stream.done:
            self._forget(stream)

    def _reset_by_client(self, stream_id: int) -> None:
        """RST_STREAM from the client: it wants no more of this stream; its handler is
        cancelled (it sees the cancellation where it waits)."""
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        stream.done = True
        lane = stream.lane
        self._stream_gone(stream, "Stream reset by the client")
        if lane is not None:
            stream.lane = None
            lane.runner.cancel()
        self._arm_idle()

    def _stream_gone(self, stream: _Stream, why: str) -> None:
        stream.pending = bytearray()
        stream.wake(ConnectionResetError(why))
        exchange = stream.exchange
        if exchange is not None:
            if not exchange.body.is_eof():
                exchange.body.set_exception(RequestPayloadError(why))
            exchange.client_left()
            exchange.stream.transport = None

    # -- responses (h2exchange.StreamSender) ------------------------------------------------

    def send_head(self, stream_id: int, fields: Fields, end: bool) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.done:
            return
        try:
            self.h2.send_headers(stream_id, fields, end_stream=end)
        except h2.exceptions.ProtocolError:  # the stream or the whole connection is gone
            self._reset_by_client(stream_id)
            return
        if end:
            self._response_done(stream)
        elif not self._reading:
            self._flush_soon()

    def send_body(self, stream_id: int, data: bytes, end: bool) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.done:
            return
        if stream.pending:
            stream.pending += data
            stream.pending_end = end
            return
        rest = self._push(stream, data, end)
        if rest:
            stream.pending = bytearray(rest)
            stream.pending_end = end
        if not self._reading:
            self._flush_soon()

    def _push(self, stream: _Stream, data: bytes | bytearray, end: bool) -> bytes | bytearray:
        """Send what the windows allow of ``data`` (END_STREAM on its last frame if ``end``
        and it all fits); return the rest."""
        conn = self.h2
        stream_id = stream.id
        try:
            if not data:
                if end:
                    conn.end_stream(stream_id)
                    self._response_done(stream)
                return b""
            window = conn.local_flow_control_window(stream_id)
            frame = conn.max_outbound_frame_size
            view = memoryview(data)
            size = len(data)
            sent = 0
            while sent < size and window > 0:
                chunk = min(window, frame, size - sent)
                last = end and sent + chunk == size
                conn.send_data(stream_id, view[sent : sent + chunk], end_stream=last)
                sent += chunk
                window -= chunk
        except h2.exceptions.ProtocolError:  # the stream or the whole connection is gone
            self._reset_by_client(stream_id)
            return b""
        if sent == size:
            if end:
                self._response_done(stream)
            return b""
        return data[sent:] if sent else data

    def _window_opened(self) -> None:
        """WINDOW_UPDATE (or new SETTINGS): send what waited for it."""
        for stream in list(self.streams.values()):
            if stream.pending and not stream.done:
                rest = self._push(stream, bytes(stream.pending), stream.pending_end)
                stream.pending = bytearray(rest)
                if not rest and not self.output.write_paused:
                    stream.wake()

    def reset(self, stream_id: int, code: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.done:
            return
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:  # the stream or the whole connection is gone
            pass
        stream.pending = bytearray()
        stream.wake(ConnectionResetError("Stream reset"))
        stream.done = True
        self._forget(stream)
        if not self._reading:
            self._flush_soon()

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
        exchange = stream.exchange
        if not stream.remote_ended:
            if exchange is not None and not exchange.body.is_eof():
                exchange.body.feed_eof()
            if stream.unacked:  # (the reader had paused it: give that window back too)
                unacked, stream.unacked = stream.unacked, 0
                self.acknowledge(stream.id, unacked)
        else:
            self._forget(stream)
        if not self._reading:
            self._flush_soon()

    def _forget(self, stream: _Stream) -> None:
        self.streams.pop(stream.id, None)
        stream.wake()
        if not self.streams:
            if self._going_away:
                self._flush()
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

    def _flush_soon(self) -> None:
        """Frames made outside a read go out at the end of this loop iteration: those of
        many streams answered together leave in one write."""
        if self._flush_handle is None and self.transport is not None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        data = self.h2.data_to_send()
        if data and self.transport is not None:
            self.output.write(data)

    def _arm_idle(self) -> None:
        if not self.streams and not self._closing:
            self.deadline = self.loop.time() + self.limits.keepalive_timeout

    def _close(self, code: h2.errors.ErrorCodes | None) -> None:
        if self._closing:
            return
        self._closing = True
        transport = self.transport
        if transport is None:
            return
        if code is not None and not self._going_away:
            try:
                self.h2.close_connection(error_code=code)
            except h2.exceptions.ProtocolError:
                pass
            self._flush()
        transport.close()
