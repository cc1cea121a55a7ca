"""Public behaviour aiohttp's own suite found different (test_web_app, test_web_middleware,
test_web_runner, test_web_functional, test_web_websocket_functional), closed.

Where it makes sense the same application runs on aiohttp's server and on squall's, with
aiohttp's client; what needs ``install_as_aiohttp()`` runs in a subprocess (it cannot be undone).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.abc
import aiohttp.test_utils
import aiohttp.web
import pytest

import squall
from squall import web
from squall.testing import TestClient, TestServer

from .side_by_side import on_both

ENV = {**os.environ, "PYTHONPATH": str(Path(squall.__file__).resolve().parent.parent)}


def run_aliased(code: str) -> Any:
    """Run ``code`` after ``squall.install_as_aiohttp()`` in a new Python; what it printed
    last, as JSON."""
    program = "import squall\nsquall.install_as_aiohttp()\n" + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", program], env=ENV, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- WebSocket message types under the alias ------------------------------------------------


def test_websocket_messages_carry_aiohttps_msg_type_under_the_alias() -> None:
    """``aiohttp.web.WSMsgType is aiohttp.WSMsgType`` in aiohttp; so ``msg.type is
    aiohttp.WSMsgType.TEXT`` holds in a handler, whichever name it imported."""
    out = run_aliased(
        """
        import asyncio, json
        import aiohttp
        from aiohttp import web, web_ws

        async def handler(request):
            ws = web.WebSocketResponse(decode_text=False)
            await ws.prepare(request)
            seen = []
            async for msg in ws:
                seen.append([msg.type is aiohttp.WSMsgType.TEXT, msg.type is web.WSMsgType.TEXT,
                             type(msg.data).__name__])
                await ws.send_str(json.dumps(seen))
            return ws

        async def main():
            app = web.Application()
            app.router.add_get("/", handler)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"http://127.0.0.1:{site.port}/") as ws:
                    await ws.send_str("hi")
                    got = json.loads((await ws.receive()).data)
            await runner.cleanup()
            same = [web.WSMsgType is aiohttp.WSMsgType, web_ws.WSMsgType is aiohttp.WSMsgType]
            print(json.dumps([got, same]))

        asyncio.run(main())
        """
    )
    assert out == [[[True, True, "bytes"]], [True, True]]


async def test_websocket_message_types_are_ws_msg_type_members(squall_loop: Any) -> None:
    """On both builds: the compiled channel once handed out plain ints as ``msg.type``."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        seen = [await ws.receive()]
        async for msg in ws:
            seen.append(msg)
            if len(seen) == 3:
                break
        await ws.send_json([[type(m.type).__name__, m.type.name] for m in seen])
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    client = TestClient(TestServer(app))
    async with client, client.session.ws_connect(client.make_url("/")) as ws:
        await ws.send_str("a")
        await ws.send_bytes(b"b")
        await ws.send_str("c")
        got = await ws.receive_json(timeout=5)
    assert got == [["WSMsgType", "TEXT"], ["WSMsgType", "BINARY"], ["WSMsgType", "TEXT"]]


async def test_heartbeat_after_a_failed_handler_logs_no_error(squall_loop: Any) -> None:
    """A WebSocket handler that fails after prepare() leaves its heartbeat armed while the
    connection half-closes: the ping it then tries is dropped, not an error in a callback."""
    errors: list[dict[str, Any]] = []
    squall_loop.set_exception_handler(lambda loop, context: errors.append(context))

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=0.05)
        await ws.prepare(request)
        raise RuntimeError("the handler fails")

    app = web.Application()
    app.router.add_get("/", handler)
    client = TestClient(TestServer(app))
    async with client, client.session.ws_connect(client.make_url("/"), autoping=False) as ws:
        await asyncio.sleep(0.3)  # heartbeats due while the connection closes
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSE)
    await asyncio.sleep(0.1)
    assert errors == []


# -- Application: make_handler(), debug, loop -----------------------------------------------


async def test_make_handler_is_deprecated_and_serves_with_create_server(squall_loop: Any) -> None:
    """Old aiohttp programs: ``loop.create_server(app.make_handler(), ...)``, the signals run
    by the caller, ``handler.shutdown()`` at the end."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.app[name]}")

    name = web.AppKey("name", str)
    app = web.Application()
    app[name] = "old"
    app.router.add_get("/", hello)
    with pytest.deprecated_call(match=r"make_handler\(\.\.\.\) is deprecated, use AppRunner"):
        handler = app.make_handler(access_log=None)
    assert app.frozen
    await app.startup()
    server = await squall_loop.create_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    session = aiohttp.ClientSession()
    async with session, session.get(f"http://127.0.0.1:{port}/") as resp:
        assert (resp.status, await resp.text()) == (200, "hello old")
    server.close()
    await app.shutdown()
    await handler.shutdown(1.0)
    await app.cleanup()
    await server.wait_closed()


def test_make_handler_refuses_a_logger_class_without_log() -> None:
    class NotALogger:
        pass

    for w in (aiohttp.web, web):
        app = w.Application()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with pytest.raises(TypeError):
                app.make_handler(access_log_class=NotALogger)


async def test_an_access_log_class_in_handler_args_is_used(squall_loop: Any) -> None:
    """aiohttp's ``handler_args`` override the runner's arguments, ``access_log_class`` too."""
    lines: list[str] = []

    class Recorder(web.AccessLogger):
        def log(self, request: Any, response: Any, elapsed: float) -> None:
            lines.append(f"{request.path} {response.status}")

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application(handler_args={"access_log_class": Recorder})
    app.router.add_get("/", hello)
    logger = logging.getLogger("test_aiohttp_suite_app.access")
    logger.setLevel(logging.INFO)
    client = TestClient(TestServer(app, access_log=logger))
    async with client, client.get("/") as resp:
        assert resp.status == 200
    assert lines == ["/ 200"]


def test_debug_is_deprecated_as_in_aiohttp() -> None:
    for w in (aiohttp.web, web):
        with pytest.deprecated_call(match="^debug argument is deprecated$"):
            app = w.Application(debug=True)
        with pytest.deprecated_call(match="^debug property is deprecated$"):
            assert app.debug is True


async def test_app_loop_is_the_loop_it_was_set_up_on(squall_loop: Any) -> None:
    app = web.Application()
    sub = web.Application()
    app.add_subapp("/sub", sub)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        with pytest.deprecated_call():
            assert app.loop is squall_loop
        with pytest.deprecated_call():
            assert sub.loop is squall_loop
        with pytest.deprecated_call():
            assert app.debug is squall_loop.get_debug()
    finally:
        await runner.cleanup()


def test_set_loop_refuses_another_loop_as_in_aiohttp() -> None:
    loop = asyncio.new_event_loop()
    try:
        for w in (aiohttp.web, web):
            app = w.Application()
            app._set_loop(loop)
            with pytest.deprecated_call():
                assert app.loop is loop
            with pytest.raises(RuntimeError, match="initialized with different loop"):
                app._set_loop(object())  # type: ignore[arg-type]
    finally:
        loop.close()


# -- old-style middleware factories ---------------------------------------------------------


async def test_old_style_middleware_factories_warn_and_run(squall_loop: Any) -> None:
    """``async def factory(app, handler)`` without ``@web.middleware``: called per request
    with its own application, in the same order as new-style ones; a DeprecationWarning names
    it when the application freezes."""

    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            return w.Response(text="OK")

        def factory(tag: str) -> Any:
            async def middleware_factory(app: Any, handler: Any) -> Any:
                async def middleware(request: Any) -> Any:
                    resp = await handler(request)
                    resp.text = f"{resp.text} {tag}:{app['name']}"
                    return resp

                return middleware

            return middleware_factory

        @w.middleware
        async def new_style(request: Any, handler: Any) -> Any:
            resp = await handler(request)
            resp.text = f"{resp.text} new"
            return resp

        root = w.Application(middlewares=[factory("a"), new_style])
        sub = w.Application(middlewares=[factory("b")])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", w.NotAppKeyWarning)
            root["name"], sub["name"] = "root", "sub"
        sub.router.add_get("/to", handler)
        root.router.add_get("/", handler)
        root.add_subapp("/sub", sub)
        return root

    async def call(client: Any) -> list[str]:
        return [await (await client.get(path)).text() for path in ("/", "/sub/to", "/sub/to")]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        theirs, ours = await on_both(build, call)
    assert ours == theirs == ["OK new a:root", "OK b:sub new a:root", "OK b:sub new a:root"]
    messages = [str(c.message) for c in caught if "old-style" in str(c.message)]
    assert len(messages) == 4  # two factories, each on aiohttp and on squall
    assert all(m.startswith('old-style middleware "<function ') for m in messages)


# -- a router of the user's -----------------------------------------------------------------


async def test_a_router_of_the_users_resolves_requests(squall_loop: Any) -> None:
    """``Application(router=)`` (deprecated) takes any ``AbstractRouter``: its ``resolve()``
    answers, an HTTPException it raises included."""

    def build(w: Any) -> Any:
        async def hello(request: Any) -> Any:
            return w.Response(text=f"hello {request.match_info['name']}")

        class Router(aiohttp.abc.AbstractRouter):
            def __init__(self) -> None:
                super().__init__()
                self.inner = w.UrlDispatcher()
                self.inner.add_get("/hello/{name}", hello)

            async def resolve(self, request: Any) -> Any:
                if request.path == "/refused":
                    raise w.HTTPPreconditionFailed()
                return await self.inner.resolve(request)

        with pytest.deprecated_call(match="router argument is deprecated"):
            return w.Application(router=Router())

    async def call(client: Any) -> list[tuple[int, str]]:
        out = []
        for path in ("/hello/you", "/refused", "/missing"):
            async with client.get(path) as resp:
                out.append((resp.status, (await resp.text())[:20]))
        return out

    theirs, ours = await on_both(build, call)
    assert (
        ours
        == theirs
        == [(200, "hello you"), (412, "412: Precondition Fa"), (404, "404: Not Found")]
    )


# -- the server's requests_count ------------------------------------------------------------


async def test_requests_count_counts_from_its_first_read(squall_loop: Any) -> None:
    """aiohttp's ``web.Server.requests_count`` (``client.server.handler`` in tests): squall
    counts from the first read on, as reading it before any request (aiohttp's usage) shows."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)
    async with TestClient(TestServer(app)) as client:
        counts = [client.server.handler.requests_count]
        for _ in range(3):
            async with client.get("/") as resp:
                assert resp.status == 200
            counts.append(client.server.handler.requests_count)
    assert counts == [0, 1, 2, 3]


async def test_low_level_server_counts_every_request(squall_loop: Any) -> None:
    async def hello(request: web.BaseRequest) -> web.Response:
        return web.Response(text="hi")

    server = web.Server(hello)
    listener = await squall_loop.create_server(server, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    session = aiohttp.ClientSession()
    async with session:
        for _ in range(2):
            async with session.get(f"http://127.0.0.1:{port}/") as resp:
                assert resp.status == 200
    assert server.requests_count == 2
    listener.close()
    await server.shutdown(1.0)
    await listener.wait_closed()


# -- squall.testing.aiohttp_plugin ----------------------------------------------------------

FAILING_THEN_PASSING = """
import gc


async def test_fails() -> None:
    raise AssertionError("fails")


async def test_after() -> None:
    gc.collect()
"""


def test_a_failed_coroutine_test_leaves_no_loop_to_the_next(tmp_path: Path) -> None:
    """aiohttp's plugin never closes the loop of a coroutine test that fails; its sockets then
    fail the next test that collects garbage (ResourceWarning). squall's plugin closes it."""
    (tmp_path / "test_x.py").write_text(FAILING_THEN_PASSING)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "squall.testing.aiohttp_plugin",
            "-p",
            "no:cacheprovider",
            "-q",
            "-W",
            "error::ResourceWarning",
            "-W",
            "error::pytest.PytestUnraisableExceptionWarning",
            "test_x.py",
        ],
        cwd=tmp_path,
        env={**ENV, "SQUALL_NO_UVLOOP": "1"},  # (asyncio's loop is the one that warns)
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "1 failed, 1 passed" in done.stdout, done.stdout


def test_a_plain_function_handler_keeps_its_name_and_docstring() -> None:
    def sync_handler(request: Any) -> Any:
        """Doc"""

    for w in (aiohttp.web, web):
        app = w.Application()
        with pytest.deprecated_call():
            route = app.router.add_get("/sync", sync_handler)
        assert (route.handler.__name__, route.handler.__doc__) == ("sync_handler", "Doc")


@pytest.mark.parametrize("w", [aiohttp.web, web], ids=["aiohttp", "squall"])
def test_response_and_request_classes_subscript_in_annotations(w: Any) -> None:
    """``web.WebSocketResponse[bool]`` (aiohttp's is generic in its decode_text) and the other
    MutableMapping classes take a subscript, as code annotated for aiohttp writes them."""
    for cls in (w.WebSocketResponse, w.Response, w.StreamResponse, w.Request):
        alias = cls[bool]
        assert alias.__origin__ is cls
