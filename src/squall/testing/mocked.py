"""make_mocked_request: a real squall ``web.Request`` without a socket, for unit tests."""

from __future__ import annotations

import asyncio
import inspect
import types
from collections.abc import Generator, Mapping
from ssl import SSLContext
from typing import TYPE_CHECKING, Any
from unittest import mock

from multidict import CIMultiDict
from yarl import URL

from ..http.exchange import Exchange
from ..http.limits import Limits
from ..http.output import Output
from ..http.streams import EMPTY_PAYLOAD, StreamReader
from ..web.app import Application
from ..web.matchinfo import UrlMappingMatchInfo
from ..web.request import HttpVersion, HttpVersion11, Request
from ..web.routes import AbstractRoute

if TYPE_CHECKING:
    from ..web.response import StreamResponse

__all__ = ("MockedConnection", "MockedTransport", "make_mocked_coro", "make_mocked_request")

_UNSET: Any = object()


class MockedTransport(asyncio.Transport):
    """A transport that keeps what is written to it in :attr:`written`."""

    def __init__(self, sslcontext: SSLContext | None = None) -> None:
        super().__init__()
        self.written = bytearray()
        self._sslcontext = sslcontext
        self._closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        # What aiohttp's mocked transport reports: no peer, a local socket on port 80.
        if name == "sslcontext":
            return self._sslcontext
        if name == "sockname":
            return ("127.0.0.1", 80)
        return default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def abort(self) -> None:
        self._closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self._closing

    def get_write_buffer_size(self) -> int:
        return 0


_PENDING: set[asyncio.Future[Any]] = set()  # a writer's calls still running (kept referenced)


def _keep(future: asyncio.Future[Any]) -> None:
    _PENDING.add(future)
    future.add_done_callback(_PENDING.discard)


def _step(result: Any) -> None:
    """Run what a writer's method returned: a coroutine now, as far as it goes without
    suspending (a response's prepare() awaits nothing after squall writes), the rest in a task."""
    if not inspect.iscoroutine(result):
        if inspect.isawaitable(result):
            _keep(asyncio.ensure_future(result))
        return
    try:
        waiting = result.send(None)
    except StopIteration:
        return

    @types.coroutine
    def rest() -> Generator[Any, Any, None]:
        pending = waiting
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # (cancelled: into the writer's coroutine)
                try:
                    pending = result.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                pending = result.send(sent)
            except StopIteration:
                return

    async def finish() -> None:
        await rest()

    _keep(asyncio.ensure_future(finish()))


class WriterTransport(asyncio.Transport):
    """The transport of a mocked request's aiohttp writer: the response squall frames is
    handed to the writer as aiohttp's responses hand it theirs. The head becomes
    ``writer.write_headers(status_line, headers)`` (after ``writer.enable_chunking()`` for a
    chunked body and ``writer.enable_compression(coding, None)`` for a compressed one), the
    body's bytes, unframed, ``writer.write(data)``, and the write that completes the body
    ``writer.write_eof(data)``. With ``record``, the bytes as framed also go to
    ``transport`` (the stand-in transport's ``written``)."""

    def __init__(self, writer: Any, transport: Any, method: str, record: bool = False) -> None:
        super().__init__()
        self.writer = writer
        self._transport = transport
        self._record = record
        self._no_body = method == "HEAD"
        self._head = bytearray()
        self._in_body = False
        self._left = -1  # body bytes still owed (-1: until the connection closes)
        self._chunked = False
        self._chunks = bytearray()  # chunked framing not parsed yet

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if self._transport is None:
            return default
        return self._transport.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._record and self._transport is not None:
            self._transport.write(data)
        if not self._in_body:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = bytes(self._head[:end]), bytes(self._head[end + 4 :])
            self._head = bytearray()
            if head.startswith(b"HTTP/1.1 100 "):  # a 100 Continue: not a response head
                self.write(data)
                return
            if self._start(head):
                return
        self._body(bytes(data))

    def _start(self, head: bytes) -> bool:
        """Hand the head to the writer; True if the response is complete with it."""
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines:
            name, _, value = line.partition(":")
            headers.add(name, value.strip())
        status = int(status_line.split(" ", 2)[1])
        self._chunked = headers.get("Transfer-Encoding", "").lower() == "chunked"
        if self._chunked:
            self._call("enable_chunking")
        if "Content-Encoding" in headers:
            self._call("enable_compression", headers["Content-Encoding"], None)
        _step(self.writer.write_headers(status_line, headers))
        self._in_body = True
        if self._no_body or status < 200 or status in (204, 304):
            self._left = 0
        elif not self._chunked:
            self._left = int(headers.get("Content-Length", -1))
        if self._left == 0:
            self._end(b"")
            return True
        return False

    def _body(self, data: bytes) -> None:
        if self._chunked:
            self._chunks += data
            pieces: list[bytes] = []
            while True:
                line_end = self._chunks.find(b"\r\n")
                if line_end < 0:
                    break
                size = int(bytes(self._chunks[:line_end]).split(b";")[0], 16)
                if size == 0:  # the last chunk (and any trailers): the body is complete
                    self._end(b"".join(pieces))
                    return
                start = line_end + 2
                if len(self._chunks) < start + size + 2:
                    break
                pieces.append(bytes(self._chunks[start : start + size]))
                del self._chunks[: start + size + 2]
            if pieces:
                _step(self.writer.write(b"".join(pieces)))
            return
        if self._left < 0:
            if data:
                _step(self.writer.write(data))
            return
        data = data[: self._left]
        self._left -= len(data)
        if self._left == 0:
            self._end(data)
        elif data:
            _step(self.writer.write(data))

    def _end(self, data: bytes) -> None:
        self._in_body = self._chunked = False
        self._chunks = bytearray()
        self._left = -1
        _step(self.writer.write_eof(data))

    def _call(self, name: str, *args: Any) -> None:
        method = getattr(self.writer, name, None)
        if method is not None:
            method(*args)

    def write_eof(self) -> None:
        if self._in_body:  # a body that ends with the connection (HTTP/1.0, no length)
            self._end(b"")

    def is_closing(self) -> bool:
        return self._transport is not None and bool(self._transport.is_closing())

    def close(self) -> None:
        self.write_eof()
        if self._transport is not None:
            self._transport.close()

    def get_write_buffer_size(self) -> int:
        return 0


class MockedConnection:
    """Stands in for the HTTP connection a request arrived on (responses write to it)."""

    def __init__(
        self,
        transport: Any,
        loop: asyncio.AbstractEventLoop | None = None,
        writer: Any = None,
        method: str = "GET",
        record: bool = False,
    ) -> None:
        self.transport = transport
        self.writer = writer  # aiohttp's (a mocked request's ``writer=``): responses go to it
        self._method = method
        self._record = record
        self.peername = transport.get_extra_info("peername")
        self.sockname = transport.get_extra_info("sockname")
        self._given_loop = loop
        self._lost: asyncio.Future[None] | None = None
        self.limits = Limits()  # the defaults a real server has
        self.write_paused = False
        self._output: Output | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._given_loop or asyncio.get_running_loop()

    @property
    def output(self) -> Output:
        """Where the responses of requests on this stand-in go: straight to the transport."""
        output = self._output
        if output is None:
            output = self._output = Output(self._given_loop)
            output.transport = (
                self.transport
                if self.writer is None
                else WriterTransport(self.writer, self.transport, self._method, self._record)
            )
        return output

    def write(self, data: bytes) -> None:
        self.output.write(data)

    async def drain(self) -> None:
        pass

    def lost(self) -> asyncio.Future[None]:
        """A future that completes only if the test calls ``set_result`` on it."""
        if self._lost is None:
            self._lost = self.loop.create_future()
        return self._lost

    def pause_reading_body(self) -> None:
        pass

    def upgrade(self, sink: Any) -> None:
        raise RuntimeError("a mocked request has no connection to switch protocols on")

    def run_parked(self, parked: asyncio.Future[None]) -> bool:
        return False

    def close(self) -> None:
        self.transport.close()

    def shutdown(self) -> None:
        pass

    def resume_reading_body(self) -> None:
        pass


class _MockedRoute(AbstractRoute):
    """The route of a mocked request: there is no handler behind it."""

    def __init__(self, method: str) -> None:
        super().__init__(method, self._no_handler)

    async def _no_handler(self, request: Request) -> StreamResponse:
        raise RuntimeError("a mocked request has no handler")

    @property
    def name(self) -> None:
        return None

    def get_info(self) -> dict[str, Any]:
        return {}

    def url_for(self, *args: str, **kwargs: str) -> URL:
        raise RuntimeError("a mocked request has no route to build URLs from")


class BytesContent(StreamReader):
    """``request.content`` of a mocked request made with bytes: a body to read, and those
    bytes to index and slice (aiohttp's ``request.content`` is then the payload itself, so
    ``request.content[request.http_range]`` is the range asked for)."""

    def __init__(self, payload: bytes | bytearray | memoryview) -> None:
        super().__init__(None)
        self.payload = payload
        self.feed_data(bytes(payload))
        self.feed_eof()

    def __getitem__(self, index: Any) -> Any:
        return self.payload[index]

    def __len__(self) -> int:
        return len(self.payload)


def _as_stream(payload: StreamReader | bytes) -> StreamReader:
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        return payload
    return BytesContent(payload)


def _output_of(protocol: Any, writer: Any, method: str, record: bool) -> Output:
    """The output responses to a mocked request are written to."""
    output = getattr(protocol, "output", None)
    if isinstance(output, Output):
        return output
    output = Output(None)
    transport = getattr(protocol, "transport", None)
    output.transport = (
        transport if writer is None else WriterTransport(writer, transport, method, record)
    )
    return output


def _mocked_writer(transport: Any) -> mock.Mock:
    """aiohttp's default writer of a mocked request: a mock whose methods are coroutines."""
    writer = mock.Mock()
    writer.write_headers = make_mocked_coro(None)
    writer.write = make_mocked_coro(None)
    writer.write_eof = make_mocked_coro(None)
    writer.drain = make_mocked_coro(None)
    writer.transport = transport
    return writer


def make_mocked_request(
    method: str,
    path: str,
    headers: Any = None,
    *,
    match_info: Mapping[str, str] | None = None,
    version: HttpVersion = HttpVersion11,
    closing: bool = False,
    app: Application | None = None,
    writer: Any = None,
    protocol: Any = None,
    transport: Any = None,
    payload: StreamReader | bytes = EMPTY_PAYLOAD,
    sslcontext: SSLContext | None = None,
    client_max_size: int = 1024**2,
    client_max_fields: int | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Request:
    """A :class:`~squall.web.Request` as a handler would get it, with no server involved.

    As aiohttp's: ``headers`` is anything ``CIMultiDict`` takes; ``match_info`` the route
    variables; ``app`` defaults to a new empty Application (``client_max_fields`` to its own);
    ``payload`` is the body, as a
    ``StreamReader`` or (squall's addition) plain bytes. A response prepared for the request
    is written to the transport: ``request.transport.written`` holds its bytes, unless a
    ``writer`` (aiohttp's ``AbstractStreamWriter``, usually a mock) is given: then the response
    goes to it as in aiohttp (``write_headers(status_line, headers)``, then ``write(data)``), and
    ``request.writer`` is it. ``protocol`` replaces the whole stand-in connection.
    """
    raw_headers = [
        (name.encode("utf-8"), value.encode("utf-8"))
        for name, value in CIMultiDict(headers or ()).items()
    ]
    lowered = {name.lower(): value.lower() for name, value in raw_headers}
    upgrade = lowered.get(b"connection") == b"upgrade" and bool(lowered.get(b"upgrade"))
    method = method.upper()
    # Without writer=, a mock writer as aiohttp's, and the bytes on the transport as well.
    record = writer is None
    if protocol is None:
        if transport is None:
            transport = MockedTransport(sslcontext)
        if writer is None:
            writer = _mocked_writer(transport)
        protocol = MockedConnection(transport, loop, writer, method, record)
    else:
        if transport is not None:
            protocol.transport = transport
        if writer is None:
            writer = _mocked_writer(getattr(protocol, "transport", None))
        protocol.writer = writer  # (as aiohttp: request.writer is the protocol's)
    raw = Exchange(
        method,
        path.encode("utf-8"),
        f"{version.major}.{version.minor}",
        raw_headers,
        not closing and version >= HttpVersion11,
        upgrade,
        lowered.get(b"expect") == b"100-continue",
        _as_stream(payload),
        _output_of(protocol, writer, method, record),
    )
    if app is None:
        app = Application()
    request = Request(raw, protocol, app, client_max_size, client_max_fields)
    info = UrlMappingMatchInfo(dict(match_info or {}), _MockedRoute(method))
    info.add_app(app)
    request._match_info = info
    return request


def make_mocked_coro(return_value: Any = _UNSET, raise_exception: Any = _UNSET) -> mock.Mock:
    """A ``Mock`` wrapping a coroutine function that returns ``return_value`` (awaited first if
    it is awaitable) or raises ``raise_exception``, as aiohttp's."""

    async def mock_coro(*args: Any, **kwargs: Any) -> Any:
        if raise_exception is not _UNSET:
            raise raise_exception
        if not inspect.isawaitable(return_value):
            return return_value
        await return_value

    return mock.Mock(wraps=mock_coro)
