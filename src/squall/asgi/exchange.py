"""Exchange: one request/response cycle of the ``http`` scope, the ``receive``/``send`` pair.

The response head is held back from ``http.response.start`` until the first body message, so
that a response whose whole body comes in one message goes out in a single write with a
Content-Length; otherwise the body is chunked (HTTP/1.1), framed by the application's
Content-Length, or close-delimited (HTTP/1.0). HEAD and 204/304 responses carry no body.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any, Final

from ..http.errors import RequestPayloadError, error_response
from ..http.streams import EMPTY_PAYLOAD
from ..http.writer import CLOCK, status_line
from .types import Message

if TYPE_CHECKING:
    from ..http.message import RawRequest
    from ..http.protocol import HttpProtocol

__all__ = ("DONE", "STREAMING", "Exchange")

log = logging.getLogger("squall.asgi")

# Progress of one response.
_IDLE: Final = 0  # nothing sent by the application yet
_STARTED: Final = 1  # http.response.start received; the head is held until the first body message
STREAMING: Final = 2  # the head is on the wire; more body to come
DONE: Final = 3  # the last body message was sent (or the response was given up)

_NO_BODY_STATUSES: Final = frozenset((204, 304))

_bad_name = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]").search
_bad_value = re.compile(rb"[\x00\r\n]").search
_digits = re.compile(rb"[0-9]+").fullmatch
# Header names seen valid, lower-cased: applications send the same few names on every response.
_NAMES: Final[dict[bytes, bytes]] = {}


def _disconnect() -> Message:
    return {"type": "http.disconnect"}


class Exchange:
    """One request/response cycle: the ``receive`` and ``send`` the application is given."""

    __slots__ = (
        "body_done",
        "chunked",
        "conn",
        "headers",
        "keep_alive",
        "length",
        "raw",
        "sent",
        "state",
        "status",
        "waiters",
        "with_body",
    )

    def __init__(self, raw: RawRequest, conn: HttpProtocol) -> None:
        self.raw = raw
        self.conn = conn
        self.state = _IDLE
        self.body_done = False
        self.chunked = False
        self.with_body = True
        self.length = -1  # the application's Content-Length, -1 if it gave none
        self.sent = 0
        self.status = 200
        self.headers: Any = ()
        self.waiters: list[asyncio.Future[None]] | None = None

    # -- receive --------------------------------------------------------------------------

    async def receive(self) -> Message:
        """The next request event: body pieces, then ``http.disconnect`` when all is over."""
        if not self.body_done:
            body = self.raw.body
            if body is EMPTY_PAYLOAD:
                self.body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            try:
                # The first wait sends a pending "100 Continue" (unless a response started).
                chunk = await body.readany()
            except (RequestPayloadError, ConnectionError):
                self.body_done = True
                self.raw.keep_alive = False
                return _disconnect()
            more = not body.at_eof()
            if not more:
                self.body_done = True
            return {"type": "http.request", "body": chunk, "more_body": more}
        await self._wait_over()
        return _disconnect()

    async def _wait_over(self) -> None:
        """Return once the response is complete or the client has gone."""
        conn = self.conn
        if self.state == DONE or conn.transport is None:
            return
        done = asyncio.get_running_loop().create_future()
        waiters = self.waiters
        if waiters is None:
            waiters = self.waiters = []
        waiters.append(done)
        try:
            await asyncio.wait((done, conn.lost()), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiters.remove(done)

    # -- send -----------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Take ``http.response.start`` / ``http.response.body`` from the application."""
        kind = message["type"]
        state = self.state
        if kind == "http.response.body":
            if state == _STARTED:
                await self._first_body(message)
            elif state == STREAMING:
                await self._more_body(message)
            elif state == _IDLE:
                raise RuntimeError("http.response.body sent before http.response.start")
            else:
                raise RuntimeError("http.response.body sent after the response completed")
        elif kind == "http.response.start":
            if state != _IDLE:
                raise RuntimeError("http.response.start sent twice")
            status = message["status"]
            if type(status) is not int or not 100 <= status <= 999:
                raise RuntimeError(f"Invalid HTTP status {status!r}")
            self.status = status
            self.headers = message.get("headers", ())
            self.state = _STARTED
        elif kind == "http.response.trailers":
            return  # the trailers extension is not offered: ignored
        else:
            raise RuntimeError(f"Unexpected ASGI message type {kind!r} in the http scope")

    async def _first_body(self, message: Message) -> None:
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if type(body) is not bytes:
            body = bytes(body)
        head = self._head(body, more)
        conn = self.conn
        if self.with_body and body:
            if self.length >= 0:
                self._count(len(body))
            if self.chunked:
                data = b"%b%x\r\n%b\r\n" % (head, len(body), body)
                if not more:
                    data += b"0\r\n\r\n"
            else:
                data = head + body
        elif self.chunked and not more:
            data = head + b"0\r\n\r\n"
        else:
            data = head
        conn.write(data)
        if more:
            self.state = STREAMING
            await conn.drain()
        else:
            self._complete()
            if len(data) > 65536:
                await conn.drain()

    async def _more_body(self, message: Message) -> None:
        body = message.get("body", b"")
        more = message.get("more_body", False)
        conn = self.conn
        if self.with_body:
            if body:
                if self.length >= 0:
                    self._count(len(body))
                if self.chunked:
                    data = b"%x\r\n%b\r\n" % (len(body), bytes(body))
                    conn.write(data + b"0\r\n\r\n" if not more else data)
                else:
                    conn.write(bytes(body))
            elif self.chunked and not more:
                conn.write(b"0\r\n\r\n")
        if more:
            await conn.drain()
        else:
            self._complete()
            await conn.drain()

    def _count(self, n: int) -> None:
        sent = self.sent = self.sent + n
        if sent > self.length:
            self.raw.keep_alive = False
            raise RuntimeError("Response content longer than Content-Length")

    def _complete(self) -> None:
        if self.length >= 0 and self.sent < self.length and self.with_body:
            self.raw.keep_alive = False
            self.state = DONE
            self._wake()
            raise RuntimeError("Response content shorter than Content-Length")
        self.state = DONE
        self._wake()

    def _wake(self) -> None:
        if self.waiters:
            for fut in self.waiters:
                if not fut.done():
                    fut.set_result(None)

    def _head(self, body: bytes, more: bool) -> bytes:
        """Serialise the held-back head, choosing the body framing."""
        raw = self.raw
        status = self.status
        parts = [status_line("1.1", status)]
        append = parts.append
        keep_alive = raw.keep_alive
        has_date = has_server = False
        length = -1
        for name, value in self.headers:
            lname = _NAMES.get(name) if type(name) is bytes else None
            if lname is None:
                if _bad_name(name) or not name:
                    raise RuntimeError(f"Invalid character in response header {name!r}")
                lname = name.lower()
                if type(name) is bytes and len(_NAMES) < 512:
                    _NAMES[name] = lname
            if _bad_value(value):
                raise RuntimeError(f"Invalid character in response header {name!r}")
            size = len(name)
            if size == 14 or size == 10 or size == 17 or size == 4 or size == 6:
                if lname == b"content-length":
                    if not _digits(value.strip()) or length >= 0:
                        raise RuntimeError(f"Invalid Content-Length {value!r}")
                    length = int(value)
                elif lname == b"connection":
                    if b"close" in value.lower():
                        keep_alive = raw.keep_alive = False
                    continue  # squall writes its own
                elif lname == b"transfer-encoding":
                    continue  # squall frames the body itself
                elif lname == b"date":
                    has_date = True
                elif lname == b"server":
                    has_server = True
            append(b"%b: %b\r\n" % (name, value))
        no_body = status < 200 or status in _NO_BODY_STATUSES
        if no_body or raw.method == "HEAD":
            self.with_body = False
            if not no_body and length < 0 and not more and body:
                append(b"Content-Length: %d\r\n" % len(body))
        elif length >= 0:
            self.length = length
        elif not more:
            append(b"Content-Length: %d\r\n" % len(body))
        elif raw.version == "1.1":
            self.chunked = True
            append(b"Transfer-Encoding: chunked\r\n")
        else:
            keep_alive = raw.keep_alive = False  # close-delimited
        if not has_date and not has_server:
            append(CLOCK.date_server)
        elif not (has_date and has_server):
            date, _, server = CLOCK.date_server.partition(b"\r\n")
            append(server if has_date else date + b"\r\n")
        if raw.version == "1.1":
            if not keep_alive:
                append(b"Connection: close\r\n")
        elif keep_alive:
            append(b"Connection: keep-alive\r\n")
        append(b"\r\n")
        return b"".join(parts)

    # -- the end --------------------------------------------------------------------------

    def crashed(self, exc: Exception) -> None:
        """The application raised: a 500 if nothing was written yet, else cut the response."""
        self.raw.keep_alive = False
        conn = self.conn
        if conn.transport is None:
            log.debug("ASGI application raised after the client left", exc_info=exc)
        else:
            log.error("Exception in ASGI application", exc_info=exc)
        self._give_up()

    def unfinished(self) -> None:
        """The application returned without completing its response."""
        self.raw.keep_alive = False
        if self.state == _IDLE:
            log.error("ASGI application returned without starting a response")
        else:
            log.error("ASGI application returned without completing the response")
        self._give_up()

    def _give_up(self) -> None:
        state = self.state
        self.state = DONE
        self._wake()
        conn = self.conn
        if state < STREAMING and conn.transport is not None and not conn.response_started:
            conn.write(error_response(500, "Internal Server Error"))
