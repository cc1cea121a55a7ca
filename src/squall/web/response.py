"""StreamResponse and Response, serialised straight to the connection.

Headers stay unbuilt until someone touches ``.headers``: the common response (a status, a body and a
content type) is written as one pre-assembled byte string in a single ``transport.write``.

A response's other concerns are mixins of their own: header accessors (``response_headers.py``),
cookies (``response_cookies.py``) and compression (``response_compression.py``). JSON responses
are made in ``jsonresponse.py``.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, ClassVar

from multidict import CIMultiDict

from ..http.writer import CLOCK, REASONS, encode_headers, status_line
from .compression import Compressor, ContentCoding
from .keys import ResponseKey
from .response_compression import CompressionMixin
from .response_cookies import CookieMixin
from .response_headers import _EMPTY_BODY_STATUSES, HeadersMixin
from .state import StateMapping

if TYPE_CHECKING:
    from ..http.connection import Connection
    from ..http.message import RawRequest
    from .request import BaseRequest

__all__ = ("ContentCoding", "Response", "StreamResponse")

LooseHeaders = Any

_CTYPE_LINES: dict[str, bytes] = {}


def _ctype_line(value: str) -> bytes:
    line = _CTYPE_LINES.get(value)
    if line is None:
        line = encode_headers((("Content-Type", value),))
        if len(_CTYPE_LINES) < 256:
            _CTYPE_LINES[value] = line
    return line


KEYWORDS_ONLY: Any = object()
"""The default of a positional-only guard before arguments aiohttp declares keyword-only.

Python fills an omitted keyword-only argument from a dict of defaults, one lookup each on every
call (~45 ns for ``Response(text=...)``, which omits eight); positional-or-keyword ones come from
a tuple. So ``Response`` and ``json_response`` declare theirs positional-or-keyword behind a
guard: a positional argument lands in the guard and is refused, as aiohttp refuses it.
"""


def ok_prefix(ctype: str) -> bytes:
    """``HTTP/1.1 200 OK``, the Content-Type line and ``Content-Length: `` for ``ctype``."""
    return status_line("1.1", 200) + _ctype_line(ctype) + b"Content-Length: "


# Response(text=...)'s Content-Type for no content_type and the usual ones, each with the start
# of a 200's head with that type (what the request handler's fast path writes, web/handler.py).
_TEXT_PLAIN = "text/plain; charset=utf-8"
_TEXT_PLAIN_OK = ok_prefix(_TEXT_PLAIN)
_TEXT_CTYPES: dict[str, tuple[str | None, bytes]] = {
    name: (value, ok_prefix(value))
    for name, value in (
        ("text/plain", _TEXT_PLAIN),
        ("text/html", "text/html; charset=utf-8"),
        ("application/json", "application/json; charset=utf-8"),
    )
}
_NOT_USUAL: tuple[str | None, bytes] = (None, b"")


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
    _conn: Connection | None = None
    _chunked = False
    _chunked_wire = False
    _keep_alive: bool | None = None
    _eof_sent = False
    _body_length = 0
    _send_body = True
    _reason: str | None = None  # None: the standard phrase for the status
    _body: bytes | None = None
    # Prepared, or compression pending: the request handler must finish it with awaits
    # (prepare/write_eof), not Response._send_whole.
    _async_send = False
    # While a Response is a 200 described by its status, content type and body alone, as its
    # constructor's fast path makes it: the start of its head (``ok_prefix`` of its type); else
    # False. Every change to its head (status, type, headers, cookies, force_close, chunking,
    # compression, prepare) clears it. So the request handler reads one attribute, not ten,
    # before writing the commonest answer (web/handler.py).
    _plain: bytes | bool = False

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

    def enable_chunked_encoding(self) -> None:
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
        info = f"{self.status} {self.reason}"
        return f"<{type(self).__name__} {info}{' eof' if self._eof_sent else ''}>"

    # -- writing --------------------------------------------------------------------------

    async def prepare(self, request: BaseRequest) -> Any:
        """Send the status line and headers; afterwards the body goes out with :meth:`write`."""
        if self._eof_sent:
            return None
        if self._req is not None:
            return None
        await self._start(request)
        return None

    async def _start(self, request: BaseRequest) -> None:
        # Compression is set up before the on_response_prepare signal, as in aiohttp.
        coding = self._select_coding(request) if self._compression else None
        await request._prepare_hook(self)
        _invite_body(request)
        head = self._head(request, None)
        self._req = request
        conn = self._conn = request._conn
        conn.write(head)
        if coding is not None:
            self._start_compressor(coding)

    def _head(self, request: BaseRequest, body_length: int | None) -> bytes:
        """Serialise the response head; ``body_length`` is known for whole-body responses."""
        raw = request._raw
        keep_alive = self._keep_alive
        status = self._status
        if (  # the common case first: a whole body, no header mapping, keep-alive HTTP/1.1
            body_length is not None
            and keep_alive is None
            and self._headers is None
            and self._cookies is None
            and raw.keep_alive
            and raw.version == "1.1"
            and raw.method != "HEAD"
            and status >= 200
            and status not in _EMPTY_BODY_STATUSES
        ):
            ctype = self._ctype
            if ctype is None and body_length:  # RFC 9110 8.3: a body without a type
                ctype = "application/octet-stream"
            return b"%b%bContent-Length: %d\r\n%b\r\n" % (
                status_line("1.1", status, self._reason),
                _ctype_line(ctype) if ctype is not None else b"",
                body_length,
                CLOCK.date_server,
            )
        if keep_alive is None:
            keep_alive = raw.keep_alive
        elif not keep_alive:
            raw.keep_alive = False
        headers = self._headers
        parts = [status_line("1.1", status, self._reason)]
        head_request = raw.method == "HEAD"
        self._send_body = not head_request and status not in _EMPTY_BODY_STATUSES and status >= 200
        no_length = status in _EMPTY_BODY_STATUSES or status < 200
        # No body can follow (HEAD, 1xx, 204, 304): no Content-Type is made up for one.
        may_have_body = self._send_body and body_length != 0
        if headers is None:
            if self._ctype is not None:
                parts.append(_ctype_line(self._ctype))
            elif may_have_body:
                parts.append(_ctype_line("application/octet-stream"))
            if body_length is not None and not no_length:
                parts.append(b"Content-Length: %d\r\n" % body_length)
            elif not no_length and self._send_body:
                self._stream_framing(raw, parts)
        else:
            if may_have_body and "Content-Type" not in headers:
                headers["Content-Type"] = "application/octet-stream"
            if body_length is not None and not no_length:
                headers["Content-Length"] = str(body_length)
            elif no_length:
                headers.pop("Content-Length", None)
            if "Content-Length" not in headers and not no_length and not head_request:
                self._stream_framing(raw, parts)
            if self._chunked_wire:
                headers.pop("Content-Length", None)
            if "Connection" in headers:
                if headers["Connection"].lower() == "close":
                    keep_alive = raw.keep_alive = False
                del headers["Connection"]
            parts.append(encode_headers(headers.items()))
        if self._cookies:
            parts.append(self._cookie_lines())
        if keep_alive and not raw.keep_alive:
            keep_alive = False
        parts.append(CLOCK.date_server)
        if raw.version == "1.1":
            if not keep_alive:
                parts.append(b"Connection: close\r\n")
        elif keep_alive:
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    def _stream_framing(self, raw: RawRequest, parts: list[bytes]) -> None:
        """A body of unknown length: chunked on HTTP/1.1, close-delimited on HTTP/1.0."""
        if raw.version == "1.1":
            self._chunked_wire = True
            parts.append(b"Transfer-Encoding: chunked\r\n")
        else:
            raw.keep_alive = False

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send a piece of the body; waits while the client is slow to read."""
        if self._eof_sent:
            raise RuntimeError("Cannot call write() after write_eof()")
        conn = self._conn
        if conn is None:
            raise RuntimeError("Cannot call write() before prepare()")
        if not data:
            return
        self._body_length += len(data)
        if self._send_body:
            if self._chunked_wire:
                conn.write(b"%x\r\n%b\r\n" % (len(data), bytes(data)))
            else:
                conn.write(bytes(data))
        elif self._compressor is not None:
            data = await self._compressor.compress(data)
            if not data:  # zlib kept it all for later: nothing to send, nothing to wait for
                return
            conn.write(b"%x\r\n%b\r\n" % (len(data), data) if self._chunked_wire else data)
        await conn.drain()

    async def drain(self) -> None:
        if self._conn is not None:
            await self._conn.drain()

    async def write_eof(self, data: bytes = b"") -> None:
        """Finish the body (the last chunk on chunked responses)."""
        if self._eof_sent:
            return
        conn = self._conn
        if conn is None:
            raise RuntimeError("Response has not been started")
        if data:
            await self.write(data)
        self._eof_sent = True
        if self._chunked_wire and self._send_body:
            conn.write(b"0\r\n\r\n")
        elif self._compressor is not None:
            tail = self._compressor.finish()
            conn.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(tail), tail) if self._chunked_wire else tail)
        if self._req is not None and not self._req._raw.keep_alive:
            self._keep_alive = False


class Response(StreamResponse):
    """A response whose whole body is known up front.

    Compressed (:meth:`enable_compression`) bodies longer than ``zlib_executor_size`` bytes (4096
    when None) are compressed in ``zlib_executor`` (None: the loop's default executor).
    """

    _compressed_body: bytes | None = None

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
                ok = _TEXT_PLAIN_OK
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
    def body(self) -> bytes | None:
        return self._body

    @body.setter
    def body(self, body: Any) -> None:
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
            raise TypeError(f"Unsupported body type {type(body)!r}")

    @property
    def text(self) -> str | None:
        if self._body is None:
            return None
        return self._body.decode(self.charset or "utf-8")

    @text.setter
    def text(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"text argument must be str ({type(text)!r})")
        if self.content_type == "application/octet-stream" and self._get_ctype() is None:
            self._set_ctype("text/plain; charset=utf-8")
        self._body = text.encode(self.charset or "utf-8")

    @property
    def content_length(self) -> int | None:
        if self._chunked:
            return None
        if self._headers is not None and "Content-Length" in self._headers:
            return int(self._headers["Content-Length"])
        return len(self._body) if self._body is not None else 0

    @content_length.setter
    def content_length(self, value: int | None) -> None:
        raise RuntimeError("Content length is set automatically")

    async def prepare(self, request: BaseRequest) -> Any:
        if self._req is not None or self._eof_sent:
            return None
        self._async_send = True
        self._plain = False
        # Compression is set up before the on_response_prepare signal, as in aiohttp.
        coding = await self._compress(request) if self._compression else None
        await request._prepare_hook(self)
        _invite_body(request)
        self._req = request
        conn = self._conn = request._conn
        body = self._body if self._compressed_body is None else self._compressed_body
        length = None if self._chunked else (len(body) if body is not None else 0)
        conn.write(self._head(request, length))
        if coding is not None:
            self._start_compressor(coding)
        return None

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

    async def write_eof(self, data: bytes = b"") -> None:
        if self._eof_sent:
            return
        body = self._body if self._compressed_body is None else self._compressed_body
        if self._compressor is not None and not data:  # chunked: the body goes through zlib
            data = body or b""
        if body and self._send_body and not data:
            assert self._conn is not None
            if self._chunked_wire:
                self._conn.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body))
            else:
                self._conn.write(body)
            self._body_length = len(body)
            self._eof_sent = True
            return
        await StreamResponse.write_eof(self, data)

    def _send_whole(self, request: BaseRequest) -> None:
        """Head and body in one write: what the request handler does for unprepared responses."""
        self._req = request
        conn = self._conn = request._conn
        body = self._body
        length = None if self._chunked else (len(body) if body is not None else 0)
        head = self._head(request, length)
        self._eof_sent = True
        if body and self._send_body:
            self._body_length = len(body)
            if self._chunked_wire:
                conn.write(b"%b%x\r\n%b\r\n0\r\n\r\n" % (head, len(body), body))
            else:
                conn.write(head + body)
        elif self._chunked_wire and self._send_body:
            conn.write(head + b"0\r\n\r\n")
        else:
            conn.write(head)


def _invite_body(request: BaseRequest) -> None:
    """Send a pending ``100 Continue`` before a head the handler sends itself (prepare()).

    The handler may read the body after starting its response; a client still waiting for 100
    would never send it. (A whole response sent after the handler returned needs no body.)
    """
    body = request._raw.body
    send_continue = body._continue
    if send_continue is not None:
        body._continue = None
        send_continue()
