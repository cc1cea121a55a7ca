"""Testing squall applications: aiohttp.test_utils' API over squall's server.

``TestServer``/``RawTestServer`` serve on a loopback port, ``TestClient`` talks to them with
aiohttp's client (the only part that needs aiohttp: squall's ``[testing]`` extra),
``make_mocked_request`` builds a request without a socket, ``AioHTTPTestCase`` is the
unittest base class (``self.client``, ``self.server``, ``self.app``). The pytest plugin
(``squall.testing.pytest_plugin``, loaded automatically) provides the ``squall_client``,
``squall_server``, ``squall_raw_server``, ``squall_unused_port`` and ``squall_loop`` fixtures.
See docs/testing.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .loop import loop_context, setup_test_loop, teardown_test_loop
from .mocked import make_mocked_coro, make_mocked_request
from .server import (
    REUSE_ADDRESS,
    BaseTestServer,
    RawTestServer,
    TestServer,
    get_port_socket,
    get_unused_port_socket,
    unused_port,
)

if TYPE_CHECKING:
    from .case import AioHTTPTestCase, unittest_run_loop
    from .client import TestClient

__all__ = (
    "REUSE_ADDRESS",
    "AioHTTPTestCase",
    "BaseTestServer",
    "RawTestServer",
    "TestClient",
    "TestServer",
    "get_port_socket",
    "get_unused_port_socket",
    "loop_context",
    "make_mocked_coro",
    "make_mocked_request",
    "setup_test_loop",
    "teardown_test_loop",
    "unittest_run_loop",
    "unused_port",
)


def __getattr__(name: str) -> Any:
    # TestClient imports aiohttp (and AioHTTPTestCase uses it): only when asked for.
    if name == "TestClient":
        from .client import TestClient

        return TestClient
    if name in ("AioHTTPTestCase", "unittest_run_loop"):
        from . import case

        return getattr(case, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
