"""squall.testing.AioHTTPTestCase: real unittest suites, run programmatically.

Each test here builds a module of ``unittest`` test cases from source, runs it with a
``TextTestRunner`` (in a thread, so that a hang fails the test instead of blocking pytest) and
checks the result. The same suite runs under aiohttp's ``AioHTTPTestCase`` with ``aiohttp.web``
and, names replaced as docs/testing.md says, under squall's with ``squall.web``.
"""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
import threading
import types
import unittest
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import squall.testing
from squall.testing import AioHTTPTestCase, unittest_run_loop

TIMEOUT = 30.0
DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"

# An aiohttp unittest suite, as a user would write it.
SUITE = """
import asyncio

from aiohttp import web
from aiohttp.test_utils import AioHTTPTestCase, TestServer, unittest_run_loop, unused_port

EVENTS = []
STATE = web.AppKey("state", dict)


async def hello(request):
    name = request.match_info.get("name") or request.app[STATE]["greeting"]
    return web.Response(text=f"Hello, {name}!")


async def rename(request):
    request.app[STATE]["greeting"] = await request.text()
    return web.Response(status=204)


async def on_startup(app):
    EVENTS.append("startup")
    app[STATE]["greeting"] = app[STATE]["greeting"].upper()


async def on_shutdown(app):
    EVENTS.append("shutdown")


async def on_cleanup(app):
    EVENTS.append("cleanup")


def make_app():
    app = web.Application()
    app[STATE] = {"greeting": "world"}
    app.router.add_get("/", hello)
    app.router.add_get("/hello/{name}", hello)
    app.router.add_put("/greeting", rename)
    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


class HelloTests(AioHTTPTestCase):
    async def get_application(self):
        return make_app()

    async def test_get(self):
        resp = await self.client.get("/")
        self.assertEqual(resp.status, 200)
        self.assertEqual(await resp.text(), "Hello, WORLD!")

    async def test_context_manager_and_match_info(self):
        async with self.client.get("/hello/you") as resp:
            self.assertEqual(await resp.text(), "Hello, you!")
        self.assertEqual((await self.client.post("/")).status, 405)
        self.assertEqual((await self.client.get("/nowhere")).status, 404)

    async def test_state_a_changes(self):
        resp = await self.client.put("/greeting", data="changed")
        self.assertEqual(resp.status, 204)
        self.assertEqual(self.app[STATE], {"greeting": "changed"})

    async def test_state_b_is_fresh(self):
        # Each test gets a new application: test_state_a_changes' change is gone.
        self.assertEqual(self.app[STATE], {"greeting": "WORLD"})

    async def test_attributes_and_signals(self):
        self.assertIs(self.loop, asyncio.get_running_loop())
        self.assertIs(self.client.server, self.server)
        self.assertIs(self.server.app, self.app)
        self.assertIs(self.client.app, self.app)
        # Startup ran for this test's application; shutdown and cleanup not yet.
        self.assertEqual(EVENTS[-1], "startup")
        self.assertEqual(EVENTS.count("startup"), EVENTS.count("cleanup") + 1)

    @unittest_run_loop
    async def test_with_the_old_decorator(self):
        self.assertEqual((await self.client.get("/")).status, 200)

    def test_sync_method(self):
        self.assertTrue(self.server.started)


class CustomServerTests(AioHTTPTestCase):
    async def get_application(self):
        return make_app()

    async def get_server(self, app):
        self.chosen_port = unused_port()
        return TestServer(app, host="127.0.0.1", port=self.chosen_port, scheme="http")

    async def get_client(self, server):
        client = await super().get_client(server)
        client.session.headers["X-From"] = "get_client"
        return client

    async def test_port_and_url(self):
        self.assertEqual(self.server.port, self.chosen_port)
        self.assertEqual(self.client.port, self.chosen_port)
        self.assertEqual(
            str(self.client.make_url("/a")), f"http://127.0.0.1:{self.chosen_port}/a"
        )
        self.assertEqual(self.client.session.headers["X-From"], "get_client")
        self.assertEqual((await self.client.get("/")).status, 200)


class SetUpTests(AioHTTPTestCase):
    async def get_application(self):
        app = make_app()
        app.router.add_get("/extra", hello)
        return app

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.ready = await self.client.get("/extra")

    async def asyncTearDown(self):
        self.ready.release()
        await super().asyncTearDown()

    async def test_setup_made_a_request(self):
        self.assertEqual(await self.ready.text(), "Hello, WORLD!")
"""

SUITE_TESTS = 9

# docs/testing.md's migration lines, as replacements of names.
RENAMES = [
    ("from aiohttp import web", "from squall import web"),
    ("aiohttp.test_utils", "squall.testing"),
]


def _migrated(source: str) -> str:
    for old, new in RENAMES:
        source = source.replace(old, new)
    assert "aiohttp" not in source
    return source


def _module(source: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # @unittest_run_loop
        exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def _tests(suite: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from _tests(test)
        else:
            yield test


def _run(
    source: str, name: str = "suite"
) -> tuple[unittest.TestResult, str, types.ModuleType, list[unittest.TestCase]]:
    """Run every test case of ``source``: the result, the runner's output, the module and the
    test instances (kept, for a look at them afterwards)."""
    module = _module(source, name)
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    tests = list(_tests(suite))
    stream = io.StringIO()
    outcome: list[unittest.TestResult] = []

    def run() -> None:
        outcome.append(unittest.TextTestRunner(stream=stream, verbosity=2).run(suite))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), f"the suite hung:\n{stream.getvalue()}"
    assert outcome, stream.getvalue()
    return outcome[0], stream.getvalue(), module, tests


def _assert_passed(result: unittest.TestResult, output: str, count: int) -> None:
    assert result.testsRun == count, output
    assert result.wasSuccessful(), output
    assert not result.skipped, output


def test_the_suite_passes_under_aiohttp() -> None:
    result, output, module, _ = _run(SUITE)
    _assert_passed(result, output, SUITE_TESTS)
    assert module.EVENTS == ["startup", "shutdown", "cleanup"] * SUITE_TESTS


def test_the_suite_passes_under_squall() -> None:
    result, output, module, tests = _run(_migrated(SUITE))
    _assert_passed(result, output, SUITE_TESTS)
    # Signals ran once per test, each test's cleanup before the next test's startup.
    assert module.EVENTS == ["startup", "shutdown", "cleanup"] * SUITE_TESTS
    for test in tests:
        assert isinstance(test, AioHTTPTestCase)
        assert isinstance(test.server, squall.testing.TestServer)
        assert test.server.closed and test.client.session.closed


def test_the_loop_is_unittests() -> None:
    source = """
import asyncio
from squall.testing import AioHTTPTestCase
from squall import web

SEEN = []

class LoopTests(AioHTTPTestCase):
    async def get_application(self):
        return web.Application()

    async def test_loop(self):
        SEEN.append(type(self.loop))
"""
    result, output, module, _ = _run(source)
    _assert_passed(result, output, 1)
    (seen,) = module.SEEN
    # unittest's loop, from asyncio's policy as under aiohttp (importing squall did not change it)
    made = asyncio.get_event_loop_policy().new_event_loop()
    made.close()
    assert seen is type(made)


FAILING = """
from squall import web
from squall.testing import AioHTTPTestCase

EVENTS = []


async def on_cleanup(app):
    EVENTS.append("cleanup")


async def ok(request):
    return web.Response(text="ok")


async def broken_startup(app):
    raise RuntimeError("startup failed")


class FailingTests(AioHTTPTestCase):
    async def get_application(self):
        app = web.Application()
        app.router.add_get("/", ok)
        app.on_cleanup.append(on_cleanup)
        return app

    async def test_fails(self):
        resp = await self.client.get("/")
        self.assertEqual(resp.status, 404)

    async def test_errors(self):
        await self.client.get("/")
        raise ValueError("boom")

    async def test_passes(self):
        self.assertEqual(await (await self.client.get("/")).text(), "ok")


class NoApplicationTests(AioHTTPTestCase):
    async def test_nothing(self):
        pass


class BrokenStartupTests(AioHTTPTestCase):
    async def get_application(self):
        app = web.Application()
        app.on_startup.append(broken_startup)
        return app

    async def test_never_runs(self):
        raise AssertionError("not reached")
"""


def test_failures_and_errors_are_reported() -> None:
    result, output, module, tests = _run(FAILING)
    assert result.testsRun == 5, output
    failed = {test.id().rsplit(".", 1)[-1]: text for test, text in result.failures}
    errored = {test.id().rsplit(".", 1)[-1]: text for test, text in result.errors}
    assert set(failed) == {"test_fails"}, output
    assert "AssertionError: 200 != 404" in failed["test_fails"]
    assert set(errored) == {"test_errors", "test_nothing", "test_never_runs"}, output
    assert "ValueError: boom" in errored["test_errors"]
    assert "Did you forget to define get_application()?" in errored["test_nothing"]
    assert "RuntimeError: startup failed" in errored["test_never_runs"]
    # The tests that got a server tore it down, whether they passed or not.
    assert module.EVENTS == ["cleanup"] * 3
    # A server that failed to start leaves no open client session behind.
    (broken,) = [test for test in tests if test.id().endswith("test_never_runs")]
    assert isinstance(broken, AioHTTPTestCase)
    assert broken.client.session.closed


def test_unittest_run_loop_is_a_deprecated_no_op() -> None:
    async def method(self: object) -> None:
        pass

    with pytest.warns(DeprecationWarning, match="no longer needed"):
        assert unittest_run_loop(method) is method


def test_names_are_exported() -> None:
    import aiohttp.test_utils

    for name in ("AioHTTPTestCase", "unittest_run_loop"):
        assert name in squall.testing.__all__
        assert hasattr(aiohttp.test_utils, name)
    assert issubclass(AioHTTPTestCase, unittest.IsolatedAsyncioTestCase)


def _doc_example() -> str:
    """docs/testing.md's unittest example (the block that defines an AioHTTPTestCase)."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    found = [block for block in blocks if "(AioHTTPTestCase)" in block]
    assert len(found) == 1
    return str(found[0])


def test_doc_example_and_suite_under_pytest(tmp_path: Path) -> None:
    """pytest runs AioHTTPTestCase suites too (with squall's plugin loaded); so does
    ``python -m unittest``, for the docs' example."""
    (tmp_path / "test_suite.py").write_text(_migrated(SUITE))
    (tmp_path / "test_doc.py").write_text(_doc_example())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.findall(r"^PASSED \S+::(\w+)::(\w+)", result.stdout, re.M)
    assert len(passed) == SUITE_TESTS + 1, result.stdout
    assert ("HelloTests", "test_get") in passed
    result = subprocess.run(
        [sys.executable, "-m", "unittest", "-q", "test_doc"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
