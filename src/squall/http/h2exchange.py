"""H2Exchange: one HTTP/2 stream as an :class:`~.exchange.Exchange`.

The web and ASGI layers answer a request through its exchange and never write protocol bytes,
so an HTTP/2 stream is one more kind of exchange: the same response contract (``respond``,
``start``/``write``/``end``, ``fail``...), kept with HEADERS and DATA frames instead of an
HTTP/1.1 head and body framing. The frames themselves are made by the connection
(http/h2.py, the :class:`StreamSender` here): this module does not import the HTTP/2 library,
so that it compiles with the rest of the request path without it.

The body framing table is the same (:func:`~.exchange.body_framing`): a declared length is
enforced (bytes past it are cut; a response ending short of it resets the stream, the HTTP/2
way of saying "incomplete"), HEAD/1xx/204/304 carry no DATA, and an unknown length is simply
DATA frames until END_STREAM. Connection-specific fields (Connection, Transfer-Encoding,
Keep-Alive, Upgrade...) are dropped, as RFC 9113 8.2.2 requires.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, Protocol

from .clock import CLOCK, REASONS
from .exchange import (
    COMPLETE,
    FIXED_LENGTH,
    HEAD_HELD,
    NO_BODY,
    SENDING,
    WAITING,
    Exchange,
    PlainHead,
    _bad_name,
    _bad_str_value,
    _bad_value,
    body_framing,
)
from .output import Output
from .sendfile import read_file

if TYPE_CHECKING:
    import asyncio

    from .streams import StreamReader

__all__ = ("H2Exchange", "StreamOutput", "StreamSender")

log = logging.getLogger("squall.server")

Fields = list[tuple[bytes, bytes]]

# RST_STREAM error codes (RFC 9113 7).
NO_ERROR: Final = 0x0
INTERNAL_ERROR: Final = 0x2

# Fields that belong to one HTTP/1.1 connection and are malformed in HTTP/2 (RFC 9113 8.2.2):
# dropped from responses (Content-Length is taken as the declared length, and sent by us).
_CONNECTION_FIELDS: Final = frozenset(
    (
        b"connection",
        b"transfer-encoding",
        b"keep-alive",
        b"proxy-connection",
        b"upgrade",
        b"content-length",
        b"date",
        b"server",
    )
)

_STATUS: Final[dict[int, bytes]] = {}
_NAMES: Final[dict[bytes, bytes]] = {}  # field names seen valid -> lower-cased
_CTYPES: Final[dict[str, bytes]] = {}


class StreamSender(Protocol):
    """What an :class:`H2Exchange` asks of its HTTP/2 connection (http/h2.py)."""

    def send_head(self, stream_id: int, fields: Fields, end: bool) -> None:
        """A HEADERS frame (the response head, or an informational 1xx); ``end``: no body."""

    def send_body(self, stream_id: int, data: bytes, end: bool) -> None:
        """DATA, within the flow-control windows (the rest waits for WINDOW_UPDATE);
        ``end`` sets END_STREAM after the last byte."""

    def send_trailers(self, stream_id: int, fields: Fields) -> None:
        """A HEADERS frame with END_STREAM after the stream's DATA (once that has all gone)."""

    def reset(self, stream_id: int, code: int) -> None:
        """RST_STREAM: the response is cut (INTERNAL_ERROR) or the request body is not wanted
        (NO_ERROR, after a complete response)."""

    async def drain_stream(self, stream_id: int) -> None:
        """Wait until the stream's unsent DATA has gone out (its window opened)."""


class StreamOutput(Output):
    """The ``out`` of an :class:`H2Exchange`: ``drain()`` waits on the stream's flow-control
    window as well as the socket (what the web and ASGI layers await after a body write)."""

    __slots__ = ("sender", "stream_id")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.Transport | None,
        sender: StreamSender,
        stream_id: int,
    ) -> None:
        super().__init__(loop)
        self.transport = transport
        self.sender = sender
        self.stream_id = stream_id

    async def drain(self) -> None:
        if self.transport is None:
            raise ConnectionResetError("Connection lost")
        await self.sender.drain_stream(self.stream_id)


class _DateServer:
    """The Date and Server fields, as HTTP/2 pairs, remade when the clock's second changes."""

    __slots__ = ("fields", "source")

    def __init__(self) -> None:
        self.source = b""
        self.fields: Fields = []

    def get(self) -> Fields:
        source = CLOCK.date_server
        if source is not self.source:
            date, _, rest = source.partition(b"\r\n")
            server = rest.partition(b"\r\n")[0]
            self.fields = [
                (b"date", date.partition(b": ")[2]),
                (b"server", server.partition(b": ")[2]),
            ]
            self.source = source
        return self.fields


_DATE_SERVER: Final = _DateServer()


def _status(status: int) -> bytes:
    value = _STATUS.get(status)
    if value is None:
        if type(status) is not int or not 100 <= status <= 999:
            raise ValueError(f"Invalid HTTP status {status!r}: three digits, 100 to 999")
        value = _STATUS[status] = b"%d" % status
    return value


def _ctype(ctype: str) -> bytes:
    value = _CTYPES.get(ctype)
    if value is None:
        if _bad_str_value(ctype):
            raise ValueError("Invalid character in response header 'Content-Type'")
        value = ctype.encode("utf-8")
        if len(_CTYPES) < 256:
            _CTYPES[ctype] = value
    return value


def _trailer_fields(trailers: Iterable[tuple[bytes, bytes]]) -> Fields:
    fields: Fields = []
    for name, value in trailers:
        if type(name) is not bytes or type(value) is not bytes:
            raise ValueError(f"Trailer field {name!r} is not a pair of bytes")
        if not name or _bad_name(name) or _bad_value(value):
            raise ValueError(f"Invalid character in trailer field {name!r}")
        lname = name.lower()
        if lname not in _CONNECTION_FIELDS:
            fields.append((lname, value))
    return fields


class H2Exchange(Exchange):
    """One request stream of an HTTP/2 connection, and its response as frames.

    Constructed like an :class:`~.exchange.Exchange` (``Request.clone()`` makes one that way),
    with a :class:`StreamOutput` as ``out``: it names the connection and the stream.
    ``version`` is ``"2"`` (the ASGI ``http_version``; the web layer maps it to
    ``HttpVersion(2, 0)``). ``keep_alive`` means nothing here: a stream never closes its
    connection.
    """

    __slots__ = ("fields", "stream")

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
        super().__init__(
            method, target, version, headers, keep_alive, upgrade, expect_continue, body, out
        )
        if not isinstance(out, StreamOutput):
            raise TypeError("An H2Exchange writes through a StreamOutput")
        self.stream = out
        self.fields: Fields = []  # the response head, while HEAD_HELD

    def __repr__(self) -> str:
        return f"<H2Exchange {self.method} {self.target!r} stream {self.stream.stream_id}>"

    # -- whole responses --------------------------------------------------------------------

    def respond_plain(self, head: PlainHead, body: bytes) -> None:
        if self.state == WAITING and self.method != "HEAD":
            self.state = COMPLETE
            self.status = 200
            fields = [
                (b":status", b"200"),
                (b"content-type", _ctype(head.ctype)),
                (b"content-length", b"%d" % len(body)),
            ]
            fields.extend(_DATE_SERVER.get())
            stream = self.stream
            sender = stream.sender
            if body:
                sender.send_head(stream.stream_id, fields, False)
                sender.send_body(stream.stream_id, body, True)
            else:
                sender.send_head(stream.stream_id, fields, True)
            self._settle()
        else:
            self.respond(200, None, head.ctype, None, body)

    def respond_error(self, status: int, detail: str) -> None:
        started = self.state >= SENDING
        self.keep_alive = False
        self.state = COMPLETE
        self.status = status
        self.fields = []
        self._settle()
        stream = self.stream
        if stream.transport is None:
            return
        if started:  # too late for an answer: cut the response
            stream.sender.reset(stream.stream_id, INTERNAL_ERROR)
            return
        body = f"{status} {REASONS.get(status, '')}: {detail}\n".encode()
        fields = [
            (b":status", _status(status)),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
        ]
        fields.extend(_DATE_SERVER.get())
        no_body = self.method == "HEAD" or not self.allows_body_status(status)
        stream.sender.send_head(stream.stream_id, fields, no_body)
        if not no_body:
            stream.sender.send_body(stream.stream_id, body, True)

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
        """As :meth:`Exchange.start`; ``reason`` is checked but not sent (HTTP/2 has none),
        ``close`` means nothing to a stream."""
        if self.state != WAITING:
            raise RuntimeError("The response has already started")
        if reason is not None and _bad_str_value(reason):
            raise ValueError("Reason cannot contain \\r, \\n or NUL")
        head: Fields = [(b":status", _status(status))]
        if ctype is not None:
            head.append((b"content-type", _ctype(ctype)))
        date = server = False
        if fields is not None:
            given = -1
            for name, value in fields:
                if type(name) is not bytes or type(value) is not bytes:
                    raise ValueError(f"Header field {name!r} is not a pair of bytes")
                lname = _NAMES.get(name)
                if lname is None:
                    if not name or _bad_name(name):
                        raise ValueError(f"Invalid character in response header {name!r}")
                    lname = name.lower()
                    if len(_NAMES) < 512:
                        _NAMES[name] = lname
                if _bad_value(value):
                    raise ValueError(f"Invalid character in response header {name!r}")
                if lname in _CONNECTION_FIELDS:
                    if lname == b"content-length":
                        value = value.strip()
                        if not value.isdigit() or (given >= 0 and int(value) != given):
                            raise ValueError(f"Invalid Content-Length {value!r}")
                        given = int(value)
                        continue
                    if lname == b"date":
                        date = True
                    elif lname == b"server":
                        server = True
                    else:
                        continue  # connection-specific: malformed in HTTP/2
                    if not value.strip():
                        continue  # an empty Date or Server: none (the application removed it)
                head.append((lname, value))
            if given >= 0:
                length = given
        framing = body_framing(self.method, "1.1", status, length)
        if framing == FIXED_LENGTH:
            head.append((b"content-length", b"%d" % length))
            self.declared = length
        elif length >= 0 and self.method == "HEAD" and self.allows_body_status(status):
            head.append((b"content-length", b"%d" % length))  # the length a GET would have had
        if not (date and server):
            for pair in _DATE_SERVER.get():
                if not (date if pair[0] == b"date" else server):
                    head.append(pair)
        self.framing = framing
        self.status = status
        self.fields = head
        self.state = HEAD_HELD

    def head_fields(self) -> list[tuple[str, str]]:
        """As :meth:`Exchange.head_fields`: the HEADERS frame's fields, without ``:status``."""
        return [
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in self.fields
            if not name.startswith(b":")
        ]

    def send_head(self) -> None:
        if self.state == HEAD_HELD:
            self._head_out(False)

    def _head_out(self, end: bool) -> None:
        stream = self.stream
        fields = self.fields
        self.fields = []
        self._invite_body()
        self.state = SENDING
        stream.sender.send_head(stream.stream_id, fields, end)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        state = self.state
        data = self._body_piece(data)
        if state == HEAD_HELD:
            self._head_out(False)
        if data:
            stream = self.stream
            stream.sender.send_body(stream.stream_id, data, False)

    def end(self, data: bytes | bytearray | memoryview = b"") -> None:
        state = self.state
        if state == COMPLETE:
            return
        if state == WAITING:
            raise RuntimeError("Cannot end a response that has not started")
        data, short = self._last_piece(data, "stream reset")
        stream = self.stream
        if state == HEAD_HELD:
            self._head_out(not data and not short)
            if not data and not short:
                self.state = COMPLETE
                self._settle()
                return
        self.state = COMPLETE
        self._settle()
        if short:
            if data:
                stream.sender.send_body(stream.stream_id, data, False)
            stream.sender.reset(stream.stream_id, INTERNAL_ERROR)
        else:
            stream.sender.send_body(stream.stream_id, data, True)

    def end_with_trailers(
        self, data: bytes | bytearray | memoryview, trailers: Iterable[tuple[bytes, bytes]]
    ) -> None:
        """:meth:`end`, then the trailer fields in a HEADERS frame (lower-cased, checked;
        connection-specific and pseudo-header fields are not allowed and dropped)."""
        state = self.state
        if state in (WAITING, COMPLETE) or self.framing == NO_BODY:
            self.end(data)
            return
        fields = _trailer_fields(trailers)
        data, short = self._last_piece(data, "stream reset")
        if short or not fields:
            self.end(data)
            return
        stream = self.stream
        if state == HEAD_HELD:
            self._head_out(False)
        self.state = COMPLETE
        self._settle()
        if data:
            stream.sender.send_body(stream.stream_id, data, False)
        stream.sender.send_trailers(stream.stream_id, fields)

    async def send_file(self, fd: int, offset: int, count: int, chunk_size: int) -> None:
        """Read the file and send it as DATA (no sendfile: the bytes are framed)."""
        async for data in read_file(fd, offset, count, chunk_size):
            self.write(data)
            await self.stream.drain()

    def fail(self) -> bool:
        self.keep_alive = False
        state = self.state
        if state in (WAITING, HEAD_HELD):
            self.fields = []
            self.state = WAITING
            return True
        self.state = COMPLETE
        self._settle()
        stream = self.stream
        if stream.transport is not None:
            stream.sender.reset(stream.stream_id, INTERNAL_ERROR)
        return False

    # -- 100 Continue -----------------------------------------------------------------------

    def send_continue(self) -> None:
        stream = self.stream
        if self.state == WAITING and stream.transport is not None and not self.left:
            stream.sender.send_head(stream.stream_id, [(b":status", b"100")], False)

    def _invite_body(self) -> None:
        """A pending 100 goes out before a head sent ahead of the body (see Exchange)."""
        stream = self.stream
        if self.body.take_continue() and stream.transport is not None:
            stream.sender.send_head(stream.stream_id, [(b":status", b"100")], False)
