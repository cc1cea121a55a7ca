"""HttpProtocol: one HTTP/1.x connection, an asyncio Protocol driving the httptools parser.

It owns what is the connection's own: the transport, the parser and the request head being
collected (the parser calls back into it: ``on_url``, ``on_header``...), the deadlines, and
closing. The rest are objects it holds, each owning its state:

- :class:`~.exchange.Exchange`, one per request: the request head and the framing of its
  response;
- :class:`~.running.Runner`: the handlers, run eagerly one request at a time, in order;
- :class:`~.output.Output`: every byte written, gathered per read;
- :class:`~.flow.ReadFlow`: whether the socket is read, and why not;
- :mod:`~.head`: the checks of a request head, as plain functions.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

import httptools

from .connection import UpgradeSink
from .errors import BadRequest, RequestPayloadError, classify_parse_error, failing_request
from .exchange import Exchange, error_response
from .flow import NO_MORE, ReadFlow
from .head import (
    EXPECTS_CONTINUE,
    FRAMED_BODY,
    UPGRADE_FIELD,
    check_fields,
    check_request_line,
    not_http,
)
from .limits import LINGER, TICK
from .output import Output
from .preface import negotiate
from .proxy_protocol import HeaderReader, expects_header
from .running import IDLE, Runner
from .stats import BAD_REQUEST, BODY_TIMEOUT, HEADER_TIMEOUT, SEND_TIMEOUT, TOO_LARGE
from .streams import EMPTY_PAYLOAD, BodyWatch, StreamReader

if TYPE_CHECKING:
    from .limits import Limits
    from .shared import Shared

__all__ = ("HttpProtocol", "UpgradeSink")

log = logging.getLogger("squall.server")

# Keep these here, not imported: CPython compiles ``name.method()`` on an imported name as an
# attribute load and a call, binding a method object each time (measurable per request).
_METHODS: Final = {
    m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
}


class HttpProtocol(asyncio.Protocol):
    """One HTTP/1.x connection."""

    __slots__ = (
        "_admitted",
        "_body_in_read",
        "_body_watch",
        "_closing",
        "_completed",
        "_connection_field",
        "_cur",
        "_data",
        "_discarding",
        "_flow",
        "_good_host",
        "_head_bytes",
        "_head_size",
        "_headers",
        "_in_head",
        "_lingering",
        "_output",
        "_parser",
        "_peer_done",
        "_pending_error",
        "_runner",
        "_shared",
        "_sink",
        "_transport",
        "_upgrade_body",
        "_upgrade_req",
        "_upgrade_stopped",
        "_upgrade_tail",
        "_url",
        "deadline",
        "limits",
        "loop",
        "peername",
        "sockname",
    )

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self.loop = shared.loop
        self.limits: Limits = shared.limits
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._output = Output(shared.loop)
        self._flow = ReadFlow()
        self._runner = Runner(shared, self, self, self._output, self._flow)
        # The request head being collected.
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._in_head = False
        self._head_bytes = 0  # bytes of reads spent on an unfinished head (or trailers)
        self._body_in_read = False  # on_body saw body bytes in the read being parsed
        self._head_size = 0  # the head's fields' size, trailers counted on top
        self._connection_field = False
        self._good_host = b""  # the last Host value found well-formed
        self._data = b""  # the read being parsed
        self._completed = 0  # requests parsed whole
        self._cur: Exchange | None = None  # the request whose body is arriving
        self._discarding = False  # its body is dropped as it arrives (its handler is done)
        self._body_watch: BodyWatch | None = None  # made for the first body, then reused
        self._pending_error: BadRequest | None = None  # to answer once the responses owed are
        self._closing = False
        self._lingering = False
        self._peer_done = False  # the client closed its side (EOF): nothing more will come
        self.deadline = 0.0  # when the tick acts on this connection (0.0: never)
        self._sink: UpgradeSink | None = None
        # An upgrade request: llhttp stops after it; what follows waits in _upgrade_tail until its
        # handler switches protocols or declines (then it is parsed as HTTP/1.1 again).
        self._upgrade_req: Exchange | None = None
        self._upgrade_stopped = False  # the parser has stopped at its end
        self._upgrade_body: UpgradeBody | None = None  # its body, while still arriving
        self._upgrade_tail = b""
        self._admitted = False
        self.peername: Any = None
        self.sockname: Any = None

    # -- what the application layers use (http/connection.py) ----------------------------------

    @property
    def transport(self) -> asyncio.Transport | None:
        """None once the client has closed its side or the connection is lost, as aiohttp's
        protocol, which closes at the client's EOF: plugins test ``request.protocol.transport``
        to see a client that left (squall keeps the write side open for answers owed)."""
        return None if self._peer_done else self._transport

    def lost(self) -> asyncio.Future[None]:
        """A future (shared: never cancel it) that completes when the connection is lost."""
        return self._output.lost()

    def write(self, data: bytes) -> None:
        """Write bytes of an upgraded protocol; raises ConnectionResetError once the client
        has gone. (HTTP responses are written by their exchange.)"""
        self._output.write(data)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        await self._output.drain()

    def run_parked(self, parked: asyncio.Future[None]) -> bool:
        """Run the upgraded protocol's handler on in place if it waits on ``parked``
        (``Runner.run_parked()``); False if it does not."""
        return self._runner.run_parked(parked)

    @property
    def write_paused(self) -> bool:
        """Whether the transport's write buffer is over its high-water mark."""
        return self._output.write_paused

    def pause_reading_body(self) -> None:
        self._flow.pause_reading_body()

    def resume_reading_body(self) -> None:
        self._flow.resume_reading_body()

    @property
    def busy(self) -> bool:
        """Whether a request is being answered or waits to be."""
        return self._runner.busy

    @property
    def queued(self) -> int:
        """How many requests wait behind the one being answered."""
        return len(self._runner.pipeline)

    @property
    def worker(self) -> asyncio.Task[None] | None:
        """The task running this connection's suspended handlers, if there is one."""
        return self._runner.worker

    @property
    def stalled(self) -> bool:
        """Whether the client has left the write buffer full (the tick watches it then)."""
        return bool(self._output.stall_since)

    @property
    def upgraded(self) -> bool:
        """Whether the connection switched protocols (a WebSocket: :meth:`upgrade`)."""
        return self._parser is None

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses
        self._output.transport = transport  # type: ignore[assignment]
        self._flow.transport = transport  # type: ignore[assignment]
        self.peername = transport.get_extra_info("peername")
        self.sockname = transport.get_extra_info("sockname")
        self.deadline = self.loop.time() + self.limits.header_timeout
        shared = self._shared
        shared.connections.add(self)
        if self.limits.max_connections and not self._admit():
            self._runner.handler = self._unavailable
        if shared.closing:
            self._close()
        elif shared.proxy_protocol is not None and expects_header(
            shared.proxy_protocol, self.peername
        ):
            self._sink = HeaderReader(self)  # then proxied() (proxy_protocol.py)
        elif shared.http2:
            negotiate(self, transport)  # ALPN, or a sniff of the first bytes (preface.py)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closing = True
        self._runner.stopped = True
        shared = self._shared
        if shared.count_bytes:  # (metrics on; the socket is still open here)
            shared.closed(self._transport)
        self._transport = None
        self._flow.transport = None
        shared.connections.discard(self)
        if self._admitted:
            self._admitted = False
            shared.admitted -= 1
        self._output.connection_lost()
        if self._sink is not None:
            self._sink.connection_lost(exc)
        runner = self._runner
        active = runner.active
        for req in (active, self._cur, *runner.drop_queued()):
            if req is not None:
                if not req.body.is_eof():
                    req.body.set_exception(RequestPayloadError("Connection lost"))
                req.client_left()
        self._cur = None
        if runner.worker is not None and (active is None or shared.handler_cancellation):
            runner.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closing:  # (lingering implies closing)
            return
        if self._sink is not None:  # upgraded: the bytes are the other protocol's
            self._sink.data_received(data)
            return
        continuing = self._in_head
        cur = self._cur
        mid_message = continuing or cur is not None
        completed = self._completed
        self._data = data
        output = self._output
        output.gather()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._on_upgrade(data[exc.args[0] :] if exc.args else b"")
        except httptools.HttpParserCallbackError as exc:
            err = exc.__context__
            if isinstance(err, BadRequest):
                self._refuse(err)
            elif isinstance(err, (KeyboardInterrupt, SystemExit)):
                raise err from None
            else:  # a bug of ours in a callback: never let it reach the loop
                log.error("Error while parsing a request", exc_info=err)
                self._refuse(BadRequest(400, "Malformed request"))
        except httptools.HttpParserError as exc:
            message = str(exc)
            if message.startswith("Data after"):
                # Bytes after a request that closes the connection: answer it, read no more.
                self._flow.pause(NO_MORE)
                if not self._runner.busy:
                    self._close()
            else:
                start = b"" if mid_message else failing_request(data, self._completed - completed)
                self._refuse(classify_parse_error(exc, start))
        else:
            if self._in_head:
                if continuing and self._completed == completed:
                    # The whole read went into a head begun earlier and still unfinished:
                    # httptools buffers a field until its end, so bound a head that spans many
                    # reads. (Only such reads count: one that ends a head may carry many
                    # pipelined requests.)
                    self._head_bytes += len(data)
                    if self._head_bytes > self.limits.max_head_size:
                        self._refuse(BadRequest(431, "Request header fields too large"))
                if not self.deadline and not self._closing:
                    self.deadline = self.loop.time() + self.limits.header_timeout
            elif cur is not None and self._cur is cur:  # a body message still arriving
                if self._body_in_read:
                    self._body_in_read = False
                    self._head_bytes = 0
                else:
                    # Chunk framing and trailer fields only: httptools buffers a trailer field
                    # whole, so these are bounded like a head that spans reads.
                    self._head_bytes += len(data)
                    if self._head_bytes > self.limits.max_head_size:
                        self._refuse(BadRequest(431, "Request trailer fields too large"))
        finally:
            self._data = b""
            output.release()  # what the handlers answered during this read: one write

    def eof_received(self) -> bool | None:
        sink = self._sink
        if sink is not None:
            sink.eof_received()
            if self._sink is not None:  # (a sniffer or an upgrade's body gives it back)
                return True  # the write side stays open for the other protocol's goodbye
        self._peer_done = True
        cur = self._cur
        if cur is not None and not cur.body.is_eof():
            cur.body.set_exception(RequestPayloadError("Request body cut short"))
        runner = self._runner
        if not runner.busy:
            return None  # nothing owed: let the transport close
        # The client has left (or only half-closed): its requests in flight learn it now;
        # what they still answer whole is written (the write side stays open, as a half-close
        # allows), then the connection closes. With handler_cancellation, the handler is
        # cancelled.
        active = runner.active
        if active is not None:
            active.client_left()
        for req in runner.pipeline:
            req.client_left()
        if self._shared.handler_cancellation:
            runner.cancel()
        return True

    def pause_writing(self) -> None:
        self._output.pause_writing()

    def resume_writing(self) -> None:
        self._output.resume_writing()
        runner = self._runner
        if runner.held_back and not self._closing:
            # Requests held back while the client was not reading its answers: go on.
            self._ran(runner.resume())

    # -- the parser's callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        if self._headers:  # a previous request's trailers
            self._headers = []
        self._in_head = True
        self._head_bytes = 0
        self._body_in_read = False
        self._head_size = 0
        self._connection_field = False
        # Most heads end in the read that began them: the header deadline is armed only when
        # one does not (at the end of data_received), which saves a clock read per request.
        self.deadline = 0.0

    def on_url(self, url: bytes) -> None:
        url = self._url + url if self._url else url
        if len(url) > self.limits.max_line_size:
            raise BadRequest(414, "Request target too long")
        self._url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called once per field (browsers send 10-20): the sizes of the head's fields are
        # checked in one pass in on_headers_complete; the count here bounds the list in memory.
        if value and value[-1] in (32, 9):  # llhttp keeps trailing whitespace
            value = value.rstrip(b" \t")
        headers = self._headers
        if len(headers) >= self.limits.max_headers:
            raise BadRequest(431, "Too many request header fields")
        if len(name) == 10 and name[0] | 0x20 == 99:  # C...: perhaps Connection
            self._connection_field = True  # (see on_headers_complete)
        if not self._in_head:  # a trailer field: no on_headers_complete will check it
            self._check_trailer_size(len(name) + len(value) + 4)
        headers.append((name, value))

    def _check_trailer_size(self, size: int) -> None:
        """One trailer field of ``size`` bytes (with ": " and CRLF) more: within the limits?"""
        limits = self.limits
        if size - 4 > limits.max_field_size:
            raise BadRequest(431, "Request header field too large")
        total = self._head_size = self._head_size + size
        if total > limits.max_head_size:
            raise BadRequest(431, "Request header fields too large")

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._in_head = False
        self.deadline = 0.0
        keep_alive = parser.should_keep_alive()
        # get_http_version() formats a new string each time: llhttp takes only 0.9, 1.0, 1.1
        # and 2.0, and keeps any but 1.1 alive only for a Connection field. So without one, a
        # kept-alive request is 1.1.
        version = "1.1" if keep_alive and not self._connection_field else parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise BadRequest(505, "HTTP version not supported")
        url = self._url
        if version == "1.0" and not_http(self._data, url):
            raise BadRequest(400, "Not an HTTP request")
        headers = self._headers
        self._headers = []  # trailers of a chunked body land there, never in the request
        method = parser.get_method()
        limits = self.limits
        check_request_line(method, url, limits)
        found, self._head_size, self._good_host = check_fields(
            headers, version, limits, self._good_host
        )
        if found & FRAMED_BODY:  # body framing does not depend on the method
            body: StreamReader = StreamReader(self._flow, limits.read_high_water)
            # While it arrives, the tick watches it (a handler starved of bytes, a slow body).
            watch = self._body_watch
            if watch is None:
                watch = self._body_watch = BodyWatch()
            now = self.deadline = self.loop.time()
            watch.begin(now)
        else:
            body = EMPTY_PAYLOAD
        # llhttp's upgrade needs CONNECT or an Upgrade field
        upgrade = (method == b"CONNECT" or found & UPGRADE_FIELD != 0) and parser.should_upgrade()
        req = Exchange(
            "GET" if method == b"GET" else _METHODS.get(method) or method.decode("ascii"),
            url,
            version,
            headers,
            keep_alive and not self._shared.closing,
            upgrade,
            # (the application's expect handler runs whenever the client expects 100, as in
            # aiohttp; a 100 Continue is sent only for a body, when it is first read)
            version == "1.1" and found & EXPECTS_CONTINUE != 0,
            body,
            self._output,
        )
        if req.expect_continue and body is not EMPTY_PAYLOAD:
            body.set_continue(req.send_continue)
        if upgrade:
            self._upgrade_req = req
        self._cur = req
        if body is not EMPTY_PAYLOAD and not self._closing:
            # Bodies stream to the handler: start it now, before the body has arrived.
            self._ran(self._runner.dispatch(req))

    def on_body(self, body: bytes) -> None:
        self._body_in_read = True  # progress: data_received restarts its count of non-body bytes
        cur = self._cur
        if cur is not None and not self._discarding:
            cur.body.feed_data(body)

    def on_message_complete(self) -> None:
        self._completed += 1
        req = self._cur
        if req is None:
            return
        self._cur = None
        if req.body is EMPTY_PAYLOAD:
            runner = self._runner
            if self._closing:
                return
            if runner.active is None and not runner.pipeline and not self._output.write_paused:
                result = runner.start(req)  # the common case, without dispatch()'s detour
            else:
                result = runner.dispatch(req)
            if result == IDLE:
                if self._pending_error is None and not self._in_head:  # idle()'s common case
                    # (from the tick's clock: the deadline is checked at ticks anyway, and a
                    # clock read per request is measurable)
                    self.deadline = self._shared.now + self.limits.keepalive_timeout + TICK
                else:
                    self.idle()
        elif req is not self._upgrade_req:  # (an upgrade's body comes after llhttp stopped)
            req.body.feed_eof()
            if self._discarding:
                self._discarding = False
                if not self._runner.busy:
                    self.deadline = self.loop.time() + self.limits.keepalive_timeout

    # -- the runner's host (running.py) ---------------------------------------------------

    def _ran(self, result: int) -> None:
        """What the runner left: every request answered (IDLE) arms the idle deadline."""
        if result == IDLE:
            self.idle()

    def finished(self, req: Exchange) -> bool:
        """The response to ``req`` is complete; True if the connection stays open."""
        if self._closing:
            return False
        if req is self._upgrade_req and self._upgrade_stopped and self._upgrade_body is None:
            return self._upgrade_answered(req)
        if not req.keep_alive:
            self._close()
            return False
        body = req.body
        if body is EMPTY_PAYLOAD:
            return True
        if not body.is_eof():
            if body.take_continue():
                # The client is waiting for 100 Continue that will never come: don't read on.
                self._close()
                return False
            # The handler did not read the whole body: drop the rest as it arrives.
            self._discarding = True
            body.feed_eof()
        if body.drop_unread():  # this body stopped the socket: nobody will read it now
            self._flow.resume_reading_body()
        return True

    def idle(self) -> None:
        """Every request is answered: a pending refusal goes out now, else the idle deadline."""
        if self._pending_error is not None:
            self._answer_error(self._pending_error)
        elif not self._in_head:  # a head in progress keeps its own (header) deadline
            # Idle keep-alive, or still dropping an unread body: either way, bounded.
            self.deadline = self.loop.time() + self.limits.keepalive_timeout

    def handler_cancelled(self) -> None:
        self._close()

    # -- the connection limit -------------------------------------------------------------

    def _admit(self) -> bool:
        """Count this connection against max_connections if there is room."""
        shared = self._shared
        if shared.admitted >= self.limits.max_connections:
            return False
        shared.admitted += 1
        self._admitted = True
        self._runner.handler = shared.handler
        return True

    async def _unavailable(self, req: Exchange, conn: HttpProtocol) -> None:
        """The handler of a connection accepted past max_connections."""
        if self._admit():  # another connection closed meanwhile: serve this one after all
            await self._shared.handler(req, conn)
            return
        log.warning("Exceeded the connection limit (%d): 503", self.limits.max_connections)
        req.respond_error(503, "Too many connections")

    # -- refusing, timeouts, closing ------------------------------------------------------

    def _refuse(self, err: BadRequest) -> None:
        """Stop reading; answer ``err`` once the responses already owed are sent."""
        cur = self._cur
        if self._closing:
            # Already closing (the rest of a read parsed after the answer that closed it):
            # nothing more may be written; the bytes are dropped.
            if cur is not None and not cur.body.is_eof():
                cur.body.set_exception(RequestPayloadError(err.detail, err.status))
            return
        status = err.status
        if status != 408:  # (a timeout is counted where it is found)
            kind = TOO_LARGE if status in (413, 414, 431) else BAD_REQUEST
            self._shared.errors[kind] += 1
        self._flow.pause(NO_MORE)
        self._cur = None
        if cur is not None and cur.body is not EMPTY_PAYLOAD:
            # The head was fine and its handler is running or queued: its body is what broke.
            cur.body.set_exception(RequestPayloadError(err.detail, err.status))
            cur.keep_alive = False
            self._discarding = False
            if not self._runner.busy:
                self._close()  # its response is already out: nothing more can be framed
            return
        if not self._runner.busy:
            self._answer_error(err)
        else:
            self._pending_error = err

    def _answer_error(self, err: BadRequest) -> None:
        self._pending_error = None
        if self._transport is not None:
            self._output.write(error_response(err.status, err.detail))
        self._close()

    def close(self) -> None:
        """Close the connection gracefully (used once an upgraded protocol is done)."""
        self._close()

    def on_timeout(self, now: float) -> None:
        """Called by the server's tick once ``deadline`` has passed."""
        self.deadline = 0.0
        transport = self._transport
        if transport is None:
            return
        if self._lingering:
            transport.close()
        elif self._in_head:  # answered after any response still owed, in order
            self._shared.errors[HEADER_TIMEOUT] += 1
            self._refuse(BadRequest(408, "Request head not received in time"))
        elif self._cur is not None and not self._discarding:
            self._watch_body(self._cur.body, now)
        elif self._runner.active is None:
            self._close()

    def on_write_stall(self, now: float) -> None:
        """Called by the server's tick while the write buffer is full: a client that reads
        none of it for ``send_timeout`` is dropped (its handler sees ConnectionResetError)."""
        stalled = self._output.stalled_for(now)
        if stalled >= self.limits.send_timeout and self._transport is not None:
            log.info("Client read nothing for %.0f s: connection dropped", stalled)
            self._shared.errors[SEND_TIMEOUT] += 1
            self._output.stall_since = 0.0
            self._transport.abort()

    def _watch_body(self, body: StreamReader, now: float) -> None:
        """A body is arriving: fail it once it is too slow (BodyWatch), else look again."""
        watch = self._body_watch
        assert watch is not None  # (made with the body)
        why = watch.verdict(self.limits, body, now, self._flow.paused != 0)
        if why:
            self._shared.errors[BODY_TIMEOUT] += 1
            self._refuse(BadRequest(408, why))
            return
        self.deadline = now + 0.5  # look again at the next tick

    def _close(self) -> None:
        """Close gracefully: stop reading new requests, half-close, then linger briefly."""
        if self._closing:
            return
        self._closing = True
        self._runner.stopped = True
        for req in self._runner.drop_queued():  # requests behind a closing response: unanswered
            if not req.body.is_eof():
                req.body.set_exception(RequestPayloadError("Connection closing"))
        transport = self._transport
        if transport is None:
            return
        self._output.flush()
        if self._output.half_close(self._peer_done):
            self._lingering = True
            self.deadline = self.loop.time() + LINGER
            self._flow.resume_all()

    def shutdown(self) -> None:
        """Server shutdown: close now if idle, else after the responses in flight."""
        runner = self._runner
        for req in (runner.active, *runner.pipeline):
            if req is not None:
                req.keep_alive = False
        if not runner.busy:
            self._close()

    def going_away(self) -> None:
        """Server shutdown, after the application's on_shutdown: an upgraded connection (a
        WebSocket) is told so, so that its handler can finish instead of being cancelled."""
        if self._sink is not None and not self._closing:
            self._sink.going_away()

    def abort(self) -> None:
        self._runner.cancel()
        if self._transport is not None:
            self._transport.abort()

    # -- switching protocols --------------------------------------------------------------

    @property
    def shared(self) -> Shared:
        """What this server's connections share (for the protocol that may take this one's
        place: preface.py)."""
        return self._shared

    def sniff(self, sniffer: UpgradeSink) -> None:
        """Let ``sniffer`` take the first bytes: it decides which HTTP they are (preface.py),
        and gives them back with :meth:`speak_http1` or to :meth:`hand_over`."""
        self._sink = sniffer

    def proxied(self, client: tuple[str, int] | None, data: bytes) -> None:
        """The PROXY protocol header is read: ``client`` (None: keep the socket's) is this
        connection's peer from now on, and ``data``, the bytes after the header, are its first."""
        self._sink = None
        if client is not None:
            self.peername = client
        transport = self._transport
        if self._shared.http2 and transport is not None:
            negotiate(self, transport)
        if data:
            self.data_received(data)

    def drop(self) -> None:
        """Close at once, answering nothing (a broken PROXY protocol header)."""
        self._sink = None
        self._closing = True
        self._runner.stopped = True
        self.deadline = 0.0
        if self._transport is not None:
            self._transport.close()

    def speak_http1(self, data: bytes) -> None:
        """The connection speaks HTTP/1.x: parse ``data`` (the bytes the sniffer held), and
        everything after it, here."""
        self._sink = None
        if data:
            self.data_received(data)

    def hand_over(self, protocol: asyncio.Protocol, data: bytes) -> None:
        """Give the connection to ``protocol`` (HTTP/2): it takes the transport, this one's
        place among the server's connections, and ``data``, the bytes read so far."""
        transport = self._transport
        if transport is None:
            return
        shared = self._shared
        shared.connections.discard(self)
        if self._admitted:  # (the new protocol counts itself)
            self._admitted = False
            shared.admitted -= 1
        self._closing = True
        self._runner.stopped = True
        self._sink = None
        self.deadline = 0.0
        self._transport = self._output.transport = self._flow.transport = None
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if data:
            protocol.data_received(data)

    def _on_upgrade(self, tail: bytes) -> None:
        # The parser completed an upgrade request and stopped at the bytes after its head: the
        # other protocol's if its handler switches (they wait for it), else its body (with a
        # Content-Length; llhttp leaves it unparsed) and then the next HTTP/1.1 requests.
        if self._sink is not None:  # switched already: they are the other protocol's
            if tail:
                self._sink.data_received(tail)
            return
        self._upgrade_stopped = True
        req = self._upgrade_req
        if req is not None and req.body is not EMPTY_PAYLOAD and not req.body.is_eof():
            length = _content_length(req.headers)
            if length > 0:
                self._upgrade_body = self._sink = UpgradeBody(self, req.body, length)
                self._upgrade_body.data_received(tail)
                return
            req.body.feed_eof()  # (a chunked body of an upgrade request is not read)
        self.upgrade_body_done(tail)

    def upgrade_body_done(self, tail: bytes) -> None:
        """The upgrade request is whole (its body too, or cut short): hold what follows until
        its handler has answered."""
        self._upgrade_body = None
        self._sink = None
        self._upgrade_tail = tail
        self._flow.pause(NO_MORE)
        req = self._upgrade_req
        if req is not None and not self._runner.busy:  # its handler is done already
            self._upgrade_answered(req)

    def _upgrade_answered(self, req: Exchange) -> bool:
        """The handler of the upgrade request has answered over HTTP (declined the upgrade):
        the connection goes on with HTTP/1.1 (as aiohttp does), unless the answer closes it."""
        self._upgrade_req = None
        self._upgrade_stopped = False
        if self._sink is not None:  # it switched protocols: the connection is the other's
            self._close()
            return False
        if not req.keep_alive or self._closing:
            self._close()
            return False
        self.loop.call_soon(self._parse_after_upgrade)  # (after the runner's step)
        return True

    def _parse_after_upgrade(self) -> None:
        if self._closing or self._sink is not None:
            return
        self._parser = httptools.HttpRequestParser(self)  # (llhttp cannot go on after it)
        tail = self._upgrade_tail
        self._upgrade_tail = b""
        self._flow.resume(NO_MORE)
        if tail:
            self.data_received(tail)

    def upgrade(self, sink: UpgradeSink) -> None:
        """Switch protocols after a 101 answer: from now on every byte read goes to ``sink``.

        Only for a request the parser saw as an upgrade (``Exchange.upgrade``), from its
        handler. Bytes the client sent after the request head are handed over first.
        """
        self._sink = sink
        self._parser = None  # type: ignore[assignment]  # never fed again; frees ~0.5-1 KB
        self.deadline = 0.0  # the other protocol keeps its own time
        tail = self._upgrade_tail
        if tail:
            self._upgrade_tail = b""
            sink.data_received(tail)
        self._flow.resume(NO_MORE)


def _content_length(fields: list[tuple[bytes, bytes]]) -> int:
    """A request's Content-Length (checked by llhttp), -1 if it has none."""
    for name, value in fields:
        if len(name) == 14 and name.lower() == b"content-length":
            return int(value)
    return -1


class UpgradeBody:
    """The body of an upgrade request, taken from the bytes after its head (llhttp stops there)
    until its Content-Length is complete; what follows goes back to the connection."""

    __slots__ = ("body", "conn", "left")

    def __init__(self, conn: HttpProtocol, body: StreamReader, length: int) -> None:
        self.conn = conn
        self.body = body
        self.left = length

    def data_received(self, data: bytes) -> None:
        left = self.left
        if len(data) < left:
            self.left = left - len(data)
            self.body.feed_data(data)
            return
        self.left = 0
        self.body.feed_data(data[:left])
        self.body.feed_eof()
        self.conn.upgrade_body_done(data[left:])

    def eof_received(self) -> None:
        self.body.set_exception(RequestPayloadError("Request body cut short"))
        self.conn.upgrade_body_done(b"")

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.body.is_eof():
            self.body.set_exception(RequestPayloadError("Connection lost"))

    def going_away(self) -> None:
        pass
