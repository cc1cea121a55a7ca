"""One request against aiohttp's server and squall's, for tests that compare the two."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp.test_utils
import aiohttp.web

from squall import web
from squall.testing import TestClient, TestServer

Build = Callable[[Any], Any]  # the web module (aiohttp's or squall's) -> an Application


async def on_both(build: Build, request: Callable[[Any], Awaitable[Any]]) -> tuple[Any, Any]:
    """``request(client)``'s result against aiohttp's server, then against squall's."""
    results = []
    theirs = aiohttp.test_utils.TestClient(aiohttp.test_utils.TestServer(build(aiohttp.web)))
    async with theirs:
        results.append(await request(theirs))
    async with TestClient(TestServer(build(web))) as ours:
        results.append(await request(ours))
    return results[0], results[1]
