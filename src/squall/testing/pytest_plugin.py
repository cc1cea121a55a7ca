"""The pytest plugin (entry point ``squall``, loaded automatically; ``-p no:squall`` disables it).

Fixtures, named after aiohttp's with ``squall_`` for ``aiohttp_``: ``squall_client``,
``squall_server``, ``squall_raw_server``, ``squall_unused_port``, and ``squall_loop`` (aiohttp's
``loop``). An ``async def`` test, or an async fixture, runs on ``squall_loop`` when the test uses
that fixture, directly or through another squall fixture; the plugin leaves every other test
alone, so it coexists with pytest-asyncio and anyio's plugin.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator, Iterator
from typing import TYPE_CHECKING, Any, Protocol, cast, overload

import pytest

from .._loop import new_event_loop
from ..web.app import Application
from ..web.request import BaseRequest, Request
from .loop import LoopFactory, loop_context
from .server import BaseTestServer, RawHandler, RawTestServer, TestServer, unused_port

if TYPE_CHECKING:
    from .client import TestClient

LOOP = "squall_loop"


class SquallClient(Protocol):
    """The type of the ``squall_client`` fixture."""

    @overload
    async def __call__(
        self, __param: Application, *, server_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> TestClient[Request, Application]: ...

    @overload
    async def __call__(
        self,
        __param: BaseTestServer,
        *,
        server_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TestClient[BaseRequest, None]: ...


class SquallServer(Protocol):
    """The type of the ``squall_server`` fixture."""

    def __call__(
        self, app: Application, *, host: str = ..., port: int | None = None, **kwargs: Any
    ) -> Awaitable[TestServer]: ...


class SquallRawServer(Protocol):
    """The type of the ``squall_raw_server`` fixture."""

    def __call__(
        self, handler: RawHandler, *, port: int | None = None, **kwargs: Any
    ) -> Awaitable[RawTestServer]: ...


# -- running coroutines ---------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test that uses ``squall_loop`` on that loop."""
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func) or LOOP not in pyfuncitem.funcargs:
        return None
    funcargs = pyfuncitem.funcargs
    loop = cast(asyncio.AbstractEventLoop, funcargs[LOOP])
    loop.run_until_complete(func(**{n: funcargs[n] for n in pyfuncitem._fixtureinfo.argnames}))
    return True


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    """Run an async fixture on ``squall_loop`` when the test uses that loop."""
    func = fixturedef.func
    is_async = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
    if not is_async or LOOP not in request.fixturenames:
        return (yield)
    loop: asyncio.AbstractEventLoop = request.getfixturevalue(LOOP)
    instance = request.instance
    if instance is not None and inspect.ismethod(func) and type(func.__self__) is type(instance):
        func = func.__func__.__get__(instance)  # a fixture method: bind it to this test's class
    fixturedef.func = _on_loop(func, loop)  # type: ignore[misc]
    try:
        return (yield)
    finally:
        fixturedef.func = func  # type: ignore[misc]


def _on_loop(func: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    """A plain (generator) function that runs the async fixture ``func`` on ``loop``."""
    if inspect.isasyncgenfunction(func):

        def setup_and_teardown(**kwargs: Any) -> Iterator[Any]:
            agen: AsyncGenerator[Any, None] = func(**kwargs)
            yield loop.run_until_complete(anext(agen))
            try:
                loop.run_until_complete(anext(agen))
            except StopAsyncIteration:
                return
            loop.run_until_complete(agen.aclose())
            raise ValueError(f"{func.__qualname__}: the fixture yielded more than once")

        return setup_and_teardown

    def setup(**kwargs: Any) -> Any:
        coro: Coroutine[Any, Any, Any] = func(**kwargs)
        return loop.run_until_complete(coro)

    return setup


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def squall_loop_factory() -> LoopFactory:
    """What ``squall_loop`` calls for a loop: squall's choice (uvloop when installed).

    Override it (in a conftest.py, a module, a class) to test on another loop, e.g. return
    ``asyncio.SelectorEventLoop`` for asyncio's own.
    """
    return new_event_loop


@pytest.fixture
def squall_loop(squall_loop_factory: LoopFactory) -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop per test, current while the test runs, closed after it."""
    with loop_context(squall_loop_factory, fast=True) as loop:
        yield loop


@pytest.fixture
def squall_unused_port(squall_loop: asyncio.AbstractEventLoop) -> Callable[[], int]:
    """A function returning a port free on 127.0.0.1.

    It takes ``squall_loop`` so that an async test using it runs, as under aiohttp's plugin.
    """
    return unused_port


@pytest.fixture
def squall_server(squall_loop: asyncio.AbstractEventLoop) -> Iterator[SquallServer]:
    """``await squall_server(app, host=..., port=..., **runner_kwargs)``: a started TestServer."""
    servers: list[TestServer] = []

    async def make(
        app: Application, *, host: str = "127.0.0.1", port: int | None = None, **kwargs: Any
    ) -> TestServer:
        server = TestServer(app, host=host, port=port)
        await server.start_server(**kwargs)
        servers.append(server)
        return server

    yield make
    squall_loop.run_until_complete(_close_all(servers))


@pytest.fixture
def squall_raw_server(squall_loop: asyncio.AbstractEventLoop) -> Iterator[SquallRawServer]:
    """``await squall_raw_server(handler, port=..., **runner_kwargs)``: a started RawTestServer."""
    servers: list[RawTestServer] = []

    async def make(handler: RawHandler, *, port: int | None = None, **kwargs: Any) -> RawTestServer:
        server = RawTestServer(handler, port=port)
        await server.start_server(**kwargs)
        servers.append(server)
        return server

    yield make
    squall_loop.run_until_complete(_close_all(servers))


@pytest.fixture
def squall_client(squall_loop: asyncio.AbstractEventLoop) -> Iterator[SquallClient]:
    """``await squall_client(app_or_server, server_kwargs=..., **session_kwargs)``: a TestClient.

    Given an Application it starts a TestServer for it; given a test server, it uses it. Every
    client (and its server) is closed after the test.
    """
    from .client import TestClient  # aiohttp is needed from here on only

    clients: list[TestClient[Any, Any]] = []

    async def make(
        param: Application | BaseTestServer,
        *,
        server_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TestClient[Any, Any]:
        client: TestClient[Any, Any]
        if isinstance(param, Application):
            client = TestClient(TestServer(param, **(server_kwargs or {})), **kwargs)
        elif isinstance(param, BaseTestServer):
            client = TestClient(param, **kwargs)
        else:
            raise ValueError(f"Unknown argument type: {type(param)!r}")
        await client.start_server()
        clients.append(client)
        return client

    yield make  # type: ignore[misc]
    squall_loop.run_until_complete(_close_all(clients))


async def _close_all(things: list[Any]) -> None:
    while things:
        await things.pop().close()
