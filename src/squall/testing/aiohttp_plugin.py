"""``pytest -p squall.testing.aiohttp_plugin``: an aiohttp test suite, unmodified, on squall.

Loading this plugin installs :func:`squall.install_as_aiohttp` before any conftest.py runs, then
loads ``aiohttp.pytest_plugin``, whose ``aiohttp_client``/``aiohttp_server``/
``aiohttp_raw_server``/``loop`` fixtures now start squall's server (through the aliased
``aiohttp.test_utils``) and talk to it with aiohttp's real client. See docs/migrating.md.

One thing aiohttp's plugin leaves undone is done here: an ``async def`` test without a loop
fixture runs on a loop the plugin makes, and when that test fails the loop is never closed (its
``_passthrough_loop_context`` has no ``finally``); its sockets are then reported as unclosed
(ResourceWarning) by whichever later test collects them. Such a loop is closed here.
"""

from __future__ import annotations

import asyncio
import inspect
import warnings
from collections.abc import Generator
from typing import Any

import pytest

from ..aiohttp_alias import install_as_aiohttp
from .loop import teardown_test_loop

install_as_aiohttp()

pytest_plugins = ("aiohttp.pytest_plugin",)

_LOOP_FIXTURES = ("proactor_loop", "selector_loop", "uvloop_loop", "loop")


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem: Any) -> Generator[None, Any, None]:
    """Close the loop aiohttp's plugin made for a coroutine test that failed."""
    own_loop = inspect.iscoroutinefunction(pyfuncitem.function) and not any(
        pyfuncitem.funcargs.get(name) for name in _LOOP_FIXTURES
    )
    outcome = yield
    if not own_loop or outcome.excinfo is None:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # none set: aiohttp's plugin did close it
        return
    if not loop.is_closed() and not loop.is_running():
        teardown_test_loop(loop, fast=True)
