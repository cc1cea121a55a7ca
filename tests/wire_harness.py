"""Drive :class:`HttpProtocol` without sockets: a fake transport, a driver, a strict reader.

The protocol is fed from loop callbacks (never from inside a task), as a real transport feeds
it, so handlers are stepped eagerly exactly as in production. The fake transport honours
``pause_reading`` (nothing is fed while reading is paused) and can play a client that does not
read: written bytes then stay "buffered" and ``pause_writing`` is called past a high-water mark.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import squall
from squall import web
from squall.http import HttpProtocol, HttpServer


class FakeTransport(asyncio.Transport):
    """What HttpProtocol needs from a transport, recording everything written."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, reader: bool = True) -> None:
        super().__init__()
        self.loop = loop
        self.protocol: HttpProtocol | None = None
        self.out = bytearray()
        self.buffered = 0  # written but not yet "read by the client"
        self.reader = reader  # False: a client that never reads (the buffer only grows)
        self.high_water = 65536
        self.write_paused = False
        self.reading = True
        self.eof_written = False
        self.closed = False
        self.writes_after_eof = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            return
        if self.eof_written:  # as asyncio's and uvloop's transports do
            self.writes_after_eof += 1
            raise RuntimeError("Cannot call write() after write_eof()")
        self.out += data
        if self.reader:
            return
        self.buffered += len(data)
        if self.buffered > self.high_water and not self.write_paused:
            self.write_paused = True
            assert self.protocol is not None
            self.protocol.pause_writing()

    def client_reads(self) -> None:
        """The client reads everything buffered: writing resumes."""
        self.buffered = 0
        if self.write_paused:
            self.write_paused = False
            assert self.protocol is not None
            self.protocol.resume_writing()

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write_eof(self) -> None:
        self.eof_written = True

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.protocol is not None:
                self.loop.call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )


class Trouble(logging.Handler):
    """Collects squall's own-bug log records (a parse callback or the handler bridge failing)."""

    MARKERS = ("Error while parsing a request", "Unhandled exception in request handler")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(m in message for m in self.MARKERS):
            self.records.append(f"{message}: {record.exc_info!r}")


@dataclass
class Outcome:
    out: bytes
    errors: list[BaseException] = field(default_factory=list)
    loop_errors: list[str] = field(default_factory=list)
    closed: bool = False
    eof_written: bool = False
    writes_after_eof: int = 0
    max_buffered: int = 0
    handled: int = 0


# -- the application under test -------------------------------------------------------------------


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def _echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


async def _ignore(request: web.Request) -> web.Response:
    return web.Response(text="ignored")


async def _stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    await resp.prepare(request)
    async for chunk in request.content.iter_any():
        await resp.write(chunk)
    await resp.write(b"end")
    await resp.write_eof()
    return resp


async def _json(request: web.Request) -> web.Response:
    return web.json_response({"got": await request.json()})


def make_app() -> web.Application:
    app = web.Application()
    app.add_routes(
        [
            web.route("*", "/hello", _hello),
            web.route("*", "/echo", _echo),
            web.route("*", "/ignore", _ignore),
            web.route("*", "/stream", _stream),
            web.post("/json", _json),
        ]
    )
    return app


class Harness:
    """One loop, one app, one HttpServer; :meth:`run` plays one connection to the end."""

    def __init__(self, app: web.Application | None = None, **runner_kwargs: Any) -> None:
        self.loop = squall.new_event_loop()
        self.trouble = Trouble()
        logging.getLogger("squall").addHandler(self.trouble)
        self.loop_errors: list[str] = []
        self.loop.set_exception_handler(lambda _loop, ctx: self.loop_errors.append(str(ctx)))
        runner_kwargs.setdefault("access_log", None)
        self.runner = web.AppRunner(app or make_app(), **runner_kwargs)
        self.loop.run_until_complete(self.runner.setup())
        assert self.runner.server is not None
        self.server: HttpServer = self.runner.server
        self.handled = 0
        inner = self.server.handler

        async def counting(raw: Any, conn: Any) -> None:
            self.handled += 1
            await inner(raw, conn)

        self.server.handler = counting

    def close(self) -> None:
        self.loop.run_until_complete(self.runner.cleanup())
        logging.getLogger("squall").removeHandler(self.trouble)
        self.loop.close()

    def run(
        self,
        chunks: Iterable[bytes],
        *,
        eof: bool = True,
        reader: bool = True,
        spins: int = 30,
        between: Callable[[FakeTransport], None] | None = None,
    ) -> Outcome:
        """Feed ``chunks`` one ``data_received`` each, then EOF (half-close), then disconnect.

        ``between`` plays the client between reads (e.g. ``FakeTransport.client_reads``).
        """
        self.handled = 0
        self.trouble.records.clear()
        self.loop_errors.clear()
        outcome = self.loop.run_until_complete(
            self._drive(list(chunks), eof, reader, spins, between)
        )
        outcome.handled = self.handled
        outcome.loop_errors = [*self.loop_errors, *self.trouble.records]
        return outcome

    async def _drive(
        self,
        chunks: list[bytes],
        eof: bool,
        reader: bool,
        spins: int,
        between: Callable[[FakeTransport], None] | None,
    ) -> Outcome:
        loop = self.loop
        proto = self.server()
        transport = FakeTransport(loop, reader=reader)
        transport.protocol = proto
        errors: list[BaseException] = []
        max_buffered = 0

        async def call(fn: Callable[..., Any], *args: Any) -> Any:
            fut: asyncio.Future[Any] = loop.create_future()

            def run() -> None:
                try:
                    fut.set_result(fn(*args))
                except BaseException as exc:  # the property under test: nothing escapes
                    errors.append(exc)
                    fut.set_result(None)

            loop.call_soon(run)
            return await fut

        async def settle() -> bool:
            """Spin the loop; False if reading stays paused (the client would be stuck)."""
            for _ in range(spins):
                await asyncio.sleep(0)
                if between is not None:
                    between(transport)
                if transport.reading or transport.closed:
                    break
            return transport.reading

        await call(proto.connection_made, transport)
        for chunk in chunks:
            if not await settle() or transport.closed:
                break
            await call(proto.data_received, chunk)
            max_buffered = max(max_buffered, transport.buffered)
            if between is not None:
                between(transport)
        if eof and not transport.closed and await settle() and not await call(proto.eof_received):
            transport.close()
        for _ in range(spins):
            await asyncio.sleep(0)
            if between is not None:
                between(transport)
        max_buffered = max(max_buffered, transport.buffered)
        closed = transport.closed
        eof_written = transport.eof_written
        transport.close()  # the client goes away: everything must unwind
        for _ in range(spins):
            await asyncio.sleep(0)
        return Outcome(
            bytes(transport.out),
            errors,
            closed=closed,
            eof_written=eof_written,
            writes_after_eof=transport.writes_after_eof,
            max_buffered=max_buffered,
        )


# -- reading what the server wrote, strictly -------------------------------------------------------

_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-9]\d\d) [\t -~\x80-\xff]*")
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\t -~\x80-\xff]*?)[ \t]*")
_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,16})")


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def closes(self) -> bool:
        return (self.header(b"connection") or b"").lower() == b"close"


class Malformed(AssertionError):
    """The server wrote something that is not a well-formed HTTP/1.1 response stream."""


def read_replies(data: bytes, heads: Iterable[bool] = ()) -> tuple[list[Reply], bool]:
    """Split ``data`` into responses, strictly (RFC 9112); returns (replies, complete).

    ``heads`` says, for each final response in order, whether it answers a HEAD request (it then
    has no body whatever its framing headers say). ``complete`` is False when the stream ends
    inside a response (the connection was cut mid-response, which is allowed).
    """
    head_flags = iter(heads)
    replies: list[Reply] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return replies, False
        lines = data[pos:end].split(b"\r\n")
        pos = end + 4
        match = _STATUS_LINE.fullmatch(lines[0])
        if not match:
            raise Malformed(f"bad status line {lines[0][:120]!r}")
        status = int(match.group(1))
        headers = []
        for line in lines[1:]:
            field_match = _FIELD.fullmatch(line)
            if not field_match:
                raise Malformed(f"bad header line {line[:120]!r}")
            headers.append((field_match.group(1), field_match.group(2)))
        reply = Reply(status, headers, b"")
        lengths = [v for k, v in headers if k.lower() == b"content-length"]
        te = [v for k, v in headers if k.lower() == b"transfer-encoding"]
        if len(lengths) > 1 or (lengths and te):
            raise Malformed(f"conflicting framing in {headers!r}")
        replies.append(reply)
        if status < 200:
            if lengths or te:
                raise Malformed("framing headers on a 1xx response")
            continue
        is_head = next(head_flags, False)
        if is_head or status in (204, 304):
            continue
        if te:
            if te[0].lower() != b"chunked":
                raise Malformed(f"unexpected Transfer-Encoding {te[0]!r}")
            body = bytearray()
            while True:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    return replies, False
                size_match = _CHUNK_SIZE.fullmatch(data[pos:eol])
                if not size_match:
                    raise Malformed(f"bad chunk size line {data[pos:eol][:40]!r}")
                size = int(size_match.group(1), 16)
                pos = eol + 2
                if size == 0:
                    if data[pos : pos + 2] != b"\r\n":
                        if len(data) - pos < 2:
                            return replies, False
                        raise Malformed("trailers or junk after the last chunk")
                    pos += 2
                    break
                if len(data) < pos + size + 2:
                    return replies, False
                if data[pos + size : pos + size + 2] != b"\r\n":
                    raise Malformed("chunk data not followed by CRLF")
                body += data[pos : pos + size]
                pos += size + 2
            reply.body = bytes(body)
        elif lengths:
            if not lengths[0].isdigit():
                raise Malformed(f"bad Content-Length {lengths[0]!r}")
            n = int(lengths[0])
            if len(data) < pos + n:
                reply.body = data[pos:]
                return replies, False
            reply.body = data[pos : pos + n]
            pos += n
        else:  # close-delimited: must be the last thing on the connection
            reply.body = data[pos:]
            pos = len(data)
    return replies, True
