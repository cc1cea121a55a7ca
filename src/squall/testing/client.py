"""TestClient: aiohttp's client session pointed at a test server.

This module needs aiohttp's client (``pip install aiohttp``, or squall's ``[testing]`` extra);
nothing else in squall imports aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

try:
    import aiohttp
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "squall.testing.TestClient uses aiohttp's client, which is not installed:"
        " pip install aiohttp (or squall's [testing] extra, docs/install.md)"
    ) from exc

from yarl import URL

from ..web.app import Application
from ..web.request import BaseRequest, Request
from .server import AsyncOnly, BaseTestServer, TestServer

if TYPE_CHECKING:
    from aiohttp import ClientResponse, ClientSession, ClientWebSocketResponse
    from aiohttp.abc import AbstractCookieJar

__all__ = ("TestClient",)

_T = TypeVar("_T")
_Request = TypeVar("_Request", bound=BaseRequest)
_AppOrNone = TypeVar("_AppOrNone", Application, None)


class _Pending(Coroutine[Any, Any, _T]):
    """A request in flight: ``await`` it for the response, or ``async with`` it to release.

    A coroutine, as aiohttp's ``_RequestContextManager``: ``asyncio.create_task`` takes it.
    """

    __slots__ = ("_coro", "_result")

    def __init__(self, coro: Coroutine[Any, Any, _T]) -> None:
        self._coro = coro

    def send(self, value: Any) -> Any:
        return self._coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: TracebackType | None = None) -> Any:
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, _T]:
        return self._coro.__await__()

    async def __aenter__(self) -> _T:
        self._result = await self._coro
        return await self._result.__aenter__()  # type: ignore[attr-defined, no-any-return]

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._result.__aexit__(exc_type, exc, tb)  # type: ignore[attr-defined]


class TestClient(AsyncOnly, Generic[_Request, _AppOrNone]):
    """Requests to a test server by path: ``resp = await client.get("/")``.

    Responses are aiohttp ``ClientResponse`` objects; the session keeps cookies for the
    server's IP address (an unsafe ``CookieJar``, as aiohttp's test client). ``close()`` (or
    leaving ``async with``) closes open responses and WebSockets, the session, then the server.
    """

    __test__ = False  # not a test class, despite the name

    @overload
    def __init__(
        self: TestClient[Request, Application],
        server: TestServer,
        *,
        cookie_jar: AbstractCookieJar | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        **kwargs: Any,
    ) -> None: ...

    @overload
    def __init__(
        self: TestClient[_Request, None],
        server: BaseTestServer,
        *,
        cookie_jar: AbstractCookieJar | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        **kwargs: Any,
    ) -> None: ...

    def __init__(
        self,
        server: BaseTestServer,
        *,
        cookie_jar: AbstractCookieJar | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(server, BaseTestServer):
            raise TypeError(f"server must be a TestServer instance, found type: {type(server)!r}")
        self._server = server
        if cookie_jar is None:
            cookie_jar = aiohttp.CookieJar(unsafe=True)
        self._session = aiohttp.ClientSession(cookie_jar=cookie_jar, **kwargs)
        # Never retry a request silently on a fresh connection: a test should see the failure.
        self._session._retry_connection = False
        self._closed = False
        self._responses: list[ClientResponse] = []
        self._websockets: list[ClientWebSocketResponse[Any]] = []

    async def start_server(self) -> None:
        await self._server.start_server()

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int | None:
        return self._server.port

    @property
    def server(self) -> BaseTestServer:
        return self._server

    @property
    def app(self) -> _AppOrNone:
        """The served application (``None`` for a :class:`RawTestServer`)."""
        return getattr(self._server, "app", None)  # type: ignore[return-value]

    @property
    def session(self) -> ClientSession:
        """The ``aiohttp.ClientSession``; its methods need absolute URLs (see :meth:`make_url`)."""
        return self._session

    def make_url(self, path: str | URL) -> URL:
        return self._server.make_url(path)

    async def _request(self, method: str, path: str | URL, **kwargs: Any) -> ClientResponse:
        resp = await self._session.request(method, self.make_url(path), **kwargs)
        self._responses.append(resp)
        return resp

    def request(self, method: str, path: str | URL, **kwargs: Any) -> _Pending[ClientResponse]:
        """``ClientSession.request`` with a path on the test server instead of a URL."""
        return _Pending(self._request(method, path, **kwargs))

    def get(self, path: str | URL, **kwargs: Any) -> _Pending[ClientResponse]:
        return _Pending(self._request("GET", path, **kwargs))

    def post(self, path: str | URL, **kwargs: Any) -> _Pending[ClientResponse]:
        return _Pending(self._request("POST", path, **kwargs))

    def put(self, path: str | URL, **kwargs: Any) -> _Pending[ClientResponse]:
        return _Pending(self._request("PUT", path, **kwargs))

    def patch(self, path: str | URL, **kwargs: Any) -> _Pending[ClientResponse]:
        return _Pending(self._request("PATCH", path, **kwargs))

    def delete(self, path: str | URL, **kwargs: Any) -> _Pending[ClientResponse]:
        return _Pending(self._request("DELETE", path, **kwargs))

    def options(self, path: str | URL, **kwargs: Any) -> _Pending[ClientResponse]:
        return _Pending(self._request("OPTIONS", path, **kwargs))

    def head(self, path: str | URL, **kwargs: Any) -> _Pending[ClientResponse]:
        return _Pending(self._request("HEAD", path, **kwargs))

    def ws_connect(self, path: str | URL, **kwargs: Any) -> _Pending[ClientWebSocketResponse[Any]]:
        """``ClientSession.ws_connect`` with a path on the test server."""
        return _Pending(self._ws_connect(path, **kwargs))

    async def _ws_connect(self, path: str | URL, **kwargs: Any) -> ClientWebSocketResponse[Any]:
        ws: ClientWebSocketResponse[Any] = await self._session.ws_connect(
            self.make_url(path), **kwargs
        )
        self._websockets.append(ws)
        return ws

    async def close(self) -> None:
        """Close responses, WebSockets, the session and the server; again does nothing."""
        if self._closed:
            return
        self._closed = True
        for resp in self._responses:
            resp.close()
        for ws in self._websockets:
            await ws.close()
        await self._session.close()
        await self._server.close()
