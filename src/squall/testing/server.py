"""Test servers: an application (or a bare handler) served by squall on a loopback port."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable
from ssl import SSLContext
from types import TracebackType
from typing import Any, Self

from yarl import URL

from ..http.server import HttpServer
from ..web.app import Application
from ..web.request import BaseRequest
from ..web.response import StreamResponse
from ..web.runner import AppRunner, BaseRunner, TCPSite

__all__ = (
    "REUSE_ADDRESS",
    "BaseTestServer",
    "RawTestServer",
    "TestServer",
    "get_port_socket",
    "get_unused_port_socket",
    "unused_port",
)

RawHandler = Callable[[BaseRequest], Awaitable[StreamResponse]]


#: Whether test sockets set SO_REUSEADDR (as aiohttp's: not on Windows, whose meaning differs).
REUSE_ADDRESS = os.name == "posix"


def get_port_socket(
    host: str, port: int, family: socket.AddressFamily = socket.AF_INET
) -> socket.socket:
    """A TCP socket bound to ``(host, port)``, not listening yet (for ``SockSite``)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    if REUSE_ADDRESS:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def get_unused_port_socket(
    host: str, family: socket.AddressFamily = socket.AF_INET
) -> socket.socket:
    """A TCP socket bound to ``host`` and an ephemeral port."""
    return get_port_socket(host, 0, family)


def unused_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AsyncOnly:
    """``async with`` runs start_server() then close(); a plain ``with`` is refused, as in
    aiohttp's test utilities."""

    async def start_server(self) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> None:
        raise TypeError("Use async with instead")

    def __exit__(self, *exc_info: object) -> None:  # pragma: no cover - never entered
        pass

    async def __aenter__(self) -> Self:
        await self.start_server()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class BaseTestServer(AsyncOnly):
    """Serves on ``host`` (loopback by default) and an ephemeral port until :meth:`close`.

    Runs squall's real server (``AppRunner`` + ``TCPSite``), with ``handler_cancellation=True``
    as aiohttp's test server does. ``start_server(**kwargs)`` passes ``kwargs`` to the runner
    (``access_log``, ``keepalive_timeout``, ...); ``ssl=`` an ``SSLContext`` serves HTTPS.
    ``loop`` is accepted as aiohttp's and unused: the server runs on the running loop.
    """

    __test__ = False  # not a test class, despite the name

    def __init__(
        self,
        *,
        scheme: str = "",
        host: str = "127.0.0.1",
        port: int | None = None,
        skip_url_asserts: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
        **runner_kwargs: Any,
    ) -> None:
        self.runner: BaseRunner | None = None
        self.host = host
        self.port = port
        self.scheme = scheme
        self.skip_url_asserts = skip_url_asserts
        self._runner_kwargs = runner_kwargs
        self._root: URL | None = None
        self._closed = False

    async def start_server(
        self, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any
    ) -> None:
        """Set the runner up and start listening (does nothing the second time)."""
        if self.runner is not None:
            return
        kwargs = {"handler_cancellation": True, **self._runner_kwargs, **kwargs}
        ssl_context: SSLContext | None = kwargs.pop("ssl", None)
        self.runner = runner = self._make_runner(**kwargs)
        await runner.setup()
        site = TCPSite(runner, self.host, self.port or 0, ssl_context=ssl_context)
        await site.start()
        self.port = site.port
        if not self.scheme:
            self.scheme = "https" if ssl_context is not None else "http"
        host = self.host
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:  # a name, not an address
            pass
        self._root = URL(f"{self.scheme}://{host}:{self.port}")

    def _make_runner(self, **kwargs: Any) -> BaseRunner:
        raise NotImplementedError

    def make_url(self, path: str | URL) -> URL:
        """The absolute URL of ``path`` (which must be relative) on this server."""
        assert self._root is not None, "the server is not started"
        url = URL(path)
        if self.skip_url_asserts:
            return URL(str(self._root) + str(path))
        assert not url.absolute, f"{path!r} is not a relative URL"
        return self._root.join(url)

    @property
    def started(self) -> bool:
        return self.runner is not None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def handler(self) -> HttpServer:
        """The running :class:`squall.http.HttpServer` (aiohttp's ``web.Server`` here)."""
        assert self.runner is not None and self.runner.server is not None
        return self.runner.server

    async def close(self) -> None:
        """Stop listening and clean the application up; calling it again does nothing."""
        if self.runner is not None and not self._closed:
            await self.runner.cleanup()
            self._root = None
            self.port = None
            self._closed = True


class TestServer(BaseTestServer):
    """Serves an :class:`~squall.web.Application`: ``async with TestServer(app) as server``."""

    def __init__(
        self,
        app: Application,
        *,
        scheme: str = "",
        host: str = "127.0.0.1",
        port: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.app = app
        super().__init__(scheme=scheme, host=host, port=port, **kwargs)

    def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return AppRunner(self.app, **kwargs)


class RawTestServer(BaseTestServer):
    """Serves one handler for every method and path: ``async def handler(request)``.

    aiohttp runs it on its low-level ``web.Server``; here the handler is the only route of an
    application (``match_info`` is empty, ``request.app`` that application), and middlewares
    and signals do not apply.
    """

    def __init__(
        self,
        handler: RawHandler,
        *,
        scheme: str = "",
        host: str = "127.0.0.1",
        port: int | None = None,
        **kwargs: Any,
    ) -> None:
        self._handler = handler
        super().__init__(scheme=scheme, host=host, port=port, **kwargs)

    def _make_runner(self, **kwargs: Any) -> BaseRunner:
        app = Application()
        app.router.add_route("*", r"/{_raw_path:.*}", self._call)
        return AppRunner(app, **kwargs)

    async def _call(self, request: BaseRequest) -> StreamResponse:
        request.match_info.clear()
        return await self._handler(request)
