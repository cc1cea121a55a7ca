"""HttpProtocol: one asyncio Protocol per connection, driving the httptools parser.

The parser calls back into this object (``on_url``, ``on_header``...). Each complete request head
becomes a :class:`RawRequest` handed to the server's handler, which returns a coroutine. The
coroutine is started eagerly; only if it suspends does it continue in a Task. Pipelined requests
wait in a bounded queue and are answered in order.

The class is built in layers, one job per module, each on top of the one before:

- ``state.py``: every attribute of a connection (``__slots__``) and its initial value;
- ``flow.py``: read flow control, and writing for an upgraded protocol (through the
  connection's :class:`~.output.Output`, which every byte goes through);
- ``closing.py``: refusing bad requests, timeouts, write stalls, closing and lingering;
- ``running.py``: running handlers (the eager step, the worker task, the pipeline queue);
- ``parsing.py``: the parser callbacks: the request head collected, checked and dispatched;
- here: the asyncio Protocol lifecycle (``data_received``...) and the upgrade hand-over.
"""

from __future__ import annotations

import asyncio
import logging

import httptools

from .errors import BadRequest, RequestPayloadError, classify_parse_error, failing_request
from .parsing import ParserLayer
from .state import _PAUSE_STOP, UpgradeSink

__all__ = ("HttpProtocol", "UpgradeSink")

log = logging.getLogger("squall.server")


class HttpProtocol(ParserLayer):
    """One HTTP/1.x connection."""

    __slots__ = ()

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses
        self._output.transport = transport  # type: ignore[assignment]
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
        self._output.connection_lost()
        if self._sink is not None:
            self._sink.connection_lost(exc)
        for req in (self._active, self._cur, *self._pipeline):
            if req is not None and not req.body.is_eof():
                req.body.set_exception(RequestPayloadError("Connection lost"))
        self._client_left()
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
            elif cur is not None and self._cur is cur:  # a body message still arriving
                if self._head_bytes < 0:  # on_body saw body bytes in this read
                    self._head_bytes = 0
                else:
                    # Chunk framing and trailer fields only: httptools buffers a trailer field
                    # whole, so these are bounded like a head that spans reads.
                    self._head_bytes += len(data)
                    if self._head_bytes > self._limits.max_head_size:
                        self._refuse(BadRequest(431, "Request trailer fields too large"))
        finally:
            self._data = b""
            output.release()  # what the handlers answered during this read: one write

    def eof_received(self) -> bool | None:
        if self._sink is not None:
            self._sink.eof_received()
            return True  # the write side stays open for the other protocol's goodbye
        self._peer_done = True
        cur = self._cur
        if cur is not None and not cur.body.is_eof():
            cur.body.set_exception(RequestPayloadError("Request body cut short"))
        if self._active is None and not self._pipeline:
            return None  # nothing owed: let the transport close
        # The client has left (or only half-closed): its requests in flight learn it now;
        # what they still answer whole is written (the write side stays open, as a half-close
        # allows), then the connection closes. With handler_cancellation, the handler is
        # cancelled.
        self._client_left()
        if self._server.handler_cancellation and self._worker is not None:
            self._worker.cancel()
        return True

    def _client_left(self) -> None:
        active = self._active
        if active is not None:
            active.client_left()
        for req in self._pipeline:
            req.client_left()

    def pause_writing(self) -> None:
        self._output.pause_writing()

    def resume_writing(self) -> None:
        self._output.resume_writing()
        if self._active is None and self._pipeline and not self._closing:
            # Requests held back while the client was not reading its answers: go on.
            self._start(self._next_queued())

    # -- switching protocols --------------------------------------------------------------

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
