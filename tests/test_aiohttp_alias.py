"""``squall.install_as_aiohttp()``: unmodified aiohttp code served by squall, aiohttp's client kept.

Every test runs Python in a subprocess, so that the alias never leaks into the other tests.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import squall

TIMEOUT = 60
# The subprocesses import the squall under test (src/ or the installed copy), from any cwd.
ENV = {**os.environ, "PYTHONPATH": str(Path(squall.__file__).resolve().parent.parent)}

# A plugin written for aiohttp alone, as aiohttp-jinja2 or aiohttp-session are: it imports
# aiohttp's server modules itself, subclasses their classes and checks isinstance against them.
PLUGIN = '''
from aiohttp import web, web_exceptions, web_request, web_response
from aiohttp.abc import AbstractView
from aiohttp.web_urldispatcher import View

KEY = web.AppKey("plugin_greeting", str)


def template(func):
    """Like aiohttp_jinja2.template: finds the request of a function or a view method."""

    async def wrapped(*args):
        request = args[0].request if isinstance(args[0], AbstractView) else args[-1]
        assert isinstance(request, web_request.Request)
        text = await func(*args)
        return web.Response(text=f"{request.app[KEY]}, {text}")

    return wrapped


class Greeting(View):
    @template
    async def get(self):
        return self.request.match_info["name"]


@web.middleware
async def plugin_middleware(request, handler):
    try:
        resp = await handler(request)
    except web_exceptions.HTTPNotFound:
        return web.Response(status=404, text="plugin's 404")
    assert isinstance(resp, web_response.StreamResponse)
    resp.headers["X-Plugin"] = "1"
    return resp


def setup(app):
    app[KEY] = "Hello"
    app.middlewares.append(plugin_middleware)
'''

# The application: calls install_as_aiohttp() first, then is plain aiohttp code, including a
# handler that uses aiohttp's client, run with AppRunner/TCPSite on 127.0.0.1.
APP = """
import asyncio
import json
import sys

import squall

squall.install_as_aiohttp()

import aiohttp
import aiohttp.web
from aiohttp import web

import plugin_like


@plugin_like.template
async def hello(request):
    return "function"


async def forbidden(request):
    raise aiohttp.web_exceptions.HTTPForbidden(text="no")


async def proxy(request):
    async with aiohttp.ClientSession() as session:
        async with session.get(request.url.with_path("/hello")) as resp:
            return web.Response(text="via client: " + await resp.text())


async def main():
    app = web.Application()
    plugin_like.setup(app)
    app.router.add_get("/hello", hello)
    app.router.add_view("/view/{name}", plugin_like.Greeting)
    app.router.add_get("/forbidden", forbidden)
    app.router.add_get("/proxy", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1] if hasattr(site, "_server") else site.port
    out = {"classes": [type(x).__module__ for x in (app, runner, site)]}
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
        for path in ("/hello", "/view/squall", "/forbidden", "/missing", "/proxy"):
            async with session.get(path) as resp:
                out[path] = [resp.status, await resp.text(), resp.headers.get("X-Plugin")]
    out["client"] = aiohttp.ClientSession.__module__
    await runner.cleanup()
    print(json.dumps(out))


asyncio.run(main())
"""


def _python(cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_an_unmodified_aiohttp_app_and_plugin_run_on_squall(tmp_path: Path) -> None:
    (tmp_path / "plugin_like.py").write_text(PLUGIN)
    done = _python(tmp_path, APP)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert all(module.startswith("squall.") for module in out["classes"]), out["classes"]
    assert out["/hello"] == [200, "Hello, function", "1"]
    assert out["/view/squall"] == [200, "Hello, squall", "1"]
    assert out["/forbidden"] == [403, "no", None]  # aiohttp's exception class is squall's
    assert out["/missing"] == [404, "plugin's 404", None]
    assert out["/proxy"] == [200, "via client: Hello, function", "1"]
    assert out["client"] == "aiohttp.client"  # aiohttp's own client, in the same process


def test_the_module_table() -> None:
    done = _python(
        Path.cwd(),
        """
        import squall
        squall.install_as_aiohttp()
        squall.install_as_aiohttp()  # again: nothing happens
        import aiohttp, aiohttp.abc, aiohttp.test_utils, aiohttp.web, aiohttp.web_urldispatcher
        from aiohttp import web
        from aiohttp.web_exceptions import *  # noqa: F403
        import squall.testing
        assert web is aiohttp.web is squall.web
        assert HTTPNotFound is squall.web.HTTPNotFound  # noqa: F405
        assert aiohttp.web_urldispatcher.UrlDispatcher is squall.web.UrlDispatcher
        assert aiohttp.test_utils.TestServer is squall.testing.TestServer
        assert aiohttp.test_utils.TestClient is squall.testing.TestClient
        assert aiohttp.abc.AbstractView is squall.web.View.__mro__[1]
        assert aiohttp.abc.AbstractCookieJar.__module__ == "aiohttp.abc"  # the client's ABC
        app = web.Application()
        assert isinstance(app.router, aiohttp.abc.AbstractRouter)
        assert isinstance(squall.web.AccessLogger(), aiohttp.abc.AbstractAccessLogger)
        try:
            aiohttp.web_urldispatcher.NoSuchName
        except AttributeError as exc:
            assert "squall has no such name" in str(exc), exc
        else:
            raise AssertionError("no AttributeError")
        print("ok")
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


def test_nothing_changes_without_the_call() -> None:
    done = _python(
        Path.cwd(),
        """
        import squall, aiohttp.web
        assert aiohttp.web is not squall.web and aiohttp.web.__name__ == "aiohttp.web"
        """,
    )
    assert done.returncode == 0, done.stderr


def test_refused_once_aiohttp_web_is_imported() -> None:
    done = _python(Path.cwd(), "import aiohttp.web, squall\nsquall.install_as_aiohttp()")
    assert done.returncode == 1
    assert "RuntimeError: squall.install_as_aiohttp() must run before" in done.stderr
    assert "aiohttp.web" in done.stderr.splitlines()[-1]


def test_without_aiohttp_it_says_so() -> None:
    code = "import sys; sys.modules['aiohttp'] = None\nimport squall; squall.install_as_aiohttp()"
    done = _python(Path.cwd(), code)
    assert done.returncode == 1
    assert "needs aiohttp installed" in done.stderr


AIOHTTP_TESTS = """
import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer


async def hello(request):
    return web.Response(text=type(request).__module__)


def make_app():
    app = web.Application()
    app.router.add_get("/", hello)
    return app


async def test_client_fixture(aiohttp_client):
    client = await aiohttp_client(make_app())
    assert isinstance(client, TestClient)
    task = asyncio.create_task(client.get("/"))  # a coroutine, as aiohttp's
    resp = await task
    assert await resp.text() == "squall.web.request"


async def test_server_fixture(aiohttp_server):
    server = await aiohttp_server(make_app())
    assert isinstance(server, TestServer)
    async with TestClient(server) as client, client.get("/") as resp:
        assert resp.status == 200


async def test_raw_server_fixture(aiohttp_raw_server, aiohttp_client):
    server = await aiohttp_raw_server(hello)
    client = await aiohttp_client(server)
    resp = await client.get("/any/path")
    assert await resp.text() == "squall.web.request"
"""


def test_an_aiohttp_test_suite_runs_on_squall_with_the_pytest_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_app.py").write_text(AIOHTTP_TESTS)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "squall.testing.aiohttp_plugin",
         "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", str(tmp_path)],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_logs_go_to_aiohttps_logger_names() -> None:
    """Under the alias an application's logging configuration, which names aiohttp's loggers,
    applies: access lines on aiohttp.access, handler errors on aiohttp.web, the server's own
    on aiohttp.server."""
    done = _python(
        Path.cwd(),
        """
        import asyncio, logging
        import squall
        squall.install_as_aiohttp()
        import aiohttp
        from aiohttp import web

        seen = []

        class Keep(logging.Handler):
            def emit(self, record):
                seen.append((record.name, record.getMessage()))

        for name in ("aiohttp.access", "aiohttp.web", "aiohttp.server"):
            logging.getLogger(name).addHandler(Keep())
        logging.getLogger("aiohttp").setLevel(logging.INFO)

        async def fail(request):
            raise RuntimeError("boom")

        async def text(request):
            return "not a response"

        async def main():
            app = web.Application()
            app.router.add_get("/fail", fail)
            app.router.add_get("/text", text)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            async with aiohttp.ClientSession() as session:
                for path in ("/fail", "/text"):
                    async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                        assert resp.status == 500
            await runner.cleanup()

        asyncio.run(main())
        assert web.Application().logger is logging.getLogger("aiohttp.web")
        names = [name for name, _ in seen]
        assert ("aiohttp.web", "Error handling request") in seen, seen
        assert any(n == "aiohttp.server" and "should return a response" in m for n, m in seen)
        assert names.count("aiohttp.access") == 2, seen
        assert not [n for n in names if n.startswith("squall")], seen
        print("ok")
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


# An unmodified aiohttp application module, with an isinstance check a plugin would make.
AIOHTTP_MODULE = """
from aiohttp import web, web_request


async def hello(request):
    assert isinstance(request, web_request.Request)
    return web.Response(text=f"hello {type(request).__module__}")


def make_app():
    app = web.Application()
    app.router.add_get("/", hello)
    return app


app = make_app()
"""

# The seed program word for word, aiohttp's spelling (``import aiohttp``, then ``aiohttp.web``),
# on a port given on its command line; it asks itself once, prints the answer and stops.
SEED = """
import asyncio
import sys

import aiohttp


async def handle(request):
    name = request.match_info.get('name', 'Anonymous')
    return aiohttp.web.Response(text=f'Hello, {name}!')


async def main():
    app = aiohttp.web.Application()
    app.add_routes([aiohttp.web.get('/{name}', handle)])
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, '127.0.0.1', int(sys.argv[1]))
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        async with session.get(f'http://127.0.0.1:{port}/World') as resp:
            print(await resp.text(), type(app).__module__)
    await runner.cleanup()


asyncio.run(main())
"""


def _get(port: int, path: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("target", [["aiohttp_app:app"], ["aiohttp_app:make_app", "--factory"]])
def test_cli_as_aiohttp_serves_an_unmodified_aiohttp_app(tmp_path: Path, target: list[str]) -> None:
    (tmp_path / "aiohttp_app.py").write_text(AIOHTTP_MODULE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "squall", "--as-aiohttp", *target, "--port", "0"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"serving http://127\.0\.0\.1:(\d+) \(aiohttp interface", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
        answer = _get(int(match.group(1)), "/")
        assert answer.startswith("HTTP/1.1 200 OK\r\n"), answer
        assert answer.endswith("\r\n\r\nhello squall.web.request"), answer
    finally:
        proc.terminate()
        proc.communicate(timeout=TIMEOUT)


def test_without_the_switch_the_aiohttp_app_is_not_squalls(tmp_path: Path) -> None:
    (tmp_path / "aiohttp_app.py").write_text(AIOHTTP_MODULE)
    done = subprocess.run(
        [sys.executable, "-m", "squall", "aiohttp_app:app", "--port", "0"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode != 0
    assert "--as-aiohttp" not in done.stdout


def test_the_seed_program_runs_verbatim_under_as_aiohttp(tmp_path: Path) -> None:
    (tmp_path / "seed_aiohttp.py").write_text(SEED)
    done = subprocess.run(
        [sys.executable, "-m", "squall.as_aiohttp", "seed_aiohttp.py", "0"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello, World! squall.web.app\n"
