"""StreamResponse and Response: aiohttp's response objects, handed to the request's exchange.

A response never writes HTTP bytes itself: it gives its status, header fields and body to the
request's :class:`~squall.http.exchange.Exchange`, which frames them. Headers stay unbuilt until
someone touches ``.headers``: the common response (a 200 of a typed body) carries the exchange's
pre-made head for its type (``_plain``) and goes out in one piece. Bodies other than bytes and
str (files, async iterables) are in ``payload.py``.

A response's other concerns are mixins of their own: header accessors (``response_headers.py``),
cookies (``response_cookies.py``) and compression (``response_compression.py``). JSON responses
are made in ``jsonresponse.py``.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, ClassVar

from multidict import CIMultiDict

from ..http.clock import CLOCK, REASONS, SERVER_SOFTWARE
from ..http.exchange import PlainHead, encode_fields, plain_head
from .compression import Compressor, ContentCoding
from .keys import ResponseKey
from .payload import Payload, to_payload
from .response_compression import CompressionMixin
from .response_cookies import CookieMixin
from .response_headers import HeadersMixin
from .state import StateMapping

if TYPE_CHECKING:
    from ..http.exchange import Exchange
    from .request import BaseRequest

__all__ = ("ContentCoding", "Response", "StreamResponse")

LooseHeaders = Any

KEYWORDS_ONLY: Any = object()
"""The default of a positional-only guard before arguments aiohttp declares keyword-only.

Python fills an omitted keyword-only argument from a dict of defaults, one lookup each on every
call (~45 ns for ``Response(text=...)``, which omits eight); positional-or-keyword ones come from
a tuple. So ``Response`` and ``json_response`` declare theirs positional-or-keyword behind a
guard: a positional argument lands in the guard and is refused, as aiohttp refuses it.
"""


# Response(text=...)'s Content-Type for no content_type and the usual ones, each with the head
# of a 200 with that type (what the request handler's fast path sends, web/handler.py).
_TEXT_PLAIN = "text/plain; charset=utf-8"
_TEXT_PLAIN_OK = plain_head(_TEXT_PLAIN)
_TEXT_CTYPES: dict[str, tuple[str | None, PlainHead | bool]] = {
    name: (value, plain_head(value))
    for name, value in (
        ("text/plain", _TEXT_PLAIN),
        ("text/html", "text/html; charset=utf-8"),
        ("application/json", "application/json; charset=utf-8"),
    )
}
_NOT_USUAL: tuple[str | None, PlainHead | bool] = (None, False)


class NotStartedError(RuntimeError, AssertionError):
    """``write_eof()`` or ``drain()`` before ``prepare()``: a RuntimeError, and the
    AssertionError aiohttp raises there."""


class NotBytesError(TypeError, AssertionError):
    """``write()`` of something else than bytes: a TypeError, and aiohttp's AssertionError."""


class BodyTypeError(TypeError, ValueError):
    """A body no payload is made from: a TypeError, and the ValueError aiohttp raises."""


class TextTypeError(TypeError, AssertionError):
    """``response.text = `` something else than str: a TypeError, and aiohttp's
    AssertionError."""


class ResponseWriter:
    """What ``prepare()`` returns for a served request: aiohttp's ``AbstractStreamWriter``
    API over the response (``write``, ``write_eof``, ``drain``, ``buffer_size``), for code that
    writes to the writer ``prepare()`` gave it. The bytes go through the response, so they are
    compressed and framed as the response's own ``write()``'s are."""

    __slots__ = ("_response",)

    def __init__(self, response: StreamResponse) -> None:
        self._response = response

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        await self._response.write(chunk)

    async def write_eof(self, chunk: bytes = b"") -> None:
        await self._response.write_eof(chunk)

    async def drain(self) -> None:
        """Nothing to do: ``write()`` already waits while the client is slow to read."""

    @property
    def buffer_size(self) -> int:
        """The body bytes written so far (before compression)."""
        return self._response.body_length

    output_size = buffer_size


def _no_chunks_before_http11(request: BaseRequest) -> None:
    """``prepare()`` of a chunked response to an HTTP/1.0 request fails, as in aiohttp."""
    version = request.version
    if version < (1, 1):
        raise RuntimeError(
            f"Using chunked encoding is forbidden for HTTP/{version.major}.{version.minor}"
        )


class StreamResponse(HeadersMixin, CookieMixin, CompressionMixin, StateMapping):
    """A response whose body is written piece by piece after :meth:`prepare`."""

    _key_class = ResponseKey
    _key_anchor = "response-s-storage"
    _seen_str_keys: ClassVar[set[str]] = set()

    # Defaults live on the class: a response assigns only what differs (fewer stores per request).
    # (The mixins keep theirs: _headers and _ctype, _cookies, the compression settings.)
    _state: dict[str, Any] | None = None
    _status = 200
    _req: BaseRequest | None = None
    _exchange: Exchange | None = None  # the request's, once prepared
    _chunked = False
    _keep_alive: bool | None = None
    _eof_sent = False
    _body_length = 0
    _send_body = True
    _reason: str | None = None  # None: the standard phrase for the status
    _writer: Any = None  # what prepare() returned (_payload_writer())
    _defaults_shown = False  # Date/Server were put in headers for on_response_prepare
    _body: bytes | None = None
    # Prepared, or compression pending: the request handler must finish it with awaits
    # (prepare/write_eof), not Response._send_whole.
    _async_send = False
    # While a Response is a 200 described by its status, content type and body alone, as its
    # constructor's fast path makes it: the head of its type (``plain_head``); else False.
    # Every change to its head (status, type, headers, cookies, force_close, chunking,
    # compression, prepare) clears it. So the request handler reads one attribute, not ten,
    # before writing the commonest answer (web/handler.py).
    _plain: PlainHead | bool = False

    def __init__(
        self,
        *,
        status: int = 200,
        reason: str | None = None,
        headers: LooseHeaders | None = None,
    ) -> None:
        if headers is not None:
            self._headers = CIMultiDict(headers)
        if reason is None and type(status) is int:
            self._status = status
        else:
            self.set_status(status, reason)

    # -- status ---------------------------------------------------------------------------

    @property
    def status(self) -> int:
        return self._status

    @property
    def reason(self) -> str:
        reason = self._reason
        return REASONS.get(self._status, "") if reason is None else reason

    def set_status(self, status: int, reason: str | None = None) -> None:
        if self._req is not None:
            raise AssertionError(
                "Cannot change the response status code after the headers have been sent"
            )
        self._status = int(status)
        self._plain = False
        if reason is not None and ("\r" in reason or "\n" in reason):
            raise ValueError("Reason cannot contain \\r or \\n")
        self._reason = reason

    # -- connection -----------------------------------------------------------------------

    @property
    def keep_alive(self) -> bool | None:
        return self._keep_alive

    def force_close(self) -> None:
        self._keep_alive = False
        self._plain = False

    @property
    def chunked(self) -> bool:
        return self._chunked

    def enable_chunked_encoding(self, chunk_size: int | None = None) -> None:
        """Send the body chunked; ``chunk_size`` is deprecated and ignored, as in aiohttp."""
        if chunk_size is not None:
            warnings.warn("Chunk size is deprecated #1615", DeprecationWarning, stacklevel=2)
        if self._headers is not None and "Content-Length" in self._headers:
            raise RuntimeError("You can't enable chunked encoding when a content length is set")
        self._chunked = True
        self._plain = False

    @property
    def prepared(self) -> bool:
        return self._req is not None

    @property
    def body_length(self) -> int:
        return self._body_length

    @property
    def task(self) -> Any:
        return self._req.task if self._req is not None else None

    def __repr__(self) -> str:
        """aiohttp's: ``<Response OK not prepared>``, ``<Response OK GET /path >``, ``... eof>``."""
        req = self._req
        if self._eof_sent:
            info = "eof"
        elif req is not None:
            info = f"{req.method} {req.path} "
        else:
            info = "not prepared"
        return f"<{type(self).__name__} {self.reason} {info}>"

    # -- writing --------------------------------------------------------------------------

    async def prepare(self, request: BaseRequest) -> Any:
        """Send the status line and headers; afterwards the body goes out with :meth:`write`.

        Returns the response's writer, as aiohttp does (the same one on a second call; None
        once the body is complete): a :class:`ResponseWriter`, or the writer a request made
        by ``make_mocked_request`` has.
        """
        if self._eof_sent:
            return None
        if self._req is None:
            await self._start(request)
        return self._payload_writer()

    def _payload_writer(self) -> Any:
        writer = self._writer
        if writer is None:
            req = self._req
            # make_mocked_request's connection carries aiohttp's writer; a served one has none
            writer = None if req is None else getattr(req.protocol, "writer", None)
            writer = self._writer = ResponseWriter(self) if writer is None else writer
        return writer

    @property
    def output_length(self) -> int:
        """Deprecated, as in aiohttp (warns): the writer's ``buffer_size``."""
        warnings.warn("output_length is deprecated", DeprecationWarning, stacklevel=2)
        if self._req is None:
            raise NotStartedError("Response has not been started")
        return self._payload_writer().buffer_size  # type: ignore[no-any-return]

    async def _start(self, request: BaseRequest) -> None:
        if self._chunked:
            _no_chunks_before_http11(request)
        # Compression is set up before the on_response_prepare signal, as in aiohttp.
        coding = self._select_coding(request) if self._compression else None
        await request._prepare_hook(self)
        exchange = request._exchange
        self._begin(exchange, -1)
        self._req = request
        self._exchange = exchange
        self._keep_head(exchange)
        exchange.send_head()
        if coding is not None:
            self._start_compressor(coding)

    def _show_head_defaults(self) -> None:
        """Before on_response_prepare: ``Date`` and ``Server`` in :attr:`headers`, as aiohttp's
        handlers find them; one that removes either sends the response without it."""
        self._defaults_on_read = False
        headers = self.headers
        CLOCK.update()  # (the server's tick does it each second; a mocked request has none)
        headers.setdefault("Date", CLOCK.date)
        headers.setdefault("Server", SERVER_SOFTWARE)
        self._defaults_shown = True
        self._plain = False

    def _removed_defaults(self) -> list[tuple[bytes, bytes]]:
        """Empty ``Date``/``Server`` fields (the exchange then sends none) for those an
        on_response_prepare handler removed."""
        if not self._defaults_shown:
            return []
        headers = self.headers
        return [(name, b"") for name in (b"Date", b"Server") if name.decode() not in headers]

    def _keep_head(self, exchange: Exchange) -> None:
        """After an explicit prepare(), ``headers`` are the fields of the head as sent, as
        aiohttp rewrites them: Content-Length or Transfer-Encoding as framed (neither for 1xx,
        204, 304), Date, Server, Connection, Set-Cookie. (A response returned from a handler
        and sent whole keeps the headers it was given: nothing is spent on them.)"""
        headers = self.headers
        headers.clear()
        headers.extend(exchange.head_fields())
        if self._keep_alive is None:  # as aiohttp: the connection's choice, once prepared
            self._keep_alive = exchange.keep_alive

    def _begin(self, exchange: Exchange, length: int) -> None:
        """Hand this response's head to ``exchange``, which frames it (``length``: the body's
        length if known, else -1; a Content-Length header set on a stream declares it)."""
        status = self._status
        send_body = self._send_body = exchange.allows_body(status)
        headers = self._headers
        ctype = self._ctype
        # No body can follow (HEAD, 1xx, 204, 304), or none at all: no Content-Type made up.
        may_have_body = send_body and length != 0
        fields: list[tuple[bytes, bytes]] | None = None
        if headers is not None:
            ctype = None  # (in the mapping)
            if may_have_body and "Content-Type" not in headers:
                headers["Content-Type"] = "application/octet-stream"
            if self._chunked:
                headers.popall("Content-Length", None)
            elif length >= 0 and exchange.allows_body(200):
                headers["Content-Length"] = str(length)  # a whole body's own length stands
            fields = encode_fields(headers.items())
            if self._defaults_shown:
                fields += self._removed_defaults()
        elif ctype is None and may_have_body:
            ctype = "application/octet-stream"
        if self._cookies:
            cookies = encode_fields(self._cookie_fields())
            fields = cookies if fields is None else fields + cookies
        exchange.start(status, self._reason, ctype, fields, length, self._keep_alive is False)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send a piece of the body; waits while the client is slow to read."""
        if self._eof_sent:
            raise RuntimeError("Cannot call write() after write_eof()")
        exchange = self._exchange
        if exchange is None:
            raise RuntimeError("Cannot call write() before prepare()")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise NotBytesError(f"data argument must be byte-ish ({type(data)!r})")
        if not data:
            return
        self._body_length += len(data)
        if self._compressor is not None:
            data = await self._compressor.compress(data)
            if not data:  # zlib kept it all for later: nothing to send, nothing to wait for
                return
        exchange.write(data)
        await exchange.out.drain()

    async def drain(self) -> None:
        """Deprecated, as in aiohttp (warns): ``write()`` already waits for the connection."""
        exchange = self._exchange
        if exchange is None:
            raise NotStartedError("Response has not been started")
        warnings.warn(
            "drain method is deprecated, use await resp.write()", DeprecationWarning, stacklevel=2
        )
        await exchange.out.drain()

    async def write_eof(self, data: bytes = b"", *, trailers: Trailers | None = None) -> None:
        """Finish the body (the last chunk on chunked responses).

        ``trailers`` (squall's, not aiohttp's): fields sent after the body, as gRPC-style
        servers do: on HTTP/2, and on HTTP/1.1 in a chunked body; a body of known length on
        HTTP/1.1 cannot carry them, and they are dropped.
        """
        if self._eof_sent:
            return
        exchange = self._exchange
        if exchange is None:
            raise NotStartedError("Response has not been started")
        if data:
            await self.write(data)
        self._eof_sent = True
        tail = self._compressor.finish() if self._compressor is not None else b""
        if trailers is not None:
            exchange.end_with_trailers(tail, _trailer_fields(trailers))
        else:
            exchange.end(tail)
        if not exchange.keep_alive:
            self._keep_alive = False


Trailers = Mapping[str, str] | Iterable[tuple[str, str]]
"""Trailer fields for :meth:`StreamResponse.write_eof`: a mapping or (name, value) pairs."""


def _trailer_fields(trailers: Trailers) -> list[tuple[bytes, bytes]]:
    pairs = trailers.items() if isinstance(trailers, Mapping) else trailers
    return encode_fields(pairs)


class Response(StreamResponse):
    """A response whose whole body is known up front.

    Compressed (:meth:`enable_compression`) bodies longer than ``zlib_executor_size`` bytes (4096
    when None) are compressed in ``zlib_executor`` (None: the loop's default executor).
    """

    _compressed_body: bytes | None = None
    _payload: Payload | None = None  # a body made while sending (payload.py)

    def __init__(
        self,
        _positional: Any = KEYWORDS_ONLY,
        /,
        body: Any = None,
        status: int = 200,
        reason: str | None = None,
        text: str | None = None,
        headers: LooseHeaders | None = None,
        content_type: str | None = None,
        charset: str | None = None,
        zlib_executor_size: int | None = None,
        zlib_executor: Executor | None = None,
    ) -> None:
        if _positional is not KEYWORDS_ONLY:
            raise TypeError(f"{type(self).__name__}() takes keyword arguments only")
        if (
            body is None
            and headers is None
            and charset is None
            and reason is None
            and zlib_executor_size is None
            and zlib_executor is None
            and type(text) is str
        ):  # the common cases, text= with no type or a usual one: no parsing, no header mapping
            if content_type is None:
                ctype: str | None = _TEXT_PLAIN
                ok: PlainHead | bool = _TEXT_PLAIN_OK
            elif type(content_type) is str:
                ctype, ok = _TEXT_CTYPES.get(content_type, _NOT_USUAL)
            else:
                ctype = None
            if ctype is not None:
                # (Each bytecode counts here: this is most handlers' one call into squall. Two
                # branches, not one with a second status test: ~100 instructions a request.)
                if status == 200:  # _status stays the class default
                    self._ctype = ctype
                    self._body = text.encode()
                    self._plain = ok
                    return
                if type(status) is int:
                    self._status = status
                    self._ctype = ctype
                    self._body = text.encode()
                    return
        if body is not None and text is not None:
            raise ValueError("body and text are not allowed together")
        if zlib_executor_size is not None:
            self._zlib_executor_size = zlib_executor_size
        if zlib_executor is not None:
            self._zlib_executor = zlib_executor
        if content_type is not None and "charset" in content_type:
            raise ValueError("charset must not be in content_type argument")
        StreamResponse.__init__(self, status=status, reason=reason, headers=headers)
        has_ctype = headers is not None and "Content-Type" in self.headers
        if has_ctype and (content_type is not None or charset is not None):
            raise ValueError(
                "passing both Content-Type header and content_type or charset params is forbidden"
            )
        if text is not None:
            if not isinstance(text, str):
                raise TypeError(f"text argument must be str ({type(text)!r})")
            if not has_ctype:
                charset = charset or "utf-8"
                self._set_ctype(f"{content_type or 'text/plain'}; charset={charset}")
            else:
                charset = self.charset or "utf-8"
            self._body = text.encode(charset)
        else:
            if not has_ctype and content_type is not None:
                self._set_ctype(f"{content_type}; charset={charset}" if charset else content_type)
            self._body = None
            if body is not None:
                self.body = body

    @property
    def body(self) -> Any:
        """The body's bytes; for a streamed body (a file, an async iterable), what was given."""
        payload = self._payload
        return self._body if payload is None else payload.source

    @body.setter
    def body(self, body: Any) -> None:
        self._payload = None
        if body is None:
            self._body = None
            self._plain = False
        elif isinstance(body, bytes):
            self._body = body
        elif isinstance(body, (bytearray, memoryview)):
            self._body = bytes(body)
        elif isinstance(body, str):
            charset = self.charset or "utf-8"
            self._body = body.encode(charset)
            if self._get_ctype() is None:
                self._set_ctype(f"text/plain; charset={charset}")
        else:
            payload = to_payload(body)
            if payload is None:
                raise BodyTypeError(f"Unsupported body type {type(body)!r}")
            if isinstance(body, io.StringIO) and self._get_ctype() is None:
                self._set_ctype("text/plain; charset=utf-8")
            if isinstance(payload, bytes):
                self._body = payload
                return
            self._body = None
            self._payload = payload
            self._async_send = True  # sent by prepare() and write_eof(), with awaits
            self._plain = False
            if payload.ctype is not None and self._get_ctype() is None:
                self._set_ctype(payload.ctype)
            if payload.disposition is not None and "Content-Disposition" not in self.headers:
                self.headers["Content-Disposition"] = payload.disposition

    @property
    def text(self) -> str | None:
        """The body as text; a file body is read (blocking) to tell it, as in aiohttp, and a
        body made only as it is sent (an async iterable) raises TypeError."""
        if self._body is None:
            if self._payload is not None:
                return self._payload.decode(self.charset or "utf-8")
            return None
        return self._body.decode(self.charset or "utf-8")

    @text.setter
    def text(self, text: str) -> None:
        if not isinstance(text, str):
            raise TextTypeError(f"text argument must be str ({type(text)!r})")
        # As aiohttp: text is text/plain unless typed otherwise, and always has a charset.
        if self.content_type == "application/octet-stream":
            self._set_ctype("text/plain; charset=utf-8")
        elif self.charset is None:
            self.charset = "utf-8"
        self._body = text.encode(self.charset or "utf-8")

    @property
    def content_length(self) -> int | None:
        # aiohttp's order: the header (after prepare(), what was sent), a compressed body's
        # length, a payload's (None once prepared: the header said it), the body's
        if self._chunked:
            return None
        if self._headers is not None and "Content-Length" in self._headers:
            return int(self._headers["Content-Length"])
        if self._compressed_body is not None:
            return len(self._compressed_body)
        if self._payload is not None:
            size = self._payload.size
            return size if size >= 0 and self._exchange is None else None
        return len(self._body) if self._body is not None else 0

    @content_length.setter
    def content_length(self, value: int | None) -> None:
        raise RuntimeError("Content length is set automatically")

    async def _start(self, request: BaseRequest) -> None:
        """prepare()'s work: the head out, the whole body's length declared (aiohttp's name)."""
        self._async_send = True
        self._plain = False
        if self._chunked:
            _no_chunks_before_http11(request)
        payload = self._payload
        if payload is not None and payload.is_text_file:  # read whole: its encoded length
            self._body = await payload.read_text()
            self._payload = payload = None
        if payload is not None:
            await self._prepare_stream(request, payload)
            return
        # Compression is set up before the on_response_prepare signal, as in aiohttp.
        coding = await self._compress(request) if self._compression else None
        await request._prepare_hook(self)
        self._req = request
        exchange = self._exchange = request._exchange
        body = self._body if self._compressed_body is None else self._compressed_body
        length = -1 if self._chunked else (len(body) if body is not None else 0)
        if length == 0 and (self._status == 304 or exchange.method == "HEAD"):
            length = -1  # (see _send_whole)
        self._begin(exchange, length)
        self._keep_head(exchange)
        exchange.send_head()
        if coding is not None:
            self._start_compressor(coding)

    async def _prepare_stream(self, request: BaseRequest, payload: Payload) -> None:
        """prepare() for a body made while sending: its size, if known, declares the length."""
        coding = self._select_coding(request) if self._compression else None
        await request._prepare_hook(self)
        self._req = request
        exchange = self._exchange = request._exchange
        size = -1 if self._chunked or coding is not None else payload.size
        self._begin(exchange, size)
        self._keep_head(exchange)
        exchange.send_head()
        if coding is not None:
            self._start_compressor(coding)

    async def _compress(self, request: BaseRequest) -> ContentCoding | None:
        """Compress the whole body now; for a chunked response, return the coding to stream with.

        A response without a body (``body=None``) is never compressed (aiohttp fails on one).
        """
        body = self._body
        if body is None:
            return None
        coding = self._select_coding(request)
        if coding is None or self._chunked:
            return coding
        compressor = Compressor(
            coding, self._compression_strategy, self._zlib_executor_size, self._zlib_executor
        )
        self._compressed_body = await compressor.compress_all(body)
        return None

    async def write_eof(self, data: bytes = b"", *, trailers: Trailers | None = None) -> None:
        if self._eof_sent:
            return
        payload = self._payload
        if payload is not None and self._exchange is not None:
            self._payload = None  # (sent once)
            if self._send_body or self._compressor is not None:
                await payload.send(self._write_chunk)
            elif not payload.is_text_file:
                await payload.close()  # HEAD, 204, 304: nothing is read
        body = self._body if self._compressed_body is None else self._compressed_body
        if self._compressor is not None and not data:  # chunked: the body goes through zlib
            data = body or b""
        if body and not data and self._exchange is not None:
            if trailers is not None:
                self._exchange.end_with_trailers(body, _trailer_fields(trailers))
            else:
                self._exchange.end(body)
            self._body_length = len(body)
            self._eof_sent = True
            return
        await StreamResponse.write_eof(self, data, trailers=trailers)

    async def _write_chunk(self, chunk: bytes) -> None:
        await StreamResponse.write(self, chunk)

    def _send_whole(self, request: BaseRequest) -> None:
        """Head and body in one write: what the request handler does for unprepared responses."""
        self._req = request
        exchange = self._exchange = request._exchange
        body = self._body or b""
        length = -1 if self._chunked else len(body)
        if length == 0 and (self._status == 304 or exchange.method == "HEAD"):
            # An empty body says nothing of the length a GET's 200 would have: no
            # Content-Length then (RFC 9110 8.6), as aiohttp.
            length = -1
        self._begin(exchange, length)
        self._eof_sent = True
        if body and self._send_body:
            self._body_length = len(body)
        exchange.end(body)
