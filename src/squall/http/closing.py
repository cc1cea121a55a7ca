"""Ending a connection: refusing bad requests, timeouts, write stalls, closing and lingering."""

from __future__ import annotations

import logging
from typing import Final

from .errors import BadRequest, RequestPayloadError
from .exchange import error_response
from .flow import FlowLayer
from .state import _PAUSE_STOP
from .streams import EMPTY_PAYLOAD, StreamReader

log = logging.getLogger("squall.server")

# Seconds to keep reading after a closing answer, so the client sees it (no RST).
_LINGER: Final = 2.0


class ClosingLayer(FlowLayer):
    """Errors answered in order, the tick's timeouts, and graceful (lingering) close."""

    __slots__ = ()

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
        if self._transport is not None:
            self._output.write(error_response(err.status, err.detail))
        self._close()

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
        stalled = self._output.stalled_for(now)
        if stalled >= self._limits.send_timeout and self._transport is not None:
            log.info("Client read nothing for %.0f s: connection dropped", stalled)
            self._output.stall_since = 0.0
            self._transport.abort()

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
        self._output.flush()
        if self._peer_done:  # the client has closed its side: no reset to fear, close now
            transport.close()
        elif transport.can_write_eof():
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
