"""The exchange: one request on an HTTP/1.x connection, and the framing of its response.

Every HTTP/1.1 response byte is made here: the web and ASGI layers hand an :class:`Exchange` a
status, header fields and body bytes, and it alone writes the status line, the framing fields
(Content-Length, Transfer-Encoding, Connection) and Date/Server, picks the body framing once
(:func:`body_framing`) and enforces it, and decides whether the connection stays open. The
wire-level refusals (:func:`error_response`) and ``100 Continue`` are made here too.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from .clock import CLOCK, REASONS
from .sendfile import read_file, send_file

if TYPE_CHECKING:
    from .output import Output
    from .streams import StreamReader

__all__ = (
    "CHUNKED",
    "COMPLETE",
    "FIXED_LENGTH",
    "HEAD_HELD",
    "NO_BODY",
    "NO_BODY_STATUSES",
    "SENDING",
    "UNTIL_CLOSE",
    "WAITING",
    "Exchange",
    "PlainHead",
    "body_framing",
    "encode_fields",
    "error_response",
    "plain_head",
)

log = logging.getLogger("squall.server")

NO_BODY_STATUSES: Final = frozenset((204, 304))
"""Final statuses whose responses never carry a body (besides every 1xx), RFC 9110 15.3.5/15.4.5."""

# How a response body is delimited on the wire: picked once per response by body_framing().
NO_BODY: Final = 0  # none may follow: a HEAD request, or a 1xx, 204 or 304 status
FIXED_LENGTH: Final = 1  # Content-Length: exactly that many bytes, never more
CHUNKED: Final = 2  # Transfer-Encoding: chunked (HTTP/1.1, length unknown)
UNTIL_CLOSE: Final = 3  # the connection's close ends it (HTTP/1.0, length unknown)

FRAMING_NAMES: Final = ("no body", "fixed length", "chunked", "until close")

# The progress of one response.
WAITING: Final = 0  # nothing of it yet (a 100 Continue may have gone out)
HEAD_HELD: Final = 1  # its head is made, its framing chosen; the head leaves with the first body
SENDING: Final = 2  # its head is on the wire; body bytes follow
COMPLETE: Final = 3  # complete, or given up (the connection then closes)

_STATUS_LINES: Final[dict[tuple[str, int], bytes]] = {}


def status_line(version: str, status: int, reason: str | None = None) -> bytes:
    """``b"HTTP/1.1 200 OK\\r\\n"``, cached for the standard reason phrases.

    Raises ValueError for a status that is not three digits or a reason with CR, LF or NUL:
    either would make the response unreadable or split it.
    """
    if reason is None:
        key = (version, status)
        line = _STATUS_LINES.get(key)
        if line is None:
            _check_status(status)
            phrase = REASONS.get(status, "")
            line = f"HTTP/{version} {status} {phrase}\r\n".encode("latin-1")
            _STATUS_LINES[key] = line
        return line
    _check_status(status)
    if "\r" in reason or "\n" in reason or "\x00" in reason:
        raise ValueError("Reason cannot contain \\r, \\n or NUL")
    return f"HTTP/{version} {status} {reason}\r\n".encode()


def _check_status(status: int) -> None:
    if type(status) is not int or not 100 <= status <= 999:
        raise ValueError(f"Invalid HTTP status {status!r}: three digits, 100 to 999")


_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK: Final = b"0\r\n\r\n"


def body_framing(method: str, version: str, status: int, length: int) -> int:
    """How a response's body is delimited (RFC 9112 6.3): the one table every response obeys.

    ``length`` is the body's declared length, -1 when it is not known before the body is sent.
    """
    if method == "HEAD" or status < 200 or status in NO_BODY_STATUSES:
        return NO_BODY
    if length >= 0:
        return FIXED_LENGTH
    if version == "1.1":
        return CHUNKED
    return UNTIL_CLOSE


# -- header fields ------------------------------------------------------------------------

_bad_name: Final = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]").search
_bad_value: Final = re.compile(rb"[\x00\r\n]").search
_bad_str_value: Final = re.compile(r"[\x00\r\n]").search
_digits: Final = re.compile(rb"[0-9]+").fullmatch

# Field names seen valid, lower-cased: applications send the same few names on every response.
_NAMES: Final[dict[bytes, bytes]] = {}
_FRAMING_NAMES: Final = frozenset(
    (b"content-length", b"transfer-encoding", b"connection", b"date", b"server")
)


class _Fields:
    """Header fields given by an application, checked, framing fields set apart.

    Names and values are bytes, as on the wire (ASGI's form; the web layer encodes its str
    fields as UTF-8, as aiohttp does).
    """

    __slots__ = ("connection", "date", "length", "length_line", "lines", "server")

    def __init__(self, fields: Iterable[tuple[Any, Any]]) -> None:  # (checked below)
        lines: list[bytes] = []
        self.length = -1  # the application's Content-Length, -1 if none
        self.length_line = b""  # ... and its field line as the application wrote it
        self.connection = b""  # the application's Connection field, b"" if none
        self.date = self.server = False
        for given_name, given_value in fields:
            if type(given_name) is not bytes or type(given_value) is not bytes:
                raise ValueError(f"Header field {given_name!r} is not a pair of bytes")
            name: bytes = given_name
            value: bytes = given_value
            lname = _NAMES.get(name)
            if lname is None:
                if not name or _bad_name(name):
                    raise ValueError(f"Invalid character in response header {name!r}")
                lname = name.lower()
                if len(_NAMES) < 512:
                    _NAMES[name] = lname
            if _bad_value(value):
                raise ValueError(f"Invalid character in response header {name!r}")
            line = b"%b: %b\r\n" % (name, value)
            if lname in _FRAMING_NAMES:
                if lname == b"content-length":
                    value = value.strip()
                    if not _digits(value) or (self.length >= 0 and int(value) != self.length):
                        raise ValueError(f"Invalid Content-Length {value!r}")
                    self.length = int(value)
                    self.length_line = line
                    continue  # written by the exchange, once, with the framing
                if lname == b"transfer-encoding":
                    continue  # the exchange frames the body itself
                if lname == b"connection":
                    self.connection = value
                    continue
                if lname == b"date":
                    self.date = True
                else:
                    self.server = True
                if not value.strip():
                    continue  # an empty Date or Server: none (the application removed it)
            lines.append(line)
        self.lines = b"".join(lines)


def encode_fields(fields: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """str header fields as the bytes an :class:`Exchange` takes (UTF-8, as aiohttp sends)."""
    return [(name.encode("utf-8"), value.encode("utf-8")) for name, value in fields]


def _decode(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


_CTYPE_LINES: Final[dict[str, bytes]] = {}


def _ctype_line(ctype: str) -> bytes:
    line = _CTYPE_LINES.get(ctype)
    if line is None:
        if _bad_str_value(ctype):
            raise ValueError("Invalid character in response header 'Content-Type'")
        line = b"Content-Type: %b\r\n" % ctype.encode("utf-8")
        if len(_CTYPE_LINES) < 256:
            _CTYPE_LINES[ctype] = line
    return line


class PlainHead:
    """The head of the commonest response, a 200 with a typed body: made once per type.

    ``prefix`` is ``HTTP/1.1 200 OK``, the Content-Type line and ``Content-Length: ``; the
    exchange adds the length, Date/Server and the body (:meth:`Exchange.respond_plain`).
    """

    __slots__ = ("ctype", "prefix")

    def __init__(self, ctype: str) -> None:
        self.ctype = ctype
        self.prefix = status_line("1.1", 200) + _ctype_line(ctype) + b"Content-Length: "


_PLAIN_HEADS: Final[dict[str, PlainHead]] = {}


def plain_head(ctype: str) -> PlainHead:
    """The :class:`PlainHead` of a 200 with a body of type ``ctype``."""
    head = _PLAIN_HEADS.get(ctype)
    if head is None:
        head = PlainHead(ctype)
        if len(_PLAIN_HEADS) < 256:
            _PLAIN_HEADS[ctype] = head
    return head


def error_response(status: int, detail: str) -> bytes:
    """A complete, closing, plain-text response for a refusal made before any exchange exists
    (a request the wire layer rejects) or in place of one that failed."""
    body = f"{status} {REASONS.get(status, '')}: {detail}\n".encode()
    return b"%b%bContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n%b\r\n%b" % (
        status_line("1.1", status),
        CLOCK.date_server,
        len(body),
        b"Connection: close\r\n",
        body,
    )


class Exchange:
    """One request, as parsed, and its response, as framed on the wire.

    The request's head is kept as the parser produced it (bytes, a list of raw header pairs);
    the web and ASGI layers decode only what their applications ask for. ``keep_alive`` starts
    as the request allows it and ends as what the response decided: the connection reads the
    next request only if it is still true once the response is complete.

    A response is either whole (:meth:`respond`, :meth:`respond_plain`: head and body in one
    write) or streamed (:meth:`start`, then :meth:`write` and :meth:`end`). Its body is framed
    as :func:`body_framing` says, and held to it: bytes past a declared length are cut (logged
    once, the connection closed after the response), a response that ends short of it closes
    the connection, and a response that may carry no body (HEAD, 1xx, 204, 304) sends none.
    """

    __slots__ = (
        "_over",
        "body",
        "cut",
        "declared",
        "expect_continue",
        "framing",
        "headers",
        "held",
        "keep_alive",
        "left",
        "method",
        "out",
        "sent",
        "state",
        "status",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: bytes,
        version: str,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        upgrade: bool,
        expect_continue: bool,
        body: StreamReader,
        out: Output,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.upgrade = upgrade
        self.expect_continue = expect_continue
        self.body = body
        self.out = out
        self.state = WAITING
        self.status = 0
        self.framing = NO_BODY
        self.declared = -1  # the body's declared length while framing is FIXED_LENGTH
        self.sent = 0  # body bytes sent (FIXED_LENGTH)
        self.cut = False  # bytes past the declared length were dropped (logged once)
        self.held = b""  # the head, while HEAD_HELD
        self.left = False  # the client closed its side or the connection: see client_left()
        self._over: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<Exchange {self.method} {self.target!r} HTTP/{self.version}>"

    # -- questions --------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether any byte of the response (not counting a 100 Continue) went out."""
        return self.state >= SENDING

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE

    def over(self) -> asyncio.Future[None]:
        """A future (shared: never cancel it) done once the response is complete or the client
        has left: what an ASGI ``receive()`` waits on before ``http.disconnect``.

        (A response sent by :meth:`respond_plain` does not complete it: the web layer, which
        alone uses that, never waits on it.)"""
        fut = self._over
        if fut is None:
            fut = self._over = asyncio.get_running_loop().create_future()
            if self.state == COMPLETE or self.left:
                fut.set_result(None)
        return fut

    def _settle(self) -> None:
        fut = self._over
        if fut is not None and not fut.done():
            fut.set_result(None)

    def client_left(self) -> None:
        """The client closed its side of the connection (EOF) or the connection is gone.

        From now on, streamed body writes raise ConnectionResetError (the signal streaming
        handlers stop on) and :meth:`over` is done. A response still made whole is written
        while the transport allows it: a client that only half-closed gets its answer. The
        connection closes after this response.
        """
        if not self.left:
            self.left = True
            self.keep_alive = False
            self._settle()

    def allows_body(self, status: int) -> bool:
        """Whether a response with ``status`` to this request may carry a body."""
        return self.method != "HEAD" and status >= 200 and status not in NO_BODY_STATUSES

    @staticmethod
    def allows_body_status(status: int) -> bool:
        """Whether a response with ``status`` may carry a body (to any method but HEAD)."""
        return status >= 200 and status not in NO_BODY_STATUSES

    # -- whole responses --------------------------------------------------------------------

    def respond_plain(self, head: PlainHead, body: bytes) -> None:
        """A 200 of ``head``'s type with ``body``: the commonest response, in one write."""
        if (
            self.keep_alive
            and self.state == WAITING
            and self.version == "1.1"
            and self.method != "HEAD"
        ):
            self.state = COMPLETE
            self.status = 200
            self.out.write(b"%b%d\r\n%b\r\n%b" % (head.prefix, len(body), CLOCK.date_server, body))
        else:
            self.respond(200, None, head.ctype, None, body)

    def respond(
        self,
        status: int,
        reason: str | None,
        ctype: str | None,
        fields: Iterable[tuple[bytes, bytes]] | None,
        body: bytes,
        close: bool = False,
        chunked: bool = False,
    ) -> None:
        """A whole response, head and body in one write.

        ``fields`` are the application's header fields (bytes pairs); a Content-Length
        among them is the declared length (else the body's). ``chunked`` sends the body as one
        chunk (aiohttp's ``enable_chunked_encoding``); ``close`` closes the connection after.
        """
        self.start(status, reason, ctype, fields, -1 if chunked else len(body), close)
        self.end(body)

    def respond_error(self, status: int, detail: str) -> None:
        """squall's own short plain-text answer (a refusal, or in place of a failed response);
        the connection closes after it."""
        self.keep_alive = False
        self.state = COMPLETE
        self.status = status
        self.held = b""
        self._settle()
        if self.out.transport is not None:
            self.out.write(error_response(status, detail))

    # -- streamed responses -----------------------------------------------------------------

    def start(
        self,
        status: int,
        reason: str | None,
        ctype: str | None,
        fields: Iterable[tuple[bytes, bytes]] | None,
        length: int,
        close: bool = False,
    ) -> None:
        """Make the response head and choose the body framing; the head is held until the first
        body bytes (or :meth:`send_head`). ``length`` is the body's length, -1 if unknown.

        Raises ValueError (nothing sent) for a bad status, reason or header field.
        """
        if self.state != WAITING:
            raise RuntimeError("The response has already started")
        parts = [status_line("1.1", status, reason)]
        if ctype is not None:
            parts.append(_ctype_line(ctype))
        connection = b""
        length_line = b""
        date_server = CLOCK.date_server
        if fields is not None:
            given = _Fields(fields)
            parts.append(given.lines)
            if given.length >= 0:
                length = given.length
                length_line = given.length_line
            connection = given.connection
            if given.date or given.server:
                date, _, server = date_server.partition(b"\r\n")
                date_server = (
                    b""
                    if given.date and given.server
                    else (server if given.date else date + b"\r\n")
                )
        framing = body_framing(self.method, self.version, status, length)
        if framing == FIXED_LENGTH:
            parts.append(length_line or b"Content-Length: %d\r\n" % length)
            self.declared = length
        elif framing == CHUNKED:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        elif length >= 0 and self.method == "HEAD" and self.allows_body_status(status):
            # the length a GET would have had
            parts.append(length_line or b"Content-Length: %d\r\n" % length)
        parts.append(date_server)
        keep_alive = self.keep_alive and not close and framing != UNTIL_CLOSE
        if connection and b"close" in connection.lower():
            keep_alive = False
        if status == 101:  # switching protocols: the application's Connection (Upgrade) stands
            if connection:
                parts.append(b"Connection: %b\r\n" % connection)
        elif not keep_alive:
            if self.version == "1.1" or connection:  # (HTTP/1.0 closes unless told otherwise)
                parts.append(b"Connection: close\r\n")
        elif connection:
            parts.append(b"Connection: %b\r\n" % connection)
        elif self.version != "1.1":
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(b"\r\n")
        self.keep_alive = keep_alive
        self.framing = framing
        self.status = status
        self.held = b"".join(parts)
        self.state = HEAD_HELD

    def head_fields(self) -> list[tuple[str, str]]:
        """The header fields of the head :meth:`start` made, in order, as they will be sent
        (empty once the head is on the wire)."""
        fields = []
        for line in self.held.split(b"\r\n")[1:]:
            if not line:
                break
            name, _, value = line.partition(b":")
            fields.append((_decode(name), _decode(value.strip())))
        return fields

    def send_head(self) -> None:
        """Put a held head on the wire now, before any body (a streamed response's prepare())."""
        if self.state == HEAD_HELD:
            head = self.held
            self.held = b""
            self._invite_body()
            self.state = SENDING
            self.out.write(head)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send body bytes, framed as chosen. Raises ConnectionResetError if the client left."""
        state = self.state
        data = self._body_piece(data)
        if data and self.framing == CHUNKED:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        if state == HEAD_HELD:
            data = self.held + data
            self.held = b""
            self._invite_body()
            self.state = SENDING
        if data:
            self.out.write(data)

    def end(self, data: bytes | bytearray | memoryview = b"") -> None:
        """The last body bytes: the response is complete. Idempotent."""
        state = self.state
        if state == COMPLETE:
            return
        if state == WAITING:
            raise RuntimeError("Cannot end a response that has not started")
        data, short = self._last_piece(data, "connection closed")
        if short:
            self.keep_alive = False
        elif self.framing == CHUNKED:
            data = b"%x\r\n%b\r\n0\r\n\r\n" % (len(data), data) if data else _LAST_CHUNK
        if state == HEAD_HELD:
            data = self.held + data
            self.held = b""
        self.state = COMPLETE
        self._settle()
        if data:
            self.out.write(data)

    def end_with_trailers(
        self, data: bytes | bytearray | memoryview, trailers: Iterable[tuple[bytes, bytes]]
    ) -> None:
        """:meth:`end`, then trailer fields (checked as head fields; framing fields dropped):
        in the last chunk of a chunked body. A body of known length, HTTP/1.0's or none at
        all cannot carry them: they are dropped."""
        if self.framing != CHUNKED or self.state in (WAITING, COMPLETE):
            self.end(data)
            return
        lines = _Fields(trailers).lines
        state = self.state
        data, _short = self._last_piece(data, "")  # (chunked: never short)
        tail = (
            b"%x\r\n%b\r\n0\r\n%b\r\n" % (len(data), data, lines)
            if data
            else (b"0\r\n%b\r\n" % lines)
        )
        if state == HEAD_HELD:
            tail = self.held + tail
            self.held = b""
        self.state = COMPLETE
        self._settle()
        self.out.write(tail)

    async def send_file(self, fd: int, offset: int, count: int, chunk_size: int) -> None:
        """Send ``count`` bytes of the open file ``fd`` from ``offset`` as body bytes: with
        ``os.sendfile`` where the framing and the transport allow it (http/sendfile.py)."""
        if self.framing != FIXED_LENGTH or count > self.declared - self.sent:
            async for data in read_file(fd, offset, count, chunk_size):
                self.write(data)
                await self.out.drain()
            return
        self.send_head()
        try:
            await send_file(self.out, fd, offset, count, chunk_size)
        except BaseException:
            self.keep_alive = False  # how much went out is not known: the response is cut
            raise
        self.sent += count

    def _body_piece(self, data: bytes | bytearray | memoryview) -> bytes:
        """write()'s checks, and what of ``data`` the framing lets out (before any chunking)."""
        if self.left:
            raise ConnectionResetError("The client has left")
        state = self.state
        if state != SENDING and state != HEAD_HELD:
            if state == COMPLETE:
                raise RuntimeError("Cannot write to a complete response")
            raise RuntimeError("Cannot write a body before the response head")
        if type(data) is not bytes:
            data = bytes(data)
        framing = self.framing
        if framing == FIXED_LENGTH:
            return self._within_length(data)
        if framing == NO_BODY:
            return b""
        return data

    def _last_piece(self, data: bytes | bytearray | memoryview, then: str) -> tuple[bytes, bool]:
        """end()'s part of ``data`` the framing lets out (before any chunking), and whether the
        response ends short of its declared length (logged, saying ``then``)."""
        if type(data) is not bytes:
            data = bytes(data)
        framing = self.framing
        if framing == FIXED_LENGTH:
            data = self._within_length(data)
            if self.sent < self.declared and not self.cut:
                log.error(
                    "Response ended %d bytes short of its Content-Length (%d): %s",
                    self.declared - self.sent,
                    self.declared,
                    then,
                )
                return data, True
        elif framing == NO_BODY:
            data = b""
        return data, False

    def _within_length(self, data: bytes) -> bytes:
        left = self.declared - self.sent
        if len(data) <= left:
            self.sent += len(data)
            return data
        if not self.cut:
            self.cut = True
            self.keep_alive = False
            log.error(
                "Response body longer than its Content-Length (%d): cut there, connection closed",
                self.declared,
            )
        self.sent = self.declared
        return data[:left]

    def fail(self) -> bool:
        """The response cannot be completed (its handler failed): close after it.

        Returns True if nothing of it went out yet, so that an error response can replace it
        (the held head, if any, is dropped); else the response is cut where it stands.
        """
        self.keep_alive = False
        state = self.state
        if state in (WAITING, HEAD_HELD):
            self.held = b""
            self.state = WAITING
            return True
        self.state = COMPLETE
        self._settle()
        return False

    # -- 100 Continue -----------------------------------------------------------------------

    def send_continue(self) -> None:
        """The body is about to be read: tell a client that waits for it (Expect: 100-continue)."""
        if self.state == WAITING and self.out.transport is not None:
            self.out.write(_CONTINUE)

    def _invite_body(self) -> None:
        """A pending 100 Continue goes out before a head sent ahead of the body: the handler may
        read the body after starting its response, and the client would wait for 100 forever."""
        if self.body.take_continue() and self.out.transport is not None:
            self.out.write(_CONTINUE)
