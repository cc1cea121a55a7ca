"""HttpProtocol: one asyncio Protocol per connection, driving the httptools parser.

The parser calls back into this object (``on_url``, ``on_header``...). Each complete request head
becomes a :class:`RawRequest` handed to the server's handler, which returns a coroutine. The
coroutine is started eagerly; only if it suspends does it continue in a Task. Pipelined requests
wait in a bounded queue and are answered in order.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

import httptools

from .eager import EAGER, NOT_STARTED, Resume, enter_task, leave_task
from .errors import (
    BadRequest,
    RequestPayloadError,
    classify_parse_error,
    error_response,
    failing_request,
)
from .message import RawRequest
from .streams import EMPTY_PAYLOAD, StreamReader

if TYPE_CHECKING:
    from .server import HttpServer


class UpgradeSink(Protocol):
    """Where the bytes of an upgraded connection go (e.g. a WebSocket channel)."""

    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> None: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def going_away(self) -> None:
        """The server is shutting down: say goodbye in the other protocol's terms."""


log = logging.getLogger("squall.server")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_OUT_LIMIT = 65536  # bytes gathered during one data_received before writing anyway
_LINGER = 2.0  # seconds to keep reading after a closing answer, so the client sees it (no RST)

# Reasons reading from the socket is paused; reading resumes when none is left.
_PAUSE_PIPELINE = 1  # the queue of parsed requests is full
_PAUSE_BODY = 2  # the running handler has not read the body buffered so far
_PAUSE_WRITE = 4  # the transport's write buffer is full: queued requests wait (not reading)
_PAUSE_STOP = 8  # no more requests will be read on this connection
_READ_PAUSES = _PAUSE_PIPELINE | _PAUSE_BODY | _PAUSE_STOP


class HttpProtocol(asyncio.Protocol):
    """One HTTP/1.x connection."""

    __slots__ = (
        "_active",
        "_admitted",
        "_body_seen",
        "_body_since",
        "_closing",
        "_completed",
        "_connection_field",
        "_ctx",
        "_cur",
        "_data",
        "_deadline",
        "_discarding",
        "_drain_waiters",
        "_gathering",
        "_good_host",
        "_handler",
        "_handoff",
        "_head_bytes",
        "_head_size",
        "_headers",
        "_in_head",
        "_limits",
        "_lingering",
        "_loop",
        "_lost",
        "_out",
        "_out_size",
        "_parser",
        "_paused",
        "_pending_error",
        "_pipeline",
        "_server",
        "_sink",
        "_stall_since",
        "_stall_size",
        "_transport",
        "_upgrade_tail",
        "_url",
        "_wakeup",
        "_worker",
        "_wrote",
        "peername",
        "sockname",
    )

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._loop = server.loop
        self._limits = server.limits
        self._handler = server.handler
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._in_head = False
        self._head_bytes = 0
        self._head_size = 0
        self._connection_field = False
        self._body_seen = -1
        self._body_since = 0.0
        self._completed = 0
        self._good_host = b""
        self._cur: RawRequest | None = None
        self._data = b""
        self._gathering = False
        self._out: list[bytes] = []
        self._out_size = 0
        self._active: RawRequest | None = None
        self._worker: asyncio.Task[None] | None = None
        self._ctx: contextvars.Context | None = None
        self._handoff: tuple[Coroutine[Any, Any, None], Any] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        # Requests parsed while one is being answered; the shared empty tuple until the first
        # one queues (most connections never pipeline: a deque each costs ~760 bytes idle).
        self._pipeline: deque[RawRequest] | tuple[()] = ()
        self._pending_error: BadRequest | None = None
        self._closing = False
        self._lingering = False
        self._discarding = False
        self._paused = 0
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._lost: asyncio.Future[None] | None = None
        self._deadline = 0.0
        self._wrote = False
        self._sink: UpgradeSink | None = None
        self._upgrade_tail = b""
        self._admitted = False
        self._stall_since = 0.0  # when the write buffer last filled up without draining since
        self._stall_size = 0
        self.peername: Any = None
        self.sockname: Any = None

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses
        self.peername = transport.get_extra_info("peername")
        self.sockname = transport.get_extra_info("sockname")
        self._deadline = self._loop.time() + self._limits.header_timeout
        self._server.connections.add(self)
        if self._limits.max_connections and not self._admit():
            self._handler = self._unavailable
        if self._server.closing:
            self._close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closing = True
        self._transport = None
        self._server.connections.discard(self)
        if self._admitted:
            self._admitted = False
            self._server.admitted -= 1
        if self._sink is not None:
            self._sink.connection_lost(exc)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        lost = ConnectionResetError("Connection lost")
        for fut in self._drain_waiters:
            if not fut.done():
                fut.set_exception(lost)
        self._drain_waiters.clear()
        for req in (self._active, self._cur, *self._pipeline):
            if req is not None and not req.body.is_eof():
                req.body.set_exception(RequestPayloadError("Connection lost"))
        self._pipeline = ()
        self._cur = None
        worker = self._worker
        if worker is not None and (self._active is None or self._server.handler_cancellation):
            worker.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closing:  # (lingering implies closing)
            return
        if self._sink is not None:  # upgraded: the bytes are the other protocol's
            self._sink.data_received(data)
            return
        continuing = self._in_head
        mid_message = continuing or self._cur is not None
        completed = self._completed
        self._data = data
        self._gathering = True
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
                self._pause(_PAUSE_STOP)
                if self._active is None and not self._pipeline:
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
                    if self._head_bytes > self._limits.max_head_size:
                        self._refuse(BadRequest(431, "Request header fields too large"))
                if not self._deadline and not self._closing:
                    self._deadline = self._loop.time() + self._limits.header_timeout
        finally:
            self._data = b""
            out = self._out
            if out:  # what the handlers answered during this read: one write
                transport = self._transport
                if transport is not None:
                    transport.write(out[0] if len(out) == 1 else b"".join(out))
                out.clear()
                self._out_size = 0
            self._gathering = False

    def eof_received(self) -> bool | None:
        if self._sink is not None:
            self._sink.eof_received()
            return True  # the write side stays open for the other protocol's goodbye
        cur = self._cur
        if cur is not None and not cur.body.is_eof():
            cur.body.set_exception(RequestPayloadError("Request body cut short"))
        last = self._pipeline[-1] if self._pipeline else self._active
        if last is None:
            return None  # nothing owed: let the transport close
        # The client is done sending: answer what it asked for (the write side stays open,
        # as a half-close allows), then close. With handler_cancellation, EOF counts as gone.
        last.keep_alive = False
        if self._server.handler_cancellation and self._worker is not None:
            self._worker.cancel()
        return True

    def pause_writing(self) -> None:
        self._paused |= _PAUSE_WRITE
        self._stall_since = self._loop.time()
        self._stall_size = -1

    def resume_writing(self) -> None:
        self._paused &= ~_PAUSE_WRITE
        self._stall_since = 0.0
        waiters = self._drain_waiters
        self._drain_waiters = []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        if self._active is None and self._pipeline and not self._closing:
            # Requests held back while the client was not reading its answers: go on.
            self._start(self._next_queued())

    # -- httptools callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        if self._headers:  # a previous request's trailers
            self._headers = []
        self._in_head = True
        self._head_bytes = 0
        self._head_size = 0
        self._connection_field = False
        # Most heads end in the read that began them: the header deadline is armed only when
        # one does not (at the end of data_received), which saves a clock read per request.
        self._deadline = 0.0

    def on_url(self, url: bytes) -> None:
        url = self._url + url if self._url else url
        if len(url) > self._limits.max_line_size:
            raise BadRequest(414, "Request target too long")
        self._url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        if value and value[-1] in (32, 9):  # llhttp keeps trailing whitespace
            value = value.rstrip(b" \t")
        headers = self._headers
        limits = self._limits
        size = len(name)
        if size == 10 and name[0] | 0x20 == 99:  # C...: perhaps Connection (on_headers_complete)
            self._connection_field = True
        size += len(value)
        if size > limits.max_field_size:
            raise BadRequest(431, "Request header field too large")
        if len(headers) >= limits.max_headers:
            raise BadRequest(431, "Too many request header fields")
        total = self._head_size = self._head_size + size + 4
        if total > limits.max_head_size:
            raise BadRequest(431, "Request header fields too large")
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._in_head = False
        self._deadline = 0.0
        keep_alive = parser.should_keep_alive()
        # get_http_version() formats a new string (~130 ns): llhttp takes only 0.9, 1.0, 1.1
        # and 2.0, and keeps any but 1.1 alive only for a Connection field. So without one, a
        # kept-alive request is 1.1.
        version = "1.1" if keep_alive and not self._connection_field else parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise BadRequest(505, "HTTP version not supported")
        if version == "1.0":  # llhttp also takes RTSP/1.0 and ICE/1.0, reported as HTTP/1.0
            data = self._data
            if (b"TSP/" in data or b"ICE/" in data) and (
                self._url + b" RTSP/" in data or self._url + b" ICE/" in data
            ):
                raise BadRequest(400, "Not an HTTP request")
        headers = self._headers
        self._headers = []  # trailers of a chunked body land there, never in the request
        url = self._url
        method = parser.get_method()
        if len(method) + len(url) + 10 > self._limits.max_line_size:
            raise BadRequest(414, "Request line too long")
        host = 0
        chunked = False
        has_length = False
        expect = False
        upgrade = method == b"CONNECT"  # llhttp's upgrade needs this or an Upgrade field
        for name, value in headers:
            size = len(name)
            if size == 4:
                if name.lower() == b"host":
                    host += 1
                    if value != self._good_host:
                        if not _HOST.fullmatch(value):
                            raise BadRequest(400, "Invalid Host header")
                        self._good_host = value
            elif size == 17:
                if name.lower() == b"transfer-encoding":
                    chunked = True
                    _check_transfer_encoding(value, version)
            elif size == 14:
                if name.lower() == b"content-length":
                    has_length = value != b"0"
            elif size == 6:
                if name.lower() == b"expect":
                    if value.lower() != b"100-continue":
                        raise BadRequest(417, "Only 100-continue is supported in Expect")
                    expect = True
            elif size == 7:
                upgrade = upgrade or name.lower() == b"upgrade"
        if host > 1 or (host == 0 and version == "1.1"):
            raise BadRequest(400, "Missing or duplicated Host header")
        if not url.startswith(b"/"):
            _check_target_form(url, method)
        if chunked or has_length:  # body framing does not depend on the method
            body: StreamReader = StreamReader(self, self._limits.read_high_water)
            # While it arrives, the tick watches for a handler starved of body bytes.
            self._body_seen = 0
            self._body_since = self._deadline = self._loop.time()
            if expect and version == "1.1":
                body.set_continue(self._send_continue)
        else:
            body = EMPTY_PAYLOAD
            expect = False
        upgrade = upgrade and parser.should_upgrade()
        req = RawRequest(
            _METHODS.get(method) or method.decode("ascii"),
            url,
            version,
            headers,
            # Upgrades are not taken yet: answer over HTTP/1.1, then close.
            keep_alive and not upgrade and not self._server.closing,
            upgrade,
            expect,
            body,
        )
        self._cur = req
        if body is not EMPTY_PAYLOAD:
            # Bodies stream to the handler: start it now, before the body has arrived.
            self._dispatch(req)

    def on_body(self, body: bytes) -> None:
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
            if (
                self._active is None
                and not self._pipeline
                and not self._paused & _PAUSE_WRITE
                and not self._closing
            ):
                self._start(req)  # the common case, without _dispatch's detour
            else:
                self._dispatch(req)
        else:
            req.body.feed_eof()
            if self._discarding:
                self._discarding = False
                if self._active is None and not self._pipeline:
                    self._deadline = self._loop.time() + self._limits.keepalive_timeout

    # -- the connection limit -------------------------------------------------------------

    def _admit(self) -> bool:
        """Count this connection against max_connections if there is room."""
        server = self._server
        if server.admitted >= self._limits.max_connections:
            return False
        server.admitted += 1
        self._admitted = True
        self._handler = server.handler
        return True

    async def _unavailable(self, req: RawRequest, conn: HttpProtocol) -> None:
        """The handler of a connection accepted past max_connections."""
        if self._admit():  # another connection closed meanwhile: serve this one after all
            await self._handler(req, conn)
            return
        log.warning("Exceeded the connection limit (%d): 503", self._limits.max_connections)
        req.keep_alive = False
        self.write(error_response(503, "Too many connections"))

    # -- running handlers -----------------------------------------------------------------

    def _dispatch(self, req: RawRequest) -> None:
        if self._closing:
            return
        if self._active is None and not self._pipeline and not self._paused & _PAUSE_WRITE:
            self._start(req)
            return
        # Behind another request, or the client is not reading its answers: queue it (past
        # max_pipeline, reading pauses, so a client that never reads costs bounded memory).
        pipeline = self._pipeline
        if not isinstance(pipeline, deque):
            pipeline = self._pipeline = deque()
        pipeline.append(req)
        if len(self._pipeline) >= self._limits.max_pipeline:
            self._pause(_PAUSE_PIPELINE)

    def _start(self, req: RawRequest) -> None:
        """Run ``req`` and then whatever is queued behind it, until one suspends.

        Each handler is stepped eagerly; one that suspends is handed to the worker task, which
        carries on with it and the queue. (The hot path: kept in one function on purpose.)
        """
        loop = self._loop
        while True:
            self._active = req
            self._wrote = False
            worker = self._worker
            if worker is None:
                worker = self._start_worker()
            coro = self._handler(req, self)
            if not EAGER:
                self._hand_off(coro, NOT_STARTED)
                return
            try:
                enter_task(loop, worker)
            except RuntimeError:  # driven from inside another task (a test harness): no eager step
                self._hand_off(coro, NOT_STARTED)
                return
            waiting: Any = NOT_STARTED
            try:
                waiting = self._ctx.run(coro.send, None)  # type: ignore[union-attr]
            except StopIteration:
                pass
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                self._handler_crashed(exc)
            finally:
                leave_task(loop, worker)
            if waiting is not NOT_STARTED:  # suspended
                self._hand_off(coro, waiting)
                return
            if req.keep_alive and req.body is EMPTY_PAYLOAD and not self._closing:
                self._active = None  # _finish's common case
            elif not self._finish(req):
                return
            if not self._pipeline:
                if self._pending_error is None and not self._in_head:  # _idle's common case
                    self._deadline = loop.time() + self._limits.keepalive_timeout
                else:
                    self._idle()
                return
            if self._paused & _PAUSE_WRITE:
                return  # the client is not reading: resume_writing() goes on with the queue
            req = self._next_queued()

    def _next_queued(self) -> RawRequest:
        """Take the next queued request; reading resumes once the queue is short again."""
        pipeline = self._pipeline
        assert isinstance(pipeline, deque)  # only called when a request is queued
        req = pipeline.popleft()
        # One read may queue many more than max_pipeline: resume only below the mark.
        if self._paused & _PAUSE_PIPELINE and len(self._pipeline) < self._limits.max_pipeline:
            self._unpause(_PAUSE_PIPELINE)
        return req

    def _start_worker(self) -> asyncio.Task[None]:
        self._ctx = contextvars.copy_context()
        worker = self._worker = self._loop.create_task(self._work(), context=self._ctx)
        return worker

    def _hand_off(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        self._handoff = (coro, waiting)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _work(self) -> None:
        """The connection's task: continues suspended handlers and answers what queued behind.

        A cancellation ends it (loop teardown, shutdown, or the client gone with
        handler_cancellation): it is delivered to the handler in progress, never swallowed.
        """
        try:
            while True:
                handoff = self._handoff
                throw: BaseException | None = None
                if handoff is None:
                    if self._transport is None:
                        return
                    self._wakeup = self._loop.create_future()
                    try:
                        await self._wakeup
                    except asyncio.CancelledError as exc:
                        if self._handoff is None:
                            raise  # cancelled while idle
                        throw = exc  # ... or just as a handler was handed over: it gets it
                    finally:
                        self._wakeup = None
                    handoff = self._handoff
                    if handoff is None:
                        continue
                self._handoff = None
                req = self._active
                coro, waiting = handoff
                awaitable: Any = coro
                if waiting is not NOT_STARTED:
                    awaitable = Resume(coro, waiting, throw)
                elif throw is not None:
                    coro.close()
                    raise throw
                while True:
                    await self._await_handler(awaitable)
                    if req is None or self._transport is None:
                        self._active = None
                        break
                    if not self._finish(req) or not self._pipeline:
                        if not self._closing:
                            self._idle()
                        break
                    if self._paused & _PAUSE_WRITE:
                        break  # resume_writing() goes on with the queue
                    req = self._next_queued()
                    self._active = req
                    self._wrote = False
                    awaitable = self._handler(req, self)
        finally:
            self._worker = None  # a later request starts a new one

    async def _await_handler(self, awaitable: Any) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            # No response can follow a cancelled handler: close, and let the task end.
            self._active = None
            self._close()
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._handler_crashed(exc)

    def _handler_crashed(self, exc: BaseException) -> None:
        """Last line of defence: the application layer let an exception out."""
        log.error("Unhandled exception in request handler", exc_info=exc)
        req = self._active
        if req is not None:
            req.keep_alive = False
        if not self._wrote and self._transport is not None:
            self.write(error_response(500, "Internal Server Error"))

    def _finish(self, req: RawRequest) -> bool:
        """The response to ``req`` is complete; True if the connection stays open."""
        self._active = None
        if self._closing:
            return False
        if not req.keep_alive:
            self._close()
            return False
        body = req.body
        if body is EMPTY_PAYLOAD:
            return True
        if not body.is_eof():
            if body._continue is not None:
                # The client is waiting for 100 Continue that will never come: don't read on.
                self._close()
                return False
            # The handler did not read the whole body: drop the rest as it arrives.
            self._discarding = True
            body.feed_eof()
        body._buffer.clear()  # whatever the handler left unread
        body._size = 0
        if body._paused:  # this body stopped the socket: nobody will read it now
            body._paused = False
            self._unpause(_PAUSE_BODY)
        return True

    def _idle(self) -> None:
        if self._pending_error is not None:
            self._answer_error(self._pending_error)
        elif not self._in_head:  # a head in progress keeps its own (header) deadline
            # Idle keep-alive, or still dropping an unread body: either way, bounded.
            self._deadline = self._loop.time() + self._limits.keepalive_timeout

    # -- what handlers call ---------------------------------------------------------------

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._transport

    def lost(self) -> asyncio.Future[None]:
        """A future (shared: never cancel it) that completes when the connection is lost."""
        fut = self._lost
        if fut is None:
            fut = self._lost = self._loop.create_future()
            if self._transport is None:
                fut.set_result(None)
        return fut

    @property
    def response_started(self) -> bool:
        """Whether any byte of the current request's response has been written."""
        return self._wrote

    def write(self, data: bytes) -> None:
        """Write response bytes; raises ConnectionResetError once the client has gone."""
        transport = self._transport
        if transport is None:
            raise ConnectionResetError("Cannot write to closing transport")
        self._wrote = True
        if self._gathering:  # _send's gathering case, inline: the hot path
            self._out.append(data)
            self._out_size += len(data)
            if self._out_size > _OUT_LIMIT:
                self._flush()
        else:
            transport.write(data)

    def _send(self, data: bytes) -> None:
        """Every byte goes out through here, in order.

        While ``data_received`` runs, responses answered on the spot are gathered and sent in
        one write when it returns: a pipelined batch costs one syscall, not one per response.
        """
        if not self._gathering:
            transport = self._transport
            if transport is not None:
                transport.write(data)
            return
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size > _OUT_LIMIT:  # a big body written eagerly: let backpressure see it
            self._flush()

    def _flush(self) -> None:
        out = self._out
        if out:
            transport = self._transport
            if transport is not None:
                transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
            self._out_size = 0

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self._transport is None:
            raise ConnectionResetError("Connection lost")
        if not self._paused & _PAUSE_WRITE:
            return
        fut = self._loop.create_future()
        self._drain_waiters.append(fut)
        await fut

    def _send_continue(self) -> None:
        if not self._wrote:
            self._send(_CONTINUE)

    # -- flow control ---------------------------------------------------------------------

    def pause_reading_body(self) -> None:
        self._pause(_PAUSE_BODY)

    def resume_reading_body(self) -> None:
        self._unpause(_PAUSE_BODY)

    def _pause(self, reason: int) -> None:
        was = self._paused & _READ_PAUSES
        self._paused |= reason
        if not was and self._transport is not None:
            self._transport.pause_reading()

    def _unpause(self, reason: int) -> None:
        if not self._paused & reason:
            return
        self._paused &= ~reason
        if not self._paused & _READ_PAUSES and self._transport is not None:
            self._transport.resume_reading()

    # -- errors, timeouts and closing -----------------------------------------------------

    def _refuse(self, err: BadRequest) -> None:
        """Stop reading; answer ``err`` once the responses already owed are sent."""
        if self._closing:
            # Already closing (the rest of a read parsed after the answer that closed it):
            # nothing more may be written; the bytes are dropped.
            cur = self._cur
            if cur is not None and not cur.body.is_eof():
                cur.body.set_exception(RequestPayloadError(err.detail, err.status))
            return
        self._pause(_PAUSE_STOP)
        cur = self._cur
        if cur is not None and cur.body is not EMPTY_PAYLOAD:
            # The head was fine and its handler is running or queued: its body is what broke.
            cur.body.set_exception(RequestPayloadError(err.detail, err.status))
            cur.keep_alive = False
            self._cur = None
            self._discarding = False
            if self._active is None and not self._pipeline:
                self._close()  # its response is already out: nothing more can be framed
            return
        self._cur = None
        if self._active is None and not self._pipeline:
            self._answer_error(err)
        else:
            self._pending_error = err

    def _answer_error(self, err: BadRequest) -> None:
        self._pending_error = None
        self._send(error_response(err.status, err.detail))
        self._close()

    def _on_upgrade(self, tail: bytes) -> None:
        # The parser completed the request (keep_alive is off for it) and stopped at the bytes
        # of the other protocol: they are never taken for a request. If the handler has
        # switched protocols already, they are its; else they wait for it to do so (or to answer
        # over HTTP, and then the connection closes).
        if self._sink is not None:
            if tail:
                self._sink.data_received(tail)
            return
        self._upgrade_tail = tail
        self._pause(_PAUSE_STOP)
        if self._active is None and not self._pipeline:
            self._close()

    def upgrade(self, sink: UpgradeSink) -> None:
        """Switch protocols after a 101 answer: from now on every byte read goes to ``sink``.

        Only for a request the parser saw as an upgrade (``RawRequest.upgrade``), from its
        handler. Bytes the client sent after the request head are handed over first.
        """
        self._sink = sink
        self._parser = None  # type: ignore[assignment]  # never fed again; frees ~0.5-1 KB
        self._deadline = 0.0  # the other protocol keeps its own time
        tail = self._upgrade_tail
        if tail:
            self._upgrade_tail = b""
            sink.data_received(tail)
        self._unpause(_PAUSE_STOP)

    @property
    def write_paused(self) -> bool:
        """Whether the transport's write buffer is over its high-water mark."""
        return bool(self._paused & _PAUSE_WRITE)

    def close(self) -> None:
        """Close the connection gracefully (used once an upgraded protocol is done)."""
        self._close()

    def on_timeout(self, now: float) -> None:
        """Called by the server's tick once ``_deadline`` has passed."""
        self._deadline = 0.0
        transport = self._transport
        if transport is None:
            return
        if self._lingering:
            transport.close()
        elif self._in_head:  # answered after any response still owed, in order
            self._refuse(BadRequest(408, "Request head not received in time"))
        elif self._cur is not None and not self._discarding:
            self._watch_body(self._cur.body, now)
        elif self._active is None:
            self._close()

    def on_write_stall(self, now: float) -> None:
        """Called by the server's tick while the write buffer is full: a client that reads
        none of it for ``send_timeout`` is dropped (its handler sees ConnectionResetError)."""
        transport = self._transport
        if transport is None:
            self._stall_since = 0.0
            return
        size = transport.get_write_buffer_size()
        if self._stall_size < 0 or size < self._stall_size:  # first look, or the client read
            if self._stall_size >= 0:
                self._stall_since = now
            self._stall_size = size
        elif now - self._stall_since >= self._limits.send_timeout:
            log.info("Client read nothing for %.0f s: connection dropped", now - self._stall_since)
            self._stall_since = 0.0
            transport.abort()

    def _watch_body(self, body: StreamReader, now: float) -> None:
        """A body is arriving: fail it once its handler has waited body_timeout for a byte."""
        if body._total != self._body_seen or body._waiter is None:  # progress, or no one waits
            self._body_seen = body._total
            self._body_since = now
        elif now - self._body_since >= self._limits.body_timeout:
            self._refuse(BadRequest(408, "Request body not received in time"))
            return
        self._deadline = now + 0.5  # look again at the next tick

    def _close(self) -> None:
        """Close gracefully: stop reading new requests, half-close, then linger briefly."""
        if self._closing:
            return
        self._closing = True
        for req in self._pipeline:  # requests behind a closing response are never answered
            if not req.body.is_eof():
                req.body.set_exception(RequestPayloadError("Connection closing"))
        self._pipeline = ()
        transport = self._transport
        if transport is None:
            return
        self._flush()
        if transport.can_write_eof():
            try:
                transport.write_eof()
            except OSError:
                transport.close()
                return
            self._lingering = True
            self._deadline = self._loop.time() + _LINGER
            if self._paused:
                self._paused = 0
                transport.resume_reading()
        else:
            transport.close()

    def shutdown(self) -> None:
        """Server shutdown: close now if idle, else after the responses in flight."""
        for req in (self._active, *self._pipeline):
            if req is not None:
                req.keep_alive = False
        if self._active is None and not self._pipeline:
            self._close()

    def going_away(self) -> None:
        """Server shutdown, after the application's on_shutdown: an upgraded connection (a
        WebSocket) is told so, so that its handler can finish instead of being cancelled."""
        if self._sink is not None and not self._closing:
            self._sink.going_away()

    def abort(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        if self._transport is not None:
            self._transport.abort()


_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}

# uri-host [ ":" port ] (RFC 9112 3.2, RFC 3986 3.2.2): IP-literal, IPv4 or reg-name.
_HOST = re.compile(
    rb"(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)"  # IP-literal | name
    rb"(?::[0-9]*)?"  # port
)


def _check_transfer_encoding(value: bytes, version: str) -> None:
    if version == "1.0":
        raise BadRequest(400, "Transfer-Encoding in an HTTP/1.0 request")
    codings = [c.strip().lower() for c in value.split(b",")]
    if codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
        raise BadRequest(400, "Transfer-Encoding must end with chunked, once")
    if len(codings) > 1:
        raise BadRequest(501, "Transfer coding not implemented")


def _check_target_form(url: bytes, method: bytes) -> None:
    """Non-origin request targets: absolute-form, authority-form (CONNECT), asterisk (OPTIONS)."""
    if url == b"*":
        if method != b"OPTIONS":
            raise BadRequest(400, "Asterisk-form target is only for OPTIONS")
        return
    if method == b"CONNECT":
        return
    lower = url[:8].lower()
    if not (lower.startswith(b"http://") or lower.startswith(b"https://")):
        raise BadRequest(400, "Invalid request target")
