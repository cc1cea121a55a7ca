"""What aiohttp plugins and aiohttp's example programs rely on, found by the plugins' own test
suites (``make plugins``) and scripts/aiohttp_examples.py, checked here on squall and on aiohttp
with the same code and real sockets."""

from __future__ import annotations

import asyncio
import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp.web as aiohttp_web
import pytest

import squall
from squall import web as squall_web

from .loop_thread import LoopThread

TIMEOUT = 5.0


class Serving(LoopThread):
    """``make_app(web)`` served by ``web``'s own AppRunner (handler_cancellation off, as
    aiohttp's default) on an ephemeral loopback port."""

    def __init__(self, web: Any, app: Any) -> None:
        super().__init__()
        self.web = web
        self.app = app
        self.port = 0

    async def serve(self, stop: asyncio.Event) -> None:
        runner = self.web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = self.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self.ready()
        await stop.wait()
        await runner.cleanup()


@pytest.fixture(params=[squall_web, aiohttp_web], ids=["squall", "aiohttp"])
def web(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    yield request.param


def test_protocol_transport_is_none_once_the_client_closed(web: Any) -> None:
    """aiohttp-sse's idiom for a client that left, ``request.protocol.transport is None``
    (its test_abort_when_transport_already_gone): true once the client closed its side while a
    streamed response is in progress, as ``request.transport is None`` is."""
    seen: list[object] = []

    async def handler(request: Any) -> Any:
        resp = web.StreamResponse()
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while request.protocol.transport is not None and loop.time() < deadline:
            await asyncio.sleep(0.01)
        seen.append(request.protocol.transport)
        seen.append(request.transport)
        return resp

    app = web.Application()
    app.router.add_get("/", handler)
    server = Serving(web, app).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                assert chunk, head
                head += chunk
            assert head.startswith(b"HTTP/1.1 200 ")
        # the client has closed; the handler sees it well before its deadline
        deadline = time.monotonic() + 2 * TIMEOUT
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == [None, None]
    finally:
        server.stop()


def test_setting_text_gives_the_type_a_charset(web: Any) -> None:
    """aiohttp's examples/web_cookies.py: ``Response(content_type="text/html")``, then
    ``resp.text = ...``: the answer is ``text/html; charset=utf-8``."""

    async def handler(request: Any) -> Any:
        kind = request.match_info["kind"]
        resp = web.Response() if kind == "none" else web.Response(content_type=kind)
        resp.text = "héllo"
        return resp

    app = web.Application()
    app.router.add_get("/{kind:.+}", handler)
    server = Serving(web, app).start()
    try:
        seen = {}
        for kind in ("text/html", "application/json", "application/octet-stream", "none"):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
            conn.request("GET", f"/{kind}")
            resp = conn.getresponse()
            seen[kind] = (resp.getheader("Content-Type"), resp.read().decode())
            conn.close()
    finally:
        server.stop()
    assert seen == {
        "text/html": ("text/html; charset=utf-8", "héllo"),
        "application/json": ("application/json; charset=utf-8", "héllo"),
        "application/octet-stream": ("text/plain; charset=utf-8", "héllo"),
        "none": ("text/plain; charset=utf-8", "héllo"),
    }


CLI_APP = """
from argparse import ArgumentParser
from aiohttp import web

async def show(request):
    args = request.app[ARGS]
    return web.Response(text="\\n".join([args.message] * args.repeat))

ARGS = web.AppKey("args", object)

def init(argv):
    parser = ArgumentParser(prog="aiohttp.web ...", add_help=False)
    parser.add_argument("message")
    parser.add_argument("--repeat", type=int, default=1)
    app = web.Application()
    app[ARGS] = parser.parse_args(argv)
    app.router.add_get("/", show)
    return app
"""


@pytest.mark.parametrize("on", ["squall", "aiohttp"])
def test_aiohttp_web_command_line_under_the_alias(tmp_path: Path, on: str) -> None:
    """aiohttp's examples/cli_app.py runs as ``python -m aiohttp.web ... cli_app:init ARGS``;
    ``python -m squall.as_aiohttp -m aiohttp.web ...`` runs the same on squall."""
    (tmp_path / "cli_app.py").write_text(CLI_APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = ["-m", "squall.as_aiohttp"] if on == "squall" else []
    cmd = [sys.executable, *launcher, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(port)]
    env = {**os.environ, "PYTHONPATH": str(Path(squall.__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [*cmd, "cli_app:init", "--repeat", "2", "Hello World"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 4 * TIMEOUT
        while True:
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
                conn.request("GET", "/")
                break
            except OSError:
                assert time.monotonic() < deadline, "not serving"
                time.sleep(0.05)
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"Hello World\nHello World")
        assert on in (resp.getheader("Server") or "")
        conn.close()
    finally:
        proc.kill()
        proc.communicate(timeout=TIMEOUT)
