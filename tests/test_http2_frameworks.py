"""Starlette and FastAPI over HTTP/2 (cleartext, prior knowledge) with real clients.

One server per framework for the module (``squall.asgi.serve``), the same routes in both
(tests/h2_framework_apps.py). httpx with ``http2=True, http1=False`` is the main client; curl
``--http2-prior-knowledge`` and the raw frames of tests/h2_wire.py do what httpx cannot
(trailers, resetting a stream, GOAWAY).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hyperframe.frame import DataFrame, GoAwayFrame, RstStreamFrame

from squall.asgi import serve

from .h2_framework_apps import BIG, Probe, make_fastapi_app, make_starlette_app
from .h2_wire import CANCEL, Conn, get
from .loop_thread import LoopThread

FILE_SIZE = 300 * 1024 + 3  # past a stream's 64 KiB window


class FrameworkServer(LoopThread):
    """A Starlette or FastAPI app on ``squall.asgi.serve``, in a thread."""

    def __init__(self, kind: str, static_dir: Path, **kwargs: Any) -> None:
        super().__init__()
        self.kind = kind
        self.probe = Probe()
        make = make_starlette_app if kind == "starlette" else make_fastapi_app
        self.app = make(self.probe, static_dir)
        self.kwargs = kwargs
        self.port = 0

    async def serve(self, stop: asyncio.Event) -> None:
        async with serve(self.app, "127.0.0.1", 0, **self.kwargs) as server:
            self.port = server.port
            self.ready()
            await stop.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_seen(self, what: str, timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        while what not in self.probe.seen:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("h2static")
    (where / "big.bin").write_bytes(bytes(range(256)) * (FILE_SIZE // 256) + b"end")
    (where / "hello.txt").write_text("Hello, static file!\n")
    return where


@pytest.fixture(scope="module", params=["starlette", "fastapi"])
def server(request: pytest.FixtureRequest, static_dir: Path) -> Iterator[FrameworkServer]:
    srv = FrameworkServer(request.param, static_dir).start()
    try:
        yield srv
    finally:
        srv.stop()


def client() -> httpx.Client:
    return httpx.Client(http1=False, http2=True, timeout=10)  # prior knowledge


def test_get_and_post(server: FrameworkServer) -> None:
    with client() as c:
        r = c.get(server.url + "/")
        echo = c.post(server.url + "/echo", content=b"ping" * 1000)
    assert (r.http_version, r.status_code, r.text) == ("HTTP/2", 200, "Hello, World!")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert "2" in server.probe.seen  # the scope's http_version
    assert (echo.status_code, echo.content) == (200, b"ping" * 1000)


@pytest.mark.parametrize("server", ["fastapi"], indirect=True)
def test_fastapi_validation_and_streaming(server: FrameworkServer) -> None:
    with client() as c:
        ok = c.post(server.url + "/items", json={"name": "pen", "price": 1.5})
        bad = c.post(server.url + "/items", json={"name": "pen"})
        lines = c.get(server.url + "/lines")
    assert (ok.http_version, ok.json()) == ("HTTP/2", {"name": "pen", "price": 1.5})
    assert bad.status_code == 422
    assert lines.text == "line 0\nline 1\nline 2\n"


def test_sse_events_arrive_as_sent(server: FrameworkServer) -> None:
    """The first event reaches the client while the generator still waits; another stream on
    the same connection releases it."""

    async def run() -> tuple[bytes, bytes, str]:
        async with (
            httpx.AsyncClient(http1=False, http2=True, timeout=10) as c,
            c.stream("GET", server.url + "/sse") as r,
        ):
            assert r.headers["content-type"].startswith("text/event-stream")
            assert "content-length" not in r.headers
            chunks = r.aiter_bytes()
            first = await chunks.__anext__()
            released = (await c.get(server.url + "/release")).text
            rest = b"".join([chunk async for chunk in chunks])
        return first, rest, released

    server.probe.release = None  # a fresh event per run
    first, rest, released = asyncio.run(run())
    assert first == b"data: 0\n\n"
    assert released == "released"
    assert rest == b"data: 1\n\ndata: 2\n\ndata: 3\n\n"


def test_many_concurrent_streams_on_one_connection(server: FrameworkServer) -> None:
    async def run() -> tuple[list[str], list[bytes], float]:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as c:
            start = time.monotonic()
            gets = [c.get(server.url + f"/sleepy?n={i}") for i in range(60)]
            posts = [c.post(server.url + "/echo", content=b"%d" % i * 5000) for i in range(20)]
            rs = await asyncio.gather(*gets, *posts)
            took = time.monotonic() - start
        assert all(r.http_version == "HTTP/2" and r.status_code == 200 for r in rs)
        return [r.text for r in rs[:60]], [r.content for r in rs[60:]], took

    texts, bodies, took = asyncio.run(run())
    assert texts == [str(i) for i in range(60)]
    assert bodies == [b"%d" % i * 5000 for i in range(20)]
    assert took < 3.0  # concurrent: 60 x 0.2 s one after the other would take 12 s


def test_large_bodies_both_ways(server: FrameworkServer) -> None:
    """Bodies far past the 64 KiB windows: flow control in both directions."""
    payload = bytes(range(256)) * (BIG // 256)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 100_000):
            yield payload[i : i + 100_000]

    with client() as c:
        up = c.post(server.url + "/echo", content=payload)
        streamed = c.post(server.url + "/digest", content=chunks())
        down = c.get(server.url + "/big")
    assert up.content == payload
    assert streamed.text == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}"
    assert down.content == b"x" * BIG


def test_trailers(server: FrameworkServer) -> None:
    """A raw ASGI app mounted in the framework sends http.response.trailers: a HEADERS frame
    after the DATA."""
    with Conn(server.port) as conn:
        conn.request(1, get("/trailers/"))
        resp = conn.response(1)
    assert (resp.status, resp.body) == (200, b"payload")
    assert resp.trailers == [(b"grpc-status", b"0"), (b"x-digest", b"abc")]


@pytest.mark.parametrize(
    ("path", "seen"),
    [
        ("/forever", "forever cancelled"),
        ("/stream-forever", "stream closed"),
        ("/wait-disconnect", "receive cancelled"),
    ],
)
def test_client_reset_reaches_the_app(server: FrameworkServer, path: str, seen: str) -> None:
    """RST_STREAM(CANCEL) cancels the stream's app; the connection serves the next stream."""
    server.probe.seen.clear()
    with Conn(server.port) as conn:
        conn.request(1, get(path))
        if path == "/stream-forever":
            _, fields = conn.read()
            assert fields is not None and dict(fields)[b":status"] == b"200"
        else:
            time.sleep(0.2)
        conn.send(RstStreamFrame(1, error_code=CANCEL))
        conn.request(3, get("/"))
        after = conn.response(3)
    assert after.body == b"Hello, World!"
    assert server.wait_seen(seen), server.probe.seen


@pytest.mark.parametrize(
    ("path", "seen"),
    [("/stream-forever", "stream closed"), ("/wait-disconnect", "http.disconnect")],
)
def test_connection_closed_reaches_the_app(server: FrameworkServer, path: str, seen: str) -> None:
    """The client closes the whole connection (no RST_STREAM): ``receive()`` says
    http.disconnect, and a StreamingResponse waiting for its next event is cancelled by
    Starlette (which listens for it: the scope says ASGI 2.3, as uvicorn's)."""
    server.probe.seen.clear()
    with Conn(server.port) as conn:
        conn.request(1, get(path))
        if path == "/stream-forever":
            _, fields = conn.read()
            assert fields is not None and dict(fields)[b":status"] == b"200"
        else:
            time.sleep(0.2)
    assert server.wait_seen(seen), server.probe.seen


def test_streaming_response_ends_when_the_http11_client_leaves(server: FrameworkServer) -> None:
    """The same over HTTP/1.1: the generator is closed, not left waiting for ever."""
    server.probe.seen.clear()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /stream-forever HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while b"data: first" not in got:
            chunk = sock.recv(65536)
            assert chunk, got
            got += chunk
    assert server.wait_seen("stream closed"), server.probe.seen


def test_head_204_and_304(server: FrameworkServer) -> None:
    with client() as c:
        head = c.head(server.url + "/")
        empty = c.get(server.url + "/empty")
        static = c.get(server.url + "/static/hello.txt")
        etag = static.headers["etag"]
        not_modified = c.get(server.url + "/static/hello.txt", headers={"If-None-Match": etag})
        since = c.get(
            server.url + "/static/hello.txt",
            headers={"If-Modified-Since": static.headers["last-modified"]},
        )
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "13"
    assert empty.status_code == 204 and empty.content == b""
    assert "content-length" not in empty.headers
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert since.status_code == 304 and since.content == b""


def test_static_files_and_ranges(server: FrameworkServer, static_dir: Path) -> None:
    data = (static_dir / "big.bin").read_bytes()
    with client() as c:
        whole = c.get(server.url + "/static/big.bin")
        head = c.head(server.url + "/static/big.bin")
        part = c.get(server.url + "/static/big.bin", headers={"Range": "bytes=100000-200009"})
        tail = c.get(server.url + "/file", headers={"Range": "bytes=-10"})
        via_file = c.get(server.url + "/file")
        bad = c.get(server.url + "/file", headers={"Range": f"bytes={len(data) + 5}-"})
        multi = c.get(server.url + "/static/big.bin", headers={"Range": "bytes=0-9,-5"})
    assert (whole.http_version, whole.status_code, whole.content) == ("HTTP/2", 200, data)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(data))
    assert part.status_code == 206 and part.content == data[100000:200010]
    assert part.headers["content-range"] == f"bytes 100000-200009/{len(data)}"
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert via_file.content == data and via_file.headers["accept-ranges"] == "bytes"
    assert bad.status_code == 416
    assert multi.status_code == 206
    assert multi.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert data[:10] in multi.content and data[-5:] in multi.content


needs_curl = pytest.mark.skipif(
    shutil.which("curl") is None
    or "HTTP2" not in subprocess.run(["curl", "-V"], capture_output=True, text=True).stdout,
    reason="curl without HTTP/2",
)


@needs_curl
def test_curl(server: FrameworkServer) -> None:
    def curl(*args: str) -> bytes:
        return subprocess.run(
            ["curl", "-s", "--http2-prior-knowledge", *args],
            capture_output=True,
            timeout=10,
            check=True,
        ).stdout

    head = curl("-i", server.url + "/")
    assert head.startswith(b"HTTP/2 200") and head.endswith(b"\r\n\r\nHello, World!")
    assert curl("-d", "posted=1", server.url + "/echo") == b"posted=1"
    assert curl("-N", server.url + "/static/hello.txt") == b"Hello, static file!\n"


@needs_curl
@pytest.mark.parametrize("kind", ["starlette", "fastapi"])
def test_graceful_shutdown_lets_streams_finish(kind: str, static_dir: Path) -> None:
    """GOAWAY on shutdown: the stream in flight is answered, then the connection closes."""
    srv = FrameworkServer(kind, static_dir).start()
    curl = subprocess.Popen(
        ["curl", "-sN", "-m", "10", "--http2-prior-knowledge", srv.url + "/slow-stream"],
        stdout=subprocess.PIPE,
    )
    try:
        assert curl.stdout is not None
        first = curl.stdout.readline()  # the stream is in flight: stop the server now
    finally:
        srv.stop()
    rest, _ = curl.communicate(timeout=5)
    assert (curl.returncode, first, rest) == (0, b"first\n", b"last\n")


def test_goaway_names_the_last_stream(static_dir: Path) -> None:
    """Shutdown sends GOAWAY(NO_ERROR) naming the last stream taken; that stream, in flight,
    still gets its whole response."""
    srv = FrameworkServer("starlette", static_dir).start()
    stopper = threading.Thread(target=srv.stop, daemon=True)
    try:
        with Conn(srv.port) as conn:
            conn.request(1, get("/slow-stream"))
            goaway: GoAwayFrame | None = None
            body = b""
            ended = False
            for f, _ in conn.frames(timeout=3):
                if isinstance(f, GoAwayFrame):
                    goaway = f
                elif isinstance(f, DataFrame) and f.stream_id == 1:
                    body += f.data
                    if body == b"first\n":  # the stream is in flight: stop the server now
                        stopper.start()
                if f.stream_id == 1 and "END_STREAM" in f.flags:
                    ended = True
        assert goaway is not None
        assert (goaway.error_code, goaway.last_stream_id) == (0, 1)
        assert ended and body == b"first\nlast\n"
    finally:
        if stopper.ident is None:
            srv.stop()
        stopper.join(15)
