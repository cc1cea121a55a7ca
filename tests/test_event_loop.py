"""The event loop: uvloop where squall runs the loop itself, asyncio's policy left alone on import.

Each test runs Python in a subprocess, whose event loop policy is its own: a fresh process is
the only place that shows what ``import squall`` does to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import squall

from .server_process import SquallProcess

TIMEOUT = 30
ENV = {**os.environ, "PYTHONPATH": str(Path(squall.__file__).resolve().parent.parent)}
ENV.pop("SQUALL_NO_UVLOOP", None)

try:
    import uvloop  # noqa: F401

    UVLOOP = "uvloop.Loop"
except ImportError:  # pragma: no cover
    UVLOOP = ""
needs_uvloop = pytest.mark.skipif(not UVLOOP, reason="uvloop is not installed")

# A handler that answers with the class of the loop it runs on.
HANDLER = """
import asyncio

async def which_loop(request):
    loop = type(asyncio.get_running_loop())
    return web.Response(text=f"{loop.__module__.split('.')[0]}.{loop.__qualname__}")
"""


def _python(source: str, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source), *args],
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@contextmanager
def _script(tmp_path: Path, source: str, *args: str, env: dict[str, str]) -> Iterator[str]:
    """Run ``source`` as a program that prints ``PORT n`` once it serves; yield its URL."""
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(source))
    proc = subprocess.Popen(
        [sys.executable, *args, str(path)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), proc.communicate(timeout=TIMEOUT)
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.kill()
        proc.communicate(timeout=TIMEOUT)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
        return str(resp.read().decode())


def test_import_leaves_the_policy_alone() -> None:
    source = """
    import asyncio, warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    import squall
    from squall import web, testing
    squall.install_as_aiohttp()
    import aiohttp.web, aiohttp.test_utils
    print(type(asyncio.get_event_loop_policy()) is asyncio.DefaultEventLoopPolicy)
    loop = asyncio.new_event_loop()
    print(type(loop).__module__)
    loop.close()
    """
    assert _python(source).split() == ["True", "asyncio.unix_events"]


@needs_uvloop
def test_new_event_loop_is_uvloop_unless_opted_out() -> None:
    source = """
    import squall
    loop = squall.new_event_loop()
    print(type(loop).__module__.split(".")[0])
    loop.close()
    """
    assert _python(source) == "uvloop"
    assert _python(source, env={**ENV, "SQUALL_NO_UVLOOP": "1"}) == "asyncio"


def test_new_event_loop_honours_a_policy_the_program_set() -> None:
    source = """
    import asyncio, warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    import squall

    class Loop(asyncio.SelectorEventLoop):
        pass

    class Policy(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self):
            return Loop()

    asyncio.set_event_loop_policy(Policy())
    loop = squall.new_event_loop()
    print(type(loop).__name__)
    loop.close()
    """
    assert _python(source) == "Loop"


def test_module_level_get_event_loop_after_import(tmp_path: Path) -> None:
    """aiohttp's examples/lowlevel_srv.py pattern: ``asyncio.get_event_loop()`` at module level,
    then ``run_until_complete``; under the alias (uvloop's policy raised RuntimeError here)."""
    source = """
    import asyncio
    import socket
    from aiohttp import web

    async def handler(request):
        return web.Response(text="OK")

    async def main(loop):
        server = web.Server(handler)
        sock = socket.create_server(("127.0.0.1", 0))
        await loop.create_server(server, sock=sock)
        print("PORT", sock.getsockname()[1], flush=True)
        await asyncio.sleep(100 * 3600)

    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(main(loop))
    except KeyboardInterrupt:
        pass
    loop.close()
    """
    with _script(tmp_path, source, "-m", "squall.as_aiohttp", env=ENV) as url:
        assert _get(url + "/") == "OK"


RUN_APP = (
    """
import socket
from squall import web
"""
    + HANDLER
    + """
app = web.Application()
app.router.add_get("/", which_loop)
sock = socket.create_server(("127.0.0.1", 0))
print("PORT", sock.getsockname()[1], flush=True)
web.run_app(app, sock=sock, print=None)
"""
)


@needs_uvloop
def test_run_app_runs_on_uvloop(tmp_path: Path) -> None:
    with _script(tmp_path, RUN_APP, env=ENV) as url:
        assert _get(url) == UVLOOP


def test_run_app_without_uvloop_when_opted_out(tmp_path: Path) -> None:
    with _script(tmp_path, RUN_APP, env={**ENV, "SQUALL_NO_UVLOOP": "1"}) as url:
        assert _get(url).startswith("asyncio.")


def test_asyncio_run_gets_asyncios_loop(tmp_path: Path) -> None:
    """A program that runs its own loop chooses it: `asyncio.run` gives asyncio's, as on aiohttp."""
    source = (
        """
import asyncio
import socket
from squall import web
"""
        + HANDLER
        + """
async def main():
    app = web.Application()
    app.router.add_get("/", which_loop)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    print("PORT", sock.getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""
    )
    with _script(tmp_path, source, env=ENV) as url:
        assert _get(url).startswith("asyncio.")


@needs_uvloop
def test_the_command_line_runs_on_uvloop(tmp_path: Path) -> None:
    (tmp_path / "loopapp.py").write_text(
        "from squall import web\n"
        + HANDLER
        + "\napp = web.Application()\napp.router.add_get('/', which_loop)\n"
    )
    env = {"PYTHONPATH": ENV["PYTHONPATH"], "SQUALL_NO_UVLOOP": ""}  # over os.environ
    with SquallProcess(tmp_path, "loopapp:app", "--port", "0", env=env) as proc:
        url = proc.wait_ready()
        assert _get(url) == UVLOOP
