"""BaseRequest and Request: aiohttp's request API over the wire's Exchange, decoded on demand."""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import sys
import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple
from urllib.parse import parse_qsl

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy, istr
from yarl import URL

from .._mypyc import mypyc_attr
from ..http.errors import RequestPayloadError
from ..http.streams import EMPTY_PAYLOAD, StreamReader
from .exceptions import (
    HTTPBadRequest,
    HTTPException,
    HTTPRequestEntityTooLarge,
    HTTPRequestTimeout,
)
from .form import MAX_FIELDS, FileField, read_form, too_many_fields
from .headers import (
    ETag,
    parse_cookies,
    parse_etags,
    parse_forwarded,
    parse_http_date,
    parse_range,
)
from .inflate import inflating
from .keys import RequestKey
from .multipart import MultipartReader
from .state import StateMapping
from .subapps import ChainMapProxy

if TYPE_CHECKING:
    from ..http.connection import Connection
    from ..http.exchange import Exchange
    from .app import Application
    from .matchinfo import UrlMappingMatchInfo
    from .response import StreamResponse

__all__ = ("BaseRequest", "FileField", "HttpVersion", "HttpVersion10", "HttpVersion11", "Request")


class HttpVersion(NamedTuple):
    major: int
    minor: int


class RawRequestMessage(NamedTuple):
    """aiohttp's parsed request head, as the deprecated ``request.message`` gives it."""

    method: str
    path: str
    version: HttpVersion
    headers: CIMultiDictProxy[str]
    raw_headers: tuple[tuple[bytes, bytes], ...]
    should_close: bool
    compression: str | None
    upgrade: bool
    chunked: bool
    url: URL


HttpVersion10 = HttpVersion(1, 0)
HttpVersion11 = HttpVersion(1, 1)
_VERSIONS: Final = {"1.1": HttpVersion11, "1.0": HttpVersion10, "2": HttpVersion(2, 0)}


# Header names seen, decoded once: istr keeps its case-folded form, which CIMultiDict would
# otherwise compute per field per request (about half the cost of building the mapping).
# aiohttp's parser also gives istr names (for the names it knows).
_HEADER_NAMES: Final[dict[bytes, istr]] = {}


def _decode(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


_INTERIM_CONTINUE: Final = re.compile(rb"HTTP/1\.[01] 100 [^\r\n]*\r\n\r\n")


class InterimWriter:
    """``request.writer`` of a served request: what aiohttp's custom expect handlers use.

    ``await request.writer.write(b"HTTP/1.1 100 Continue\\r\\n\\r\\n")`` sends the
    interim response now (over HTTP/2 as its frame). Other bytes raise ``RuntimeError``: squall
    frames responses itself (``StreamResponse.prepare()`` and ``write()``).
    """

    __slots__ = ("_body",)

    def __init__(self, body: StreamReader) -> None:
        self._body = body

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if _INTERIM_CONTINUE.fullmatch(bytes(data)) is None:
            raise RuntimeError(
                "request.writer takes only a 100 Continue interim response: squall frames "
                "the response itself (use StreamResponse.prepare() and write())"
            )
        self._body.send_continue()

    async def drain(self) -> None:
        """Nothing to wait for."""


@mypyc_attr(allow_interpreted_subclasses=True)
class BaseRequest(StateMapping):
    """An incoming request: aiohttp's ``BaseRequest`` API."""

    _key_class: ClassVar[type[RequestKey[Any]]] = RequestKey
    _key_anchor: ClassVar[str] = "request-s-storage"
    _content: StreamReader  # set on first use of .content (never in __init__: hot path)
    _seen_str_keys: ClassVar[set[str]] = set()

    __slots__ = (
        "__dict__",  # attributes of the application's own (request.user = ...), as aiohttp allows
        "_app",
        "_client_max_fields",
        "_client_max_size",
        "_conn",
        "_content",
        "_cookies",
        "_exchange",
        "_headers",
        "_match_info",
        "_overrides",
        "_path",
        "_path_safe_value",
        "_post",
        "_query",
        "_query_string",
        "_raw",
        "_read_bytes",
        "_rel_url",
        "_state",
        "_task",
        "_url",
    )

    def __init__(
        self,
        raw: Exchange,
        conn: Connection,
        app: Application,
        client_max_size: int = 1024**2,
        client_max_fields: int | None = None,
    ) -> None:
        self._raw = raw  # the request's head and body
        self._exchange = raw  # where its response goes (a clone's head differs; this does not)
        self._conn = conn
        self._app = app
        self._client_max_size = client_max_size
        self._client_max_fields = client_max_fields  # None: the application's
        self._state: dict[str, Any] | None = None
        self._match_info: UrlMappingMatchInfo | None = None
        self._headers: CIMultiDictProxy[str] | None = None
        self._path: str | None = None
        self._path_safe_value: str | None = None
        self._query_string: str | None = None
        self._query: MultiDictProxy[str] | None = None
        self._rel_url: URL | None = None
        self._url: URL | None = None
        self._cookies: Mapping[str, str] | None = None
        self._read_bytes: bytes | None = None
        self._task: asyncio.Task[Any] | None = None
        self._post: MultiDictProxy[Any] | None = None
        # (remote, scheme, host) from clone() or a trusted proxy's headers; None: the socket's
        self._overrides: tuple[str | None, str | None, str | None] | None = None

    def __repr__(self) -> str:
        path = self.path.encode("ascii", "backslashreplace").decode("ascii")  # as aiohttp
        return f"<{type(self).__name__} {self.method} {path} >"

    # -- the request line -----------------------------------------------------------------

    @property
    def method(self) -> str:
        return self._raw.method

    @property
    def version(self) -> HttpVersion:
        return _VERSIONS.get(self._raw.version) or HttpVersion(
            *map(int, self._raw.version.split("."))
        )

    @property
    def raw_path(self) -> str:
        """The request target as sent, percent-escapes and query included."""
        return _decode(self._raw.target)

    def _split_target(self) -> str:
        """Compute ``path`` and the routing path (returned); plain ASCII skips yarl entirely."""
        try:  # (not isascii(): a method call where decode is a C function of the build)
            target = self._raw.target.decode("ascii")
        except UnicodeDecodeError:  # non-ASCII bytes: yarl's way below
            target = ""
        path = target.partition("?")[0] if "?" in target else target
        if path.startswith("/") and "%" not in path and "#" not in target:
            self._path = self._path_safe_value = path  # nothing to decode: as sent
            return path
        url = self.rel_url
        self._path = url.path
        path_safe = self._path_safe_value = url.path_safe
        return path_safe

    @property
    def path(self) -> str:
        """The decoded path, without the query string."""
        path = self._path
        if path is None:
            self._split_target()
            path = self._path
            assert path is not None
        return path

    @property
    def _path_safe(self) -> str:
        """The path for routing: decoded, but an encoded slash stays ``%2F`` (yarl's path_safe)."""
        path_safe = self._path_safe_value
        return path_safe if path_safe is not None else self._split_target()

    @property
    def query_string(self) -> str:
        """The decoded query string."""
        qs = self._query_string
        if qs is None:
            query = self._raw.target.partition(b"?")[2]
            if b"%" in query or b"+" in query or b"#" in query or not query.isascii():
                qs = self.rel_url.query_string
            else:
                qs = query.decode("ascii")
            self._query_string = qs
        return qs

    @property
    def path_qs(self) -> str:
        return str(self.rel_url)

    @property
    def rel_url(self) -> URL:
        url = self._rel_url
        if url is None:
            target = _decode(self._raw.target)
            if target[:1] == "/":  # origin-form: the path as sent (never an authority, as aiohttp)
                rest, _, fragment = target.partition("#")
                path, _, query = rest.partition("?")
                url = URL.build(path=path, query_string=query, fragment=fragment, encoded=True)
            else:  # absolute-form: its path and query. Its scheme and authority are the
                # client's words: request.url takes them from the connection and the Host field,
                # as aiohttp does (an "https://" target on a plain connection is not secure)
                full = URL(target)
                url = URL.build(
                    path=full.raw_path, query_string=full.raw_query_string, encoded=True
                )
            self._rel_url = url
        return url

    @property
    def query(self) -> MultiDictProxy[str]:
        """The query variables (yarl's parsing, as aiohttp)."""
        query = self._query
        if query is None:
            query = self._query = self.rel_url.query
        return query

    @property
    def GET(self) -> MultiDictProxy[str]:
        return self.query

    @property
    def url(self) -> URL:
        rel_url = self.rel_url
        url = self._url
        if url is None:
            absolute = self._absolute_target()
            if absolute is not None:  # absolute-form: the target, as aiohttp
                url = absolute.with_scheme(self.scheme)
                overrides = self._overrides
                if overrides is not None and overrides[2] is not None:
                    url = url.with_host(overrides[2])
            else:
                url = URL.build(scheme=self.scheme, authority=self.host).join(rel_url)
            self._url = url
        return url

    # -- headers --------------------------------------------------------------------------

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        headers = self._headers
        if headers is None:
            names = _HEADER_NAMES
            items = []
            for raw_name, value in self._raw.headers:
                name = names.get(raw_name)
                if name is None:
                    name = istr(_decode(raw_name))
                    if len(names) < 1024:
                        names[raw_name] = name
                items.append((name, _decode(value)))
            headers = self._headers = CIMultiDictProxy(CIMultiDict(items))
        return headers

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return tuple(self._raw.headers)

    def _absolute_target(self) -> URL | None:
        """The request target as a URL when it is in absolute form (``GET http://h/p``)."""
        target = self._raw.target
        if target[:1] != b"/" and b"://" in target:
            return URL(_decode(target))
        return None

    @property
    def host(self) -> str:
        overrides = self._overrides
        if overrides is not None and overrides[2] is not None:
            return overrides[2]
        absolute = self._absolute_target()
        if absolute is not None:
            # absolute-form: its authority, not the Host header (RFC 9112 3.2.2), as aiohttp
            return absolute.host or ""
        host = self.headers.get("Host")
        if host is not None:
            return host
        # No Host (HTTP/1.0): the local address the request came in on, as aiohttp 3.14.
        sockname = self._conn.sockname
        if not sockname:
            return ""
        if isinstance(sockname, tuple):
            return f"[{sockname[0]}]" if len(sockname) == 4 else str(sockname[0])
        return str(sockname)

    @property
    def scheme(self) -> str:
        overrides = self._overrides
        if overrides is not None and overrides[1] is not None:
            return overrides[1]
        transport = self._conn.transport
        if transport is not None and transport.get_extra_info("sslcontext") is not None:
            return "https"
        return "http"

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def remote(self) -> str | None:
        overrides = self._overrides
        if overrides is not None and overrides[0] is not None:
            return overrides[0]
        peer = self._conn.peername
        if isinstance(peer, (list, tuple)):
            return str(peer[0])
        return str(peer) if peer is not None else None

    @property
    def keep_alive(self) -> bool:
        return self._exchange.keep_alive

    @property
    def transport(self) -> asyncio.Transport | None:
        """The connection's transport; None once the client has left (closed its side, or
        the connection is gone), as aiohttp reports a client that went away."""
        return None if self._exchange.left else self._conn.transport

    @property
    def protocol(self) -> Connection:
        return self._conn

    @property
    def writer(self) -> Any:
        """aiohttp's ``AbstractStreamWriter`` of a request made by ``make_mocked_request(writer=)``;
        for a served request, a :class:`InterimWriter` that takes only the ``100 Continue`` an
        aiohttp expect handler writes (squall's connection frames the response itself)."""
        writer = getattr(self._conn, "writer", None)
        return InterimWriter(self._raw.body) if writer is None else writer

    @property
    def task(self) -> asyncio.Task[Any] | None:
        """The task handling the request (None outside a running loop: a mocked request's)."""
        if self._task is not None:
            return self._task
        try:
            return asyncio.current_task()
        except RuntimeError:
            return None

    @property
    def message(self) -> RawRequestMessage:
        """Deprecated, as in aiohttp (warns): the request head as aiohttp's parser gives it."""
        warnings.warn("Request.message is deprecated", DeprecationWarning, stacklevel=2)
        return self._message

    @property
    def _message(self) -> RawRequestMessage:
        # aiohttp's name for it, which plugins read
        headers = self.headers
        coding = headers.get("Content-Encoding", "").lower()
        return RawRequestMessage(
            self.method,
            self.raw_path,
            self.version,
            headers,
            self.raw_headers,
            not self._exchange.keep_alive,
            coding if coding in ("gzip", "deflate", "br", "zstd") else None,
            self._raw.upgrade,
            "chunked" in headers.get("Transfer-Encoding", "").lower(),
            self.rel_url,
        )

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The connection's event loop; deprecated, as in aiohttp (warns)."""
        warnings.warn("request.loop property is deprecated", DeprecationWarning, stacklevel=2)
        return self._conn.loop

    @property
    def cookies(self) -> Mapping[str, str]:
        """The cookies of the (first) Cookie header, parsed leniently as aiohttp does."""
        cookies = self._cookies
        if cookies is None:
            parsed = parse_cookies(self.headers.get("Cookie", ""))
            cookies = self._cookies = MappingProxyType(parsed)
        return cookies

    # -- conditional requests, ranges, proxies --------------------------------------------

    @property
    def if_modified_since(self) -> datetime.datetime | None:
        return parse_http_date(self.headers.get("If-Modified-Since"))

    @property
    def if_unmodified_since(self) -> datetime.datetime | None:
        return parse_http_date(self.headers.get("If-Unmodified-Since"))

    @property
    def if_range(self) -> datetime.datetime | None:
        return parse_http_date(self.headers.get("If-Range"))

    @property
    def if_match(self) -> tuple[ETag, ...] | None:
        return parse_etags(self.headers.get("If-Match"))

    @property
    def if_none_match(self) -> tuple[ETag, ...] | None:
        return parse_etags(self.headers.get("If-None-Match"))

    @property
    def http_range(self) -> slice:
        """The Range header as a slice; ValueError when it is not one valid byte range."""
        return parse_range(self.headers.get("Range"))

    @property
    def forwarded(self) -> tuple[Mapping[str, str], ...]:
        """Every RFC 7239 Forwarded element, first proxy first (not trusted: just parsed)."""
        return parse_forwarded(self.headers.getall("Forwarded", ()))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        transport = self._conn.transport
        return default if transport is None else transport.get_extra_info(name, default)

    def clone(
        self,
        *,
        method: str | None = None,
        rel_url: str | URL | None = None,
        headers: Any = None,
        scheme: str | None = None,
        host: str | None = None,
        remote: str | None = None,
        client_max_size: int | None = None,
        client_max_fields: int | None = None,
    ) -> BaseRequest:
        """A copy with some parts replaced (the body stream is shared, as in aiohttp);
        ``RuntimeError`` once the body has been read."""
        if self._read_bytes:
            raise RuntimeError("Cannot clone request after reading its content")
        raw = self._raw
        target = raw.target if rel_url is None else str(URL(rel_url)).encode()
        raw_headers = raw.headers
        if headers is not None:
            raw_headers = [(k.encode(), v.encode()) for k, v in CIMultiDict(headers).items()]
        new_raw = type(raw)(
            method or raw.method,
            target,
            raw.version,
            raw_headers,
            raw.keep_alive,
            raw.upgrade,
            raw.expect_continue,
            raw.body,
            raw.out,
        )
        clone = type(self)(
            new_raw,
            self._conn,
            self._app,
            self._client_max_size if client_max_size is None else client_max_size,
            self._client_max_fields if client_max_fields is None else client_max_fields,
        )
        clone._exchange = self._exchange
        clone._match_info = self._match_info
        clone._read_bytes = self._read_bytes
        if hasattr(self, "_content"):  # the same body stream, decompressed or not
            clone._content = self._content
        if scheme is not None or host is not None or remote is not None:
            # Only what is passed, as aiohttp: a clone of a clone does not inherit overrides.
            clone._overrides = (remote, scheme, host)
        return clone

    @property
    def content_type(self) -> str:
        value = self.headers.get("Content-Type")
        if not value:
            return "application/octet-stream"
        return value.partition(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        value = self.headers.get("Content-Type", "")
        for param in value.split(";")[1:]:
            key, _, val = param.partition("=")
            if key.strip().lower() == "charset":
                return val.strip().strip('"')
        return None

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None else None

    @property
    def client_max_size(self) -> int:
        return self._client_max_size

    @property
    def client_max_fields(self) -> int:
        """Most form fields ``post()`` takes: the application's ``client_max_fields``, or the
        value given to ``clone()``."""
        return self._max_fields()

    # -- routing and application ----------------------------------------------------------

    @property
    def match_info(self) -> UrlMappingMatchInfo:
        assert self._match_info is not None
        return self._match_info

    @property
    def app(self) -> Application:
        match_info = self._match_info
        if match_info is not None and match_info._current_app is not None:
            return match_info._current_app
        return self._app

    @property
    def config_dict(self) -> ChainMapProxy:
        """The state of ``request.app``, then of each parent application, read-only."""
        match_info = self._match_info
        if match_info is None:
            return ChainMapProxy((self._app,))
        apps = match_info.apps
        app = self.app
        return ChainMapProxy(reversed(apps[: apps.index(app) + 1]))

    # -- the body -------------------------------------------------------------------------

    @property
    def content(self) -> StreamReader:
        """The body stream; decompressed when sent with Content-Encoding gzip or deflate."""
        try:
            return self._content
        except AttributeError:  # first use (the slot is left unset on the hot path)
            pass
        body = self._raw.body
        if body is not EMPTY_PAYLOAD:
            for name, value in self._raw.headers:  # without building the headers mapping
                if len(name) == 16 and name.lower() == b"content-encoding":
                    body = inflating(body, value.decode("latin-1"))
                    break
        self._content = body
        return body

    @property
    def body_exists(self) -> bool:
        return not self._raw.body.is_eof() or self._raw.body.total_bytes > 0

    @property
    def can_read_body(self) -> bool:
        return not self._raw.body.at_eof()

    @property
    def has_body(self) -> bool:
        """Deprecated alias of :attr:`can_read_body`: warns, as aiohttp does."""
        warnings.warn("Deprecated, use .can_read_body #2005", DeprecationWarning, stacklevel=2)
        return self.can_read_body

    async def read(self) -> bytes:
        """The whole body; 413 past ``client_max_size``."""
        if self._read_bytes is None:
            stream = self.content
            limit = self._client_max_size
            declared = self._raw_content_length()
            if limit and declared is not None and declared > limit:
                self._exchange.keep_alive = False
                raise HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)
            chunks = []
            size = 0
            try:
                while True:
                    chunk = await stream.readany()
                    if not chunk:
                        break
                    size += len(chunk)
                    if limit and size > limit:
                        self._exchange.keep_alive = False
                        raise HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
                    chunks.append(chunk)
            except RequestPayloadError as exc:
                self._exchange.keep_alive = False
                raise payload_error(exc) from exc
            self._read_bytes = b"".join(chunks)
        return self._read_bytes

    def _raw_content_length(self) -> int | None:
        for name, value in self._raw.headers:
            if len(name) == 14 and name.lower() == b"content-length":
                return int(value)
        return None

    async def text(self) -> str:
        body = await self.read()
        return body.decode(self.charset or "utf-8")

    async def json(self, *, loads: Any = json.loads) -> Any:
        """The body decoded as JSON (whatever its Content-Type, as aiohttp)."""
        return loads(await self.text())

    async def multipart(self) -> MultipartReader:
        """The body as a stream of parts (``multipart/*`` bodies); see ``squall.web.multipart``.

        A part's ``read()`` past ``client_max_size`` raises 413; a malformed body raises
        ``MultipartError`` (a ``ValueError``; 400 if the handler lets it out).
        """
        limits = self._conn.limits
        return MultipartReader(
            self.headers,
            self.content,
            client_max_size=self._client_max_size or sys.maxsize,
            max_field_size=limits.max_field_size,
            max_headers=limits.max_headers,
            max_head_size=limits.max_head_size,
            max_size_error_cls=HTTPRequestEntityTooLarge,
        )

    async def post(self) -> MultiDictProxy[Any]:
        """Form fields of an urlencoded or multipart/form-data body (files as ``FileField``).

        More than ``client_max_size`` body bytes or ``client_max_fields`` fields (of the
        application, 1000 by default): 413, as in aiohttp.
        """
        if self._post is not None:
            return self._post
        if self.method not in ("POST", "PUT", "PATCH", "DELETE"):
            self._post = MultiDictProxy(MultiDict())
            return self._post
        if self.content_type not in (
            "",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            self._post = MultiDictProxy(MultiDict())
            return self._post
        if self.content_type == "multipart/form-data":
            limit = self._client_max_size
            declared = self._raw_content_length()
            try:
                if limit and declared is not None and declared > limit:
                    raise HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)
                form = await read_form(
                    await self.multipart(), self.content, limit, self._max_fields()
                )
            except HTTPRequestEntityTooLarge:
                self._exchange.keep_alive = False  # the rest of the body is not read
                raise
            self._post = MultiDictProxy(form)
            return self._post
        data = await self.read()
        charset = self.charset or "utf-8"
        query = data.rstrip().decode(charset)
        max_fields = self._max_fields()
        if 0 < max_fields <= query.count("&"):  # parse_qsl's count of fields
            raise too_many_fields(max_fields)
        pairs = parse_qsl(query, keep_blank_values=True, encoding=charset)
        self._post = MultiDictProxy(MultiDict(pairs))
        return self._post

    def _close_files(self) -> None:
        """Close the temporary files of post()'s file fields: the handler is done with them
        (as aiohttp, once it has returned)."""
        form = self._post
        if form is not None:
            for value in form.values():
                if isinstance(value, FileField):
                    value.file.close()

    def _max_fields(self) -> int:
        if self._client_max_fields is not None:
            return self._client_max_fields
        app = self._app
        return MAX_FIELDS if app is None else app._client_max_fields

    async def release(self) -> None:
        """Read and drop what is left of the body."""
        while await self._raw.body.readany():
            pass

    # -- hooks ----------------------------------------------------------------------------

    async def _prepare_hook(self, response: StreamResponse) -> None:
        match_info = self._match_info
        if match_info is None:
            return
        shown = False
        for app in match_info.apps:
            signal = app.on_response_prepare
            if signal:
                if not shown:  # the head's Date and Server, as aiohttp's handlers see them
                    response._show_head_defaults()
                    shown = True
                await signal.send(self, response)


def payload_error(exc: RequestPayloadError) -> HTTPException:
    """The answer to a body the wire layer refused: 408 (too slow), 413 (too big) or 400."""
    if exc.status == 408:
        return HTTPRequestTimeout(text=f"Request body not received in time: {exc}")
    if exc.status == 413:
        return HTTPRequestEntityTooLarge(0, text=f"Request body too large: {exc}")
    return HTTPBadRequest(text=f"Malformed request body: {exc}")


@mypyc_attr(allow_interpreted_subclasses=True)
class Request(BaseRequest):
    """The request handlers receive: a BaseRequest that knows its route and application."""

    __slots__ = ()
