"""Application lifecycle: signals, cleanup_ctx, freezing, graceful shutdown, run_app.

As in tests/test_web_api.py, ``SQUALL_REFERENCE=aiohttp`` runs the in-process tests against
aiohttp to check the assertions. The run_app tests always run the same script on both and
compare.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp.web as aiohttp_web
import httpx
import pytest

from squall import web as squall_web

from .conftest import ServerThread, is_closed
from .test_web_api import AiohttpServerThread

REFERENCE = os.environ.get("SQUALL_REFERENCE") == "aiohttp"
web: Any = aiohttp_web if REFERENCE else squall_web

ROOT = Path(__file__).resolve().parent.parent


def start(app: Any, **kwargs: Any) -> ServerThread:
    cls = AiohttpServerThread if REFERENCE else ServerThread
    return cls(app, **kwargs).start()


def lifecycle_app(events: list[str]) -> Any:
    """An app recording its lifecycle, with /sleep and /forever handlers."""

    def ctx(name: str) -> Any:
        async def gen(app: Any) -> AsyncIterator[None]:
            events.append(f"{name} enter")
            yield
            events.append(f"{name} exit")

        return gen

    def hook(name: str) -> Any:
        async def cb(app: Any) -> None:
            events.append(name)

        return cb

    async def sleep(request: Any) -> Any:
        events.append("request start")
        await asyncio.sleep(float(request.query.get("s", "1")))
        events.append("request done")
        return web.Response(text="slept")

    async def forever(request: Any) -> Any:
        events.append("forever start")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append("forever cancelled")
            raise
        return web.Response(text="never")

    async def hello(request: Any) -> Any:
        return web.Response(text="hello")

    app = web.Application()
    app.cleanup_ctx.append(ctx("ctx_a"))
    app.cleanup_ctx.append(ctx("ctx_b"))
    app.on_startup.append(hook("startup1"))
    app.on_startup.append(hook("startup2"))
    app.on_shutdown.append(hook("shutdown"))
    app.on_cleanup.append(hook("cleanup1"))
    app.on_cleanup.append(hook("cleanup2"))
    app.router.add_get("/sleep", sleep)
    app.router.add_get("/forever", forever)
    app.router.add_get("/hello", hello)
    return app


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


# -- signals and cleanup_ctx ----------------------------------------------------------------------


def test_signal_and_cleanup_ctx_order() -> None:
    events: list[str] = []
    srv = start(lifecycle_app(events))
    try:
        assert events == ["ctx_a enter", "ctx_b enter", "startup1", "startup2"]
        assert httpx.get(srv.url + "/hello", timeout=5).text == "hello"
    finally:
        srv.stop()
    assert events == [
        "ctx_a enter",
        "ctx_b enter",
        "startup1",
        "startup2",
        "shutdown",
        "ctx_b exit",
        "ctx_a exit",
        "cleanup1",
        "cleanup2",
    ]


def test_hooks_receive_the_application() -> None:
    seen: list[Any] = []

    async def on_startup(app: Any) -> None:
        seen.append(app)

    async def ctx(app: Any) -> AsyncIterator[None]:
        seen.append(app)
        yield

    app = web.Application()
    app.on_startup.append(on_startup)
    app.cleanup_ctx.append(ctx)
    start(app).stop()
    assert len(seen) == 2 and seen[0] is app and seen[1] is app


def test_cleanup_ctx_exit_runs_even_if_a_later_hook_fails() -> None:
    events: list[str] = []

    async def ctx(app: Any) -> AsyncIterator[None]:
        events.append("enter")
        yield
        events.append("exit")

    async def bad_cleanup(app: Any) -> None:
        raise RuntimeError("cleanup failed")

    async def main() -> None:
        app = web.Application()
        app.cleanup_ctx.append(ctx)
        app.on_cleanup.append(bad_cleanup)
        runner = web.AppRunner(app)
        await runner.setup()
        with pytest.raises(RuntimeError, match="cleanup failed"):
            await runner.cleanup()

    asyncio.run(main())
    assert events == ["enter", "exit"]


# -- freezing -------------------------------------------------------------------------------------


async def _noop(request: Any) -> Any:
    return web.Response()


def test_app_is_frozen_after_setup() -> None:
    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", _noop)
        assert not app.frozen
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            assert app.frozen
            with pytest.raises(RuntimeError):
                app.router.add_get("/late", _noop)
            with pytest.raises(RuntimeError):
                app.add_routes([web.post("/late", _noop)])
            with pytest.raises(RuntimeError):
                app.on_startup.append(_noop)
            with pytest.raises(RuntimeError):
                app.on_cleanup.append(_noop)
            with pytest.raises(RuntimeError):
                app.cleanup_ctx.append(_noop)
        finally:
            await runner.cleanup()

    asyncio.run(main())


def test_middlewares_are_frozen_after_setup() -> None:
    # aiohttp keeps middlewares in a FrozenList: append after freezing raises RuntimeError.
    async def main() -> None:
        app = web.Application()
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            with pytest.raises(RuntimeError):
                app.middlewares.append(_noop)
        finally:
            await runner.cleanup()

    asyncio.run(main())


def test_changing_state_of_a_started_app_is_deprecated() -> None:
    # aiohttp 3.14 Application._check_frozen: a DeprecationWarning, the value is stored.
    key = web.AppKey("late", int)

    async def main() -> None:
        app = web.Application()
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            with pytest.warns(DeprecationWarning):
                app[key] = 1
            assert app[key] == 1
        finally:
            await runner.cleanup()

    asyncio.run(main())


# -- graceful shutdown ----------------------------------------------------------------------------


def _connect_refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except (ConnectionRefusedError, ConnectionResetError):
        # Reset: the connect raced the listening socket's close, and the kernel dropped it.
        return True
    return False


def test_in_flight_request_completes_during_cleanup() -> None:
    events: list[str] = []
    srv = start(lifecycle_app(events))
    port = srv.port
    result: dict[str, Any] = {}

    def client() -> None:
        r = httpx.get(f"http://127.0.0.1:{port}/sleep?s=1.5", timeout=10)
        result["reply"] = (r.status_code, r.text)
        result["replied"] = time.monotonic()

    def stopper() -> None:
        srv.stop()
        result["stopped"] = time.monotonic()

    c = threading.Thread(target=client)
    c.start()
    assert wait_for(lambda: "request start" in events)
    s = threading.Thread(target=stopper)
    t0 = time.monotonic()
    s.start()
    # The site stops at once: new connections are refused while the request is still running.
    assert wait_for(lambda: _connect_refused(port), timeout=1.0)
    assert "request done" not in events
    c.join(10)
    s.join(10)
    assert result["reply"] == (200, "slept")
    # Cleanup waited for the request (the events below prove the order on the server side);
    # the two timestamps come from two client threads, so allow for thread scheduling.
    assert result["replied"] <= result["stopped"] + 0.25
    assert result["stopped"] - t0 < 5
    tail = events[events.index("startup2") + 1 :]
    assert tail == [
        "request start",
        "shutdown",
        "request done",
        "ctx_b exit",
        "ctx_a exit",
        "cleanup1",
        "cleanup2",
    ]
    assert _connect_refused(port)


def test_idle_keep_alive_connections_are_closed_on_shutdown() -> None:
    srv = start(lifecycle_app([]))
    socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(3)]
    try:
        for sock in socks:
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while not data.endswith(b"hello"):
                chunk = sock.recv(4096)
                assert chunk
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK")
        t0 = time.monotonic()
        srv.stop()
        assert time.monotonic() - t0 < 3  # not the 75 s keep-alive timeout
        for sock in socks:
            assert is_closed(sock, timeout=2)
    finally:
        for sock in socks:
            sock.close()


def test_shutdown_timeout_bounds_a_handler_that_never_finishes() -> None:
    events: list[str] = []
    srv = start(lifecycle_app(events), shutdown_timeout=0.5)
    result: dict[str, Any] = {}

    def client() -> None:
        try:
            r = httpx.get(srv.url + "/forever", timeout=10)
            result["reply"] = r.status_code
        except httpx.HTTPError as exc:
            result["error"] = type(exc).__name__

    c = threading.Thread(target=client)
    c.start()
    assert wait_for(lambda: "forever start" in events)
    t0 = time.monotonic()
    srv.stop()
    elapsed = time.monotonic() - t0
    c.join(10)
    assert not c.is_alive()
    assert 0.4 < elapsed < 3
    assert "forever cancelled" in events
    assert events[-2:] == ["cleanup1", "cleanup2"]
    assert result.get("reply") != 200


# -- run_app in a subprocess, compared with aiohttp's ---------------------------------------------

SCRIPT = """
import asyncio
import sys

if sys.argv[1] == "squall":
    from squall import web
else:
    import aiohttp.web as web

port = int(sys.argv[2])


async def hello(request):
    return web.Response(text="hello from run_app")


async def sleep(request):
    await asyncio.sleep(float(request.query.get("s", "1")))
    return web.Response(text="slept")


async def on_startup(app):
    print("startup hook ran", flush=True)


async def on_shutdown(app):
    print("shutdown hook ran", flush=True)


async def on_cleanup(app):
    print("cleanup hook ran", flush=True)


app = web.Application()
app.router.add_get("/", hello)
app.router.add_get("/sleep", sleep)
app.on_startup.append(on_startup)
app.on_shutdown.append(on_shutdown)
app.on_cleanup.append(on_cleanup)
web.run_app(app, host="127.0.0.1", port=port)
print("run_app returned", flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunAppResult:
    def __init__(self, returncode: int, stdout: str, stderr: str, exit_seconds: float) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.exit_seconds = exit_seconds
        self.lines = [line for line in stdout.splitlines() if line.strip()]

    def normalized(self, port: int) -> list[str]:
        """The output lines with the port replaced, to compare runs on different ports."""
        return [line.replace(f":{port} ", ":PORT ") for line in self.lines]


def run_app_session(
    tmp_path: Path, backend: str, sig: signal.Signals, in_flight: bool
) -> tuple[RunAppResult, int, str, Any]:
    """Start the script, wait for its banner, GET /, send ``sig``; return what happened."""
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script), backend, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    out: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            lines.put(line)

    rt = threading.Thread(target=reader, daemon=True)
    rt.start()
    banner = ""
    flight: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if proc.poll() is not None:
                    break
                continue
            if line.startswith("======== Running on"):
                banner = line.rstrip("\n")
                break
        assert banner, f"no banner; stdout={''.join(out)!r}"
        body = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text

        def slow_client() -> None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/sleep?s=1", timeout=10)
                flight["reply"] = (r.status_code, r.text)
            except httpx.HTTPError as exc:
                flight["reply"] = type(exc).__name__

        fc = threading.Thread(target=slow_client)
        if in_flight:
            fc.start()
            time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(sig)
        proc.wait(15)
        exit_seconds = time.monotonic() - t0
        if in_flight:
            fc.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    rt.join(5)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    result = RunAppResult(proc.returncode, "".join(out), stderr, exit_seconds)
    return result, port, banner + "|" + body, flight.get("reply")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_app_matches_aiohttp(tmp_path: Path, sig: signal.Signals) -> None:
    ours, port, seen, _ = run_app_session(tmp_path, "squall", sig, in_flight=False)
    banner, body = seen.split("|")
    assert banner == f"======== Running on http://127.0.0.1:{port} ========"
    assert "(Press CTRL+C to quit)" in ours.lines
    assert body == "hello from run_app"
    assert ours.exit_seconds < 5
    assert "Traceback" not in ours.stderr, ours.stderr

    ref, ref_port, ref_seen, _ = run_app_session(tmp_path, "aiohttp", sig, in_flight=False)
    ref_banner = ref_seen.split("|")[0]
    assert ref_banner == f"======== Running on http://127.0.0.1:{ref_port} ========"

    assert ours.returncode == ref.returncode
    assert ours.normalized(port) == ref.normalized(ref_port), (ours.stdout, ref.stdout)
    assert ("run_app returned" in ours.lines) == ("run_app returned" in ref.lines)
    assert "cleanup hook ran" in ours.lines
    assert ours.lines.index("shutdown hook ran") < ours.lines.index("cleanup hook ran")


def test_run_app_finishes_an_in_flight_request_on_sigterm(tmp_path: Path) -> None:
    ours, port, _, reply = run_app_session(tmp_path, "squall", signal.SIGTERM, in_flight=True)
    ref, ref_port, _, ref_reply = run_app_session(
        tmp_path, "aiohttp", signal.SIGTERM, in_flight=True
    )
    assert ref_reply == (200, "slept")
    assert reply == ref_reply
    assert ours.returncode == ref.returncode
    assert ours.normalized(port) == ref.normalized(ref_port), (ours.stdout, ref.stdout)
    assert 0.4 < ours.exit_seconds < 5
