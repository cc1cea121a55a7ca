"""``pytest -p squall.testing.aiohttp_plugin``: an aiohttp test suite, unmodified, on squall.

Loading this plugin installs :func:`squall.install_as_aiohttp` before any conftest.py runs, then
loads ``aiohttp.pytest_plugin``, whose ``aiohttp_client``/``aiohttp_server``/
``aiohttp_raw_server``/``loop`` fixtures now start squall's server (through the aliased
``aiohttp.test_utils``) and talk to it with aiohttp's real client. See docs/migrating.md.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from ..aiohttp_alias import install_as_aiohttp
from .loop import open_test_loops, teardown_test_loop

install_as_aiohttp()

pytest_plugins = ("aiohttp.pytest_plugin",)


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, None]:
    """Close the loop aiohttp's plugin made for a coroutine test that failed.

    aiohttp's ``pytest_pyfunc_call`` tears its loop down only when the test passes; the loop
    left open would otherwise be collected during a later test, whose ResourceWarnings
    ("unclosed event loop") pytest then reports as that test's failure.
    """
    before = set(open_test_loops())
    outcome = yield
    if outcome.excinfo is None:
        return
    for loop in open_test_loops():
        if loop not in before and not loop.is_running():
            teardown_test_loop(loop)
