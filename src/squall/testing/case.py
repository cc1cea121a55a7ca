"""``AioHTTPTestCase``: aiohttp.test_utils' unittest base class, serving with squall.

Each test method gets a fresh application (``get_application()``), served by a
:class:`TestServer` on a loopback port, and a :class:`TestClient` for it, all on the test's own
event loop (``unittest.IsolatedAsyncioTestCase``'s). Imports aiohttp, for the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import unittest
import warnings
from collections.abc import Awaitable
from typing import Any, TypeVar

from ..web.app import Application
from ..web.request import Request
from .client import TestClient
from .server import TestServer

__all__ = ("AioHTTPTestCase", "unittest_run_loop")

_T = TypeVar("_T")


async def _resolved(value: Awaitable[_T] | _T) -> _T:
    # The factories below are coroutines, as in aiohttp 3.8+; an override written as a plain
    # method (aiohttp's older style) is accepted too.
    if inspect.isawaitable(value):
        return await value
    return value


class AioHTTPTestCase(unittest.IsolatedAsyncioTestCase):
    """A unittest base class for testing a squall application, as aiohttp's.

    Override ``async def get_application(self)`` to return the :class:`~squall.web.Application`
    under test; then in ``async def test_...`` methods:

    * ``self.client`` -- a started :class:`TestClient` (``resp = await self.client.get("/")``);
    * ``self.server`` -- its :class:`TestServer` (``get_server(app)`` makes it);
    * ``self.app`` -- the application, with its startup signals run;
    * ``self.loop`` -- the event loop the test, the server and the client run on.

    ``asyncSetUp`` sets these up and ``asyncTearDown`` closes the client, then the server (which
    runs the application's shutdown and cleanup signals). A subclass that overrides either
    calls ``super()``'s. ``setUpAsync``/``tearDownAsync`` are aiohttp's older names for the
    same steps, kept for subclasses that override them.
    """

    loop: asyncio.AbstractEventLoop
    app: Application
    server: TestServer
    client: TestClient[Request, Application]

    async def get_application(self) -> Application:
        """The application to test: override this (the default calls ``get_app()``)."""
        return self.get_app()

    def get_app(self) -> Application:
        """aiohttp's obsolete, synchronous spelling of :meth:`get_application`."""
        raise RuntimeError("Did you forget to define get_application()?")

    async def get_server(self, app: Application) -> TestServer:
        """The server for ``app``; override to choose its host, port, scheme or runner options,
        e.g. ``return TestServer(app, port=8081, access_log=None)``."""
        return TestServer(app, loop=self.loop)

    async def get_client(self, server: TestServer) -> TestClient[Request, Application]:
        """The client for ``server``; override to pass ``ClientSession`` options."""
        return TestClient(server, loop=self.loop)

    async def asyncSetUp(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.setUpAsync()

    async def setUpAsync(self) -> None:
        self.app = await _resolved(self.get_application())
        self.server = await _resolved(self.get_server(self.app))
        self.client = await _resolved(self.get_client(self.server))
        try:
            await self.client.start_server()
        except BaseException:
            # unittest skips tearDown when setUp fails: close the session (and whatever part
            # of the server started) here, and report the error that stopped the start.
            with contextlib.suppress(Exception):
                await self.client.close()
            raise

    async def asyncTearDown(self) -> None:
        await self.tearDownAsync()

    async def tearDownAsync(self) -> None:
        await self.client.close()


def unittest_run_loop(func: Any, *args: Any, **kwargs: Any) -> Any:
    """aiohttp's decorator for async test methods, a no-op since aiohttp 3.8 (the test case
    runs coroutines itself): returns ``func`` unchanged, with a ``DeprecationWarning``."""
    warnings.warn(
        "Decorator `@unittest_run_loop` is no longer needed in aiohttp 3.8+",
        DeprecationWarning,
        stacklevel=2,
    )
    return func
