"""A client that leaves mid-request is noticed at once, in both interfaces (issue 27).

Real sockets on 127.0.0.1. The client leaves by FIN (``close()``, or ``shutdown(SHUT_WR)`` where
it must keep reading) or by RST (``SO_LINGER`` (1, 0), then ``close()``). The handlers are the
idioms users write: on squall.web a long-poll that waits while ``request.transport`` is set and an
SSE stream that writes until ``ConnectionResetError``; on ASGI a long-poll waiting on
``receive()`` for ``http.disconnect`` and an SSE stream watching ``receive()`` in a task. Each
handler records (``time.monotonic()``, one clock for the server thread and the client) when it
learned the client had left; the delays measured are printed at the end of the module (``-s``).

A half-closed client (whole request, then ``shutdown(SHUT_WR)``, still reading) still gets a
response its handler returns whole, then EOF.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from squall import web
from squall.asgi import ASGIHandler
from squall.asgi.types import Receive, Scope, Send
from squall.http import HttpServer

from .conftest import serve
from .loop_thread import LoopThread

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "longpoll_sse.py"

NOTICE_BOUND = 0.5  # seconds: the issue asks for 0.1 s; the bound leaves room for a loaded box
SSE_BOUND = 1.0  # an SSE handler writes every 100 ms: it ends by its next write at the latest
SSE_EVERY = 0.1
WHOLE = b"a whole answer, after 0.1 s"

DELAYS: dict[str, float] = {}  # "what interface how" -> seconds from the client's close
RELEASES: dict[str, float] = {}  # the same -> seconds until no handler runs and no connection


@pytest.fixture(scope="module", autouse=True)
def _delay_table() -> Iterator[None]:
    yield
    print("\n\nseconds after the client left: handler noticed / connection released")
    for key in sorted(DELAYS.keys() | RELEASES.keys()):
        delay, release = DELAYS.get(key), RELEASES.get(key)
        noticed = "-" if delay is None else f"{delay:.3f}"
        freed = "-" if release is None else f"{release:.3f}"
        print(f"  {key:<36} {noticed:>8} {freed:>8}")


# -- what the handlers record -----------------------------------------------------------------


class Probe:
    """Shared by a test and its server's handlers (which run in the server's thread)."""

    def __init__(self) -> None:
        self.running = 0  # handlers in progress
        self.noticed: list[float] = []  # when a handler learned that its client had left
        self.ended: list[float] = []  # when a streaming handler ended
        self.events: list[str] = []


# -- the squall.web application ---------------------------------------------------------------


def web_app(probe: Probe) -> web.Application:
    async def longpoll(request: web.Request) -> web.Response:
        probe.running += 1
        try:
            while request.transport is not None:
                await asyncio.sleep(0.02)
            probe.noticed.append(time.monotonic())
            return web.Response(text="nobody is there")
        finally:
            probe.running -= 1

    async def sse(request: web.Request) -> web.StreamResponse:
        probe.running += 1
        try:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            n = 0
            try:
                while True:
                    await resp.write(b"data: %d\n\n" % n)
                    n += 1
                    await asyncio.sleep(SSE_EVERY)
            except ConnectionResetError:
                probe.noticed.append(time.monotonic())
            return resp
        finally:
            probe.ended.append(time.monotonic())
            probe.running -= 1

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.1)
        probe.events.append("transport " + ("None" if request.transport is None else "set"))
        return web.Response(body=WHOLE)

    async def upload(request: web.Request) -> web.Response:
        probe.running += 1
        try:
            body = await request.read()
        except BaseException as exc:
            probe.noticed.append(time.monotonic())
            probe.events.append(f"{type(exc).__name__} {getattr(exc, 'status', '')}".strip())
            raise
        else:
            probe.events.append(f"read {len(body)}")
            return web.Response(text="ok")
        finally:
            probe.running -= 1

    async def sleeper(request: web.Request) -> web.Response:
        probe.running += 1
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            probe.noticed.append(time.monotonic())
            probe.events.append("cancelled")
            raise
        finally:
            probe.running -= 1
        probe.events.append("slept")
        return web.Response(text="slept")

    app = web.Application()
    app.add_routes(
        [
            web.get("/longpoll", longpoll),
            web.get("/sse", sse),
            web.get("/slow", slow),
            web.post("/upload", upload),
            web.get("/sleep", sleeper),
        ]
    )
    return app


# -- the ASGI application ---------------------------------------------------------------------


def asgi_app(probe: Probe) -> Callable[[Scope, Receive, Send], Any]:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain")],
    }

    async def longpoll(receive: Receive, send: Send) -> None:
        first = await receive()
        assert first["type"] == "http.request", first
        message = await receive()  # nothing more comes until the client leaves
        probe.noticed.append(time.monotonic())
        probe.events.append(message["type"])
        await send(start)
        await send({"type": "http.response.body", "body": b"nobody is there"})

    async def sse(receive: Receive, send: Send) -> None:
        await receive()
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            probe.noticed.append(time.monotonic())
            gone.set()

        watcher = asyncio.create_task(watch())
        await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
        n = 0
        while not gone.is_set():
            await send(
                {"type": "http.response.body", "body": b"data: %d\n\n" % n, "more_body": True}
            )
            n += 1
            try:
                await asyncio.wait_for(gone.wait(), SSE_EVERY)
            except TimeoutError:
                pass
        await watcher
        # Sends after the client left are ignored quietly (no error, nothing logged).
        await send({"type": "http.response.body", "body": b"data: late\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        probe.events.append("sends after disconnect ignored")

    async def slow(receive: Receive, send: Send) -> None:
        await receive()
        await asyncio.sleep(0.1)
        await send(start)  # the whole body in one message
        await send({"type": "http.response.body", "body": WHOLE})

    async def upload(receive: Receive, send: Send) -> None:
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                probe.noticed.append(time.monotonic())
                probe.events.append(f"received {received}, then http.disconnect")
                return
            received += len(message["body"])
            if not message["more_body"]:
                probe.events.append(f"received {received}")
                await send(start)
                await send({"type": "http.response.body", "body": b"ok"})
                return

    async def sleeper(receive: Receive, send: Send) -> None:
        await receive()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            probe.noticed.append(time.monotonic())
            probe.events.append("cancelled")
            raise
        probe.events.append("slept")
        await send(start)
        await send({"type": "http.response.body", "body": b"slept"})

    routes = {"/longpoll": longpoll, "/sse": sse, "/slow": slow, "/upload": upload}
    routes["/sleep"] = sleeper

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        probe.running += 1
        try:
            await routes[scope["path"]](receive, send)
        finally:
            if scope["path"] == "/sse":
                probe.ended.append(time.monotonic())
            probe.running -= 1

    return app


class ASGIServerThread(LoopThread):
    """An ASGI app on ``HttpServer(ASGIHandler(app))``, as ``squall`` serves one, in a thread."""

    def __init__(self, app: Any, handler_cancellation: bool = False) -> None:
        super().__init__()
        self.app = app
        self.handler_cancellation = handler_cancellation
        self.http: HttpServer | None = None
        self.port = 0

    async def serve(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self.http = HttpServer(
            ASGIHandler(self.app), loop=loop, handler_cancellation=self.handler_cancellation
        )
        listener = await loop.create_server(self.http, "127.0.0.1", 0)
        self.port = int(listener.sockets[0].getsockname()[1])
        self.ready()
        await stop.wait()
        listener.close()
        await self.http.shutdown(1.0)
        await listener.wait_closed()

    @property
    def connections(self) -> int:
        http = self.http
        assert http is not None
        return int(self.call(lambda: len(http.connections)))


@contextmanager
def running(kind: str, probe: Probe, handler_cancellation: bool = False) -> Iterator[Any]:
    if kind == "web":
        with serve(web_app(probe), handler_cancellation=handler_cancellation) as srv:
            yield srv
    else:
        srv = ASGIServerThread(asgi_app(probe), handler_cancellation).start()
        try:
            yield srv
        finally:
            srv.stop()


# -- the client -------------------------------------------------------------------------------


def wait_until(cond: Callable[[], Any], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return bool(cond())


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def connect(port: int, request: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(request)
    return sock


def get(port: int, path: str) -> socket.socket:
    return connect(port, b"GET %b HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())


def leave(sock: socket.socket, how: str) -> float:
    """Close by FIN or RST; returns the time just before. (Nothing unread may be pending for a
    FIN by close(): Linux would send a RST instead.)"""
    if how == "RST":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    at = time.monotonic()
    sock.close()
    return at


def read_until(sock: socket.socket, marker: bytes, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"EOF before {marker!r}: {data!r}")
        data += chunk
    return data


def read_to_eof(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Everything until the server closes: (data, True), or (data, False) on a timeout."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def released(srv: Any, probe: Probe, key: str, since: float, timeout: float = 5.0) -> bool:
    """Wait (5 s at most) until no handler runs and the server holds no connection; record how
    long after ``since`` that was, as RELEASES[key]."""
    done = wait_until(lambda: probe.running == 0 and srv.connections == 0, timeout)
    RELEASES[key] = time.monotonic() - since
    return done


KINDS = ["web", "asgi"]
HOWS = ["FIN", "RST"]


# -- 1. long-poll -----------------------------------------------------------------------------


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("kind", KINDS)
def test_long_poll_notices_client_left(
    kind: str, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe()
    with running(kind, probe) as srv:
        sock = get(srv.port, "/longpoll")
        assert wait_until(lambda: probe.running == 1)
        time.sleep(0.05)  # well into its wait
        assert not probe.noticed
        left_at = leave(sock, how)
        assert wait_until(lambda: probe.noticed, 3.0), "the handler never noticed"
        delay = DELAYS[f"long-poll {kind} {how}"] = probe.noticed[0] - left_at
        assert delay < NOTICE_BOUND
        assert released(srv, probe, f"long-poll {kind} {how}", left_at)
    if kind == "asgi":
        assert probe.events == ["http.disconnect"]
    assert errors(caplog) == []


# -- 2. SSE -----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("kind", KINDS)
def test_sse_ends_when_client_left(kind: str, how: str, caplog: pytest.LogCaptureFixture) -> None:
    """FIN here is ``shutdown(SHUT_WR)`` while the client keeps reading: the server learns it
    only by the EOF (a close() with events unread would reset, and writes would fail anyway)."""
    probe = Probe()
    with running(kind, probe) as srv:
        sock = get(srv.port, "/sse")
        head = read_until(sock, b"data: 0\n\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"text/event-stream" in head.lower()
        if how == "FIN":
            left_at = time.monotonic()
            sock.shutdown(socket.SHUT_WR)
        else:
            left_at = leave(sock, how)
        assert wait_until(lambda: probe.ended, 3.0), "the handler never ended"
        delay = DELAYS[f"SSE {kind} {how}"] = probe.ended[0] - left_at
        assert probe.noticed, "ended without noticing"
        assert delay < SSE_BOUND
        if how == "FIN":  # the server then closes: the half-closed client reads EOF
            _, eof = read_to_eof(sock, 3.0)
            assert eof
            sock.close()
            assert wait_until(lambda: probe.running == 0)  # connection: test_fin_..._released
        else:
            assert released(srv, probe, f"SSE {kind} {how}", left_at)
    if kind == "asgi":
        assert probe.events == ["sends after disconnect ignored"]
    assert errors(caplog) == []


# -- 3. a half-closed client still gets a whole response --------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_half_closed_client_gets_whole_response(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe()
    with running(kind, probe) as srv:
        with get(srv.port, "/slow") as sock:
            sock.shutdown(socket.SHUT_WR)
            data, eof = read_to_eof(sock, 3.0)
        assert eof, f"no EOF after {data!r}"
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), data
        assert b"content-length: %d" % len(WHOLE) in head.lower()
        assert b"connection: close" in head.lower()
        assert body == WHOLE
    if kind == "web":  # the handler was told, and its answer was still written
        assert probe.events == ["transport None"]
    assert errors(caplog) == []


# Where the client sent its FIN and nothing more comes from it (it half-closed and read the
# answer; or it closed and its cancelled handler wrote nothing, so no RST comes back either), the
# server has nothing left to wait for: it closes at once instead of lingering (closing.py).


def _leave_by_fin_without_rst(srv: Any, cancel: bool) -> float:
    """The FIN cases the server learns nothing more about; returns when the client was done."""
    if cancel:  # a handler cancelled on the FIN: no answer, so no RST from the client
        sock = get(srv.port, "/sleep")
        time.sleep(0.05)
        return leave(sock, "FIN")
    with get(srv.port, "/slow") as sock:  # half-closed, answered whole
        sock.shutdown(socket.SHUT_WR)
        _, eof = read_to_eof(sock, 3.0)
        assert eof
    with get(srv.port, "/sse") as sock:  # a stream the client half-closed
        read_until(sock, b"data: 0\n\n")
        sock.shutdown(socket.SHUT_WR)
        _, eof = read_to_eof(sock, 3.0)
        assert eof
    return time.monotonic()


def test_fin_closed_connections_released(caplog: pytest.LogCaptureFixture) -> None:
    cases = [(kind, cancel) for kind in KINDS for cancel in (False, True)]
    with ExitStack() as stack:
        servers = {c: (stack.enter_context(running(c[0], p := Probe(), c[1])), p) for c in cases}
        done_at = {c: _leave_by_fin_without_rst(servers[c][0], c[1]) for c in cases}
        for case, (srv, probe) in servers.items():
            key = f"{case[0]} {'cancelled, FIN' if case[1] else 'half-closed + SSE FIN'}"
            remaining = 5.0 - (time.monotonic() - done_at[case])
            assert released(srv, probe, key, done_at[case], remaining), key
    assert errors(caplog) == []


@pytest.mark.parametrize("cancel", [False, True], ids=["half-closed", "cancelled"])
@pytest.mark.parametrize("kind", KINDS)
def test_fin_closed_connection_released_at_once(kind: str, cancel: bool) -> None:
    """Both FINs are sent, nothing is left to read: the server may close its socket at once
    (no RST can follow), rather than linger (closing.py's _LINGER) for an EOF it has read."""
    with running(kind, Probe(), cancel) as srv:
        done_at = _leave_by_fin_without_rst(srv, cancel)
        assert wait_until(lambda: srv.connections == 0, NOTICE_BOUND), (
            f"the server still holds {srv.connections} connections"
            f" {time.monotonic() - done_at:.2f} s after the client closed"
        )


# -- 4. 300 clients leave at once -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_300_clients_leave_at_once(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    probe = Probe()
    with running(kind, probe) as srv:
        leave(get(srv.port, "/longpoll"), "FIN")  # one first, so that nothing is set up lazily
        assert wait_until(lambda: probe.running == 0 and srv.connections == 0)
        baseline = fds()
        socks = [get(srv.port, "/longpoll") for _ in range(300)]
        assert wait_until(lambda: probe.running == 300, 10), probe.running
        peak = fds()
        left_at = time.monotonic()
        for i, sock in enumerate(socks):
            leave(sock, "FIN" if i % 2 else "RST")
        socks.clear()
        handlers_done = wait_until(lambda: probe.running == 0, 5.0)
        handlers_at = time.monotonic() - left_at
        fds_done = wait_until(lambda: fds() <= baseline and srv.connections == 0, 5.0)
        fds_at = time.monotonic() - left_at
        print(
            f"\n300 clients ({kind}): fds baseline {baseline}, peak {peak}, after {fds()};"
            f" handlers still running {probe.running} ({handlers_at:.2f} s),"
            f" connections {srv.connections} ({fds_at:.2f} s)"
        )
        DELAYS[f"300 clients {kind}"] = handlers_at  # the last handler ended
        RELEASES[f"300 clients {kind}"] = fds_at  # fds back to the baseline
        assert handlers_done, f"{probe.running} handlers still running 5 s later"
        assert fds_done, f"{fds() - baseline} extra fds, {srv.connections} connections"
        assert len(probe.noticed) == 301
    assert errors(caplog) == []


# -- 5. an upload cut halfway -----------------------------------------------------------------


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("kind", KINDS)
def test_upload_cut_halfway(kind: str, how: str, caplog: pytest.LogCaptureFixture) -> None:
    probe = Probe()
    with running(kind, probe) as srv:
        head = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
        sock = connect(srv.port, head + b"x" * 1000)
        assert wait_until(lambda: probe.running == 1)
        time.sleep(0.1)  # the handler waits for the rest of the body
        assert not probe.noticed
        left_at = leave(sock, how)
        assert wait_until(lambda: probe.noticed, 3.0), "the body's reader never learned it"
        delay = DELAYS[f"upload cut {kind} {how}"] = probe.noticed[0] - left_at
        assert delay < NOTICE_BOUND
        assert released(srv, probe, f"upload cut {kind} {how}", left_at)
    if kind == "web":
        assert probe.events == ["HTTPBadRequest 400"]
    else:
        assert probe.events == ["received 1000, then http.disconnect"]
    assert errors(caplog) == []


# -- 6. handler_cancellation ------------------------------------------------------------------


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("kind", KINDS)
def test_handler_cancellation(kind: str, how: str, caplog: pytest.LogCaptureFixture) -> None:
    probe = Probe()
    with running(kind, probe, handler_cancellation=True) as srv:
        sock = get(srv.port, "/sleep")
        assert wait_until(lambda: probe.running == 1)
        time.sleep(0.05)
        left_at = leave(sock, how)
        assert wait_until(lambda: probe.noticed, 3.0), "the handler was not cancelled"
        delay = DELAYS[f"cancelled {kind} {how}"] = probe.noticed[0] - left_at
        assert delay < NOTICE_BOUND
        if how == "RST":
            assert released(srv, probe, f"cancelled {kind} {how}", left_at)
        else:  # the connection: test_fin_closed_connections_released
            assert wait_until(lambda: probe.running == 0)
    assert probe.events == ["cancelled"]
    assert errors(caplog) == []


# -- the example: examples/longpoll_sse.py ----------------------------------------------------


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("longpoll_sse_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_delivers_and_lets_leaving_clients_go() -> None:
    example = _example()
    with serve(example.create_app()) as srv:

        def subscribers() -> int:
            return int(httpx.get(f"{srv.url}/stats").json()["subscribers"])

        # Delivered: to a long-poll and to an SSE stream.
        poller = get(srv.port, "/poll")
        stream = get(srv.port, "/events")
        assert read_until(stream, b"\r\n\r\n").startswith(b"HTTP/1.1 200 ")
        assert wait_until(lambda: subscribers() == 2)
        published = httpx.post(f"{srv.url}/publish", content=b"hello\nworld")
        assert published.json() == {"delivered": 2}
        answer = read_until(poller, b"hello\nworld")
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert read_until(stream, b"data: hello\ndata: world\n\n")
        assert wait_until(lambda: subscribers() == 1)
        poller.close()

        # Clients that leave (FIN, RST) let their subscriptions go at once.
        poller = get(srv.port, "/poll")
        assert wait_until(lambda: subscribers() == 2)
        left_at = leave(poller, "FIN")
        assert wait_until(lambda: subscribers() == 1, NOTICE_BOUND)
        DELAYS["example /poll FIN"] = time.monotonic() - left_at
        left_at = leave(stream, "RST")
        assert wait_until(lambda: subscribers() == 0, NOTICE_BOUND)
        DELAYS["example /events RST"] = time.monotonic() - left_at
        assert wait_until(lambda: srv.connections == 0)


def test_example_runs_as_written() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE)],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                stats = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert stats.json() == {"subscribers": 0}
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    assert f":{port}".encode() in out
    assert b"Traceback" not in err, err.decode()
    assert json.loads(stats.text) == {"subscribers": 0}
