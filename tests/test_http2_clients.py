"""aiohttp.web's files over HTTP/2, and nghttp2's clients (``nghttp``, ``h2load``) on both
interfaces.

aiohttp.web: ``web.static`` and ``web.FileResponse`` (whole, Range 206, If-None-Match and
If-Modified-Since 304, HEAD) with httpx; tests/test_http2.py has the rest (HEAD, 204, bodies).
nghttp2-client is Debian's package of both tools (.ci/run installs it); the tests that need
one are skipped without it. Each run is bounded: a few thousand requests, a timeout.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hyperframe.frame import DataFrame, RstStreamFrame, WindowUpdateFrame

from squall import web
from squall.asgi import serve

from .h2_framework_apps import Probe, make_starlette_app
from .h2_wire import CANCEL, Conn, get
from .loop_thread import LoopThread

FILE_SIZE = 200 * 1024 + 5  # past a stream's 64 KiB window


def web_app(static_dir: Path) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="Hello, World!")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(static_dir / "big.bin")

    async def trailers(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"payload")
        await resp.write_eof(trailers={"grpc-status": "0", "x-digest": "abc"})
        return resp

    async def not_modified(request: web.Request) -> web.Response:
        return web.Response(status=304, headers={"ETag": '"v1"'}, body=b"dropped")

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=204, body=b"dropped")

    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "text/event-stream"
        await resp.prepare(request)
        for i in range(5):
            await resp.write(b"data: %d\n\n" % i)
            await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.add_routes(
        [
            web.get("/", hello),
            web.post("/echo", echo),
            web.get("/file", file),
            web.get("/trailers", trailers),
            web.get("/events", events),
            web.get("/304", not_modified),
            web.get("/204", empty),
            web.static("/static", static_dir),
        ]
    )
    return app


class Servers(LoopThread):
    """The aiohttp.web app and the Starlette app, each on its own port, on one loop."""

    def __init__(self, static_dir: Path) -> None:
        super().__init__()
        self.static_dir = static_dir
        self.ports: dict[str, int] = {}

    async def serve(self, stop: asyncio.Event) -> None:
        runner = web.AppRunner(web_app(self.static_dir), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.ports["web"] = site.port
        asgi = make_starlette_app(Probe(), self.static_dir)
        async with serve(asgi, "127.0.0.1", 0) as server:
            self.ports["asgi"] = server.port
            self.ready()
            await stop.wait()
        await runner.cleanup()

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.ports[kind]}"


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("h2clients")
    (where / "big.bin").write_bytes(bytes(range(256)) * (FILE_SIZE // 256) + b"tail!")
    (where / "hello.txt").write_text("Hello, static file!\n")
    return where


@pytest.fixture(scope="module")
def servers(static_dir: Path) -> Iterator[Servers]:
    srv = Servers(static_dir).start()
    try:
        yield srv
    finally:
        srv.stop()


def client() -> httpx.Client:
    return httpx.Client(http1=False, http2=True, timeout=10)  # prior knowledge


# -- aiohttp.web's files over HTTP/2 ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/static/big.bin", "/file"])
def test_web_files(servers: Servers, static_dir: Path, path: str) -> None:
    data = (static_dir / "big.bin").read_bytes()
    url = servers.url("web") + path
    with client() as c:
        whole = c.get(url)
        head = c.head(url)
        part = c.get(url, headers={"Range": "bytes=70000-139999"})
        suffix = c.get(url, headers={"Range": "bytes=-7"})
        past = c.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
        etag, modified = whole.headers["etag"], whole.headers["last-modified"]
        by_etag = c.get(url, headers={"If-None-Match": etag})
        by_date = c.get(url, headers={"If-Modified-Since": modified})
        changed = c.get(url, headers={"If-None-Match": '"other"'})
    assert (whole.http_version, whole.status_code, whole.content) == ("HTTP/2", 200, data)
    assert whole.headers["content-length"] == str(len(data))
    assert whole.headers["accept-ranges"] == "bytes"
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(data))
    assert (part.status_code, part.content) == (206, data[70000:140000])
    assert part.headers["content-range"] == f"bytes 70000-139999/{len(data)}"
    assert (suffix.status_code, suffix.content) == (206, data[-7:])
    assert past.status_code == 416
    assert (by_etag.status_code, by_etag.content) == (304, b"")
    assert by_etag.headers["etag"] == etag
    assert (by_date.status_code, by_date.content) == (304, b"")
    assert (changed.status_code, changed.content) == (200, data)


def test_web_static_small_file_and_missing(servers: Servers) -> None:
    with client() as c:
        hello = c.get(servers.url("web") + "/static/hello.txt")
        missing = c.get(servers.url("web") + "/static/nope.txt")
        escape = c.get(servers.url("web") + "/static/..%2f..%2fetc%2fpasswd")
    assert hello.text == "Hello, static file!\n"
    assert hello.headers["content-type"].startswith("text/plain")
    assert missing.status_code == 404
    assert escape.status_code in (403, 404)


@pytest.mark.parametrize("kind", ["web", "asgi"])
@pytest.mark.parametrize("path", ["/file", "/static/big.bin"])
def test_reset_while_a_file_waits_for_the_window(servers: Servers, kind: str, path: str) -> None:
    """The client takes a window's worth of a file, then resets the stream: the sender waiting
    for the window lets go, and the connection serves the next stream (then a whole file)."""
    with Conn(servers.ports[kind]) as conn:
        conn.request(1, get(path))
        got = 0
        while got < 65535:  # the initial windows, all of it, never reopened by us
            f, _ = conn.read()
            if isinstance(f, DataFrame) and f.stream_id == 1:
                got += len(f.data)
        assert got == 65535
        conn.send(
            RstStreamFrame(1, error_code=CANCEL),
            WindowUpdateFrame(0, window_increment=got),  # DATA of a reset stream still counts
        )
        conn.request(3, get("/"))
        hello = conn.response(3)
        conn.request(5, get(path))
        whole = conn.response(5)
    assert (hello.status, hello.body) == (200, b"Hello, World!")
    assert (whole.status, len(whole.body)) == (200, FILE_SIZE // 256 * 256 + 5)


@pytest.mark.parametrize(
    ("kind", "method", "path", "status", "length"),
    [
        ("web", "GET", "/304", 304, None),
        ("web", "GET", "/204", 204, None),
        ("web", "HEAD", "/", 200, b"13"),
        ("asgi", "GET", "/empty", 204, None),
        ("asgi", "HEAD", "/", 200, b"13"),
    ],
)
def test_bodiless_responses_end_on_the_headers(
    servers: Servers, kind: str, method: str, path: str, status: int, length: bytes | None
) -> None:
    """A 304, a 204 (bodies given by the handler are dropped) and a HEAD: one HEADERS frame
    with END_STREAM, no DATA; HEAD keeps the Content-Length a GET would get."""
    with Conn(servers.ports[kind]) as conn:
        conn.request(1, get(path, method=method))
        resp = conn.response(1)
    assert (resp.status, resp.body, resp.head_ended) == (status, b"", True)
    assert resp.header(b"content-length") == length
    if status == 304:
        assert resp.header(b"etag") == b'"v1"'


# -- nghttp ---------------------------------------------------------------------------------------

needs_nghttp = pytest.mark.skipif(
    shutil.which("nghttp") is None, reason="needs nghttp (Debian: nghttp2-client)"
)
needs_h2load = pytest.mark.skipif(
    shutil.which("h2load") is None, reason="needs h2load (Debian: nghttp2-client)"
)
KINDS = ["web", "asgi"]


def run(*args: str | Path, timeout: float = 20) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args[0]} exited {done.returncode}: {done.stderr}"
    return done.stdout


@needs_nghttp
@pytest.mark.parametrize("kind", KINDS)
def test_nghttp_get(servers: Servers, kind: str) -> None:
    out = run("nghttp", "-nv", servers.url(kind) + "/")
    assert "recv SETTINGS frame" in out
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", out), out
    assert re.search(r"recv \(stream_id=\d+\) content-length: 13", out), out
    assert "recv DATA frame <length=13, flags=0x01, stream_id=" in out  # END_STREAM on the DATA
    assert "recv GOAWAY" not in out
    assert run("nghttp", servers.url(kind) + "/") == "Hello, World!"


@needs_nghttp
@pytest.mark.parametrize("kind", KINDS)
def test_nghttp_post_with_data(servers: Servers, static_dir: Path, kind: str) -> None:
    """``-d FILE`` uploads past the stream's window (nghttp waits for our WINDOW_UPDATEs)."""
    data = static_dir / "big.bin"
    out = subprocess.run(
        ["nghttp", "-d", str(data), servers.url(kind) + "/echo"],
        capture_output=True,
        timeout=20,
        check=True,
    ).stdout
    assert out == data.read_bytes()


@needs_nghttp
@pytest.mark.parametrize("kind", KINDS)
def test_nghttp_sees_trailers(servers: Servers, kind: str) -> None:
    path = "/trailers" if kind == "web" else "/trailers/"
    out = run("nghttp", "-v", servers.url(kind) + path)
    data_at = out.index("recv DATA frame")
    status_at = out.index(":status: 200")
    trailer_at = out.index("grpc-status: 0")
    assert status_at < data_at < trailer_at, out
    assert "x-digest: abc" in out[trailer_at:]
    # the trailers' HEADERS frame ends the stream
    assert re.search(r"recv HEADERS frame <length=\d+, flags=0x05", out[data_at:]), out
    assert "payload" in out


@needs_nghttp
@pytest.mark.parametrize("kind", KINDS)
def test_nghttp_many_streams_and_a_file(servers: Servers, static_dir: Path, kind: str) -> None:
    """Several URIs on one connection, concurrently (nghttp multiplexes them)."""
    base = servers.url(kind)
    out = run("nghttp", "-nv", "-m", "20", base + "/", base + "/static/big.bin")
    assert len(re.findall(r":status: 200", out)) == 40
    assert "RST_STREAM" not in out


# -- h2load ---------------------------------------------------------------------------------------


def h2load_counts(out: str) -> dict[str, int]:
    """The 'requests:' and 'status codes:' lines of h2load's summary, as a dict."""
    requests = re.search(r"^requests: (.*)$", out, re.M)
    codes = re.search(r"^status codes: (.*)$", out, re.M)
    assert requests and codes, out
    counts: dict[str, int] = {}
    for part in (requests.group(1) + ", " + codes.group(1)).split(", "):
        number, _, name = part.partition(" ")
        counts[name] = int(number)
    return counts


@needs_h2load
@pytest.mark.parametrize("kind", KINDS)
def test_h2load(servers: Servers, kind: str) -> None:
    out = run("h2load", "-n", "2000", "-c", "4", "-m", "10", "-T", "10", servers.url(kind) + "/")
    counts = h2load_counts(out)
    assert counts["succeeded"] == 2000 and counts["2xx"] == 2000, out
    assert counts["failed"] == counts["errored"] == counts["timeout"] == 0, out
    assert "Application protocol: h2c" in out


@needs_h2load
@pytest.mark.parametrize("kind", KINDS)
def test_h2load_uploads(servers: Servers, static_dir: Path, kind: str) -> None:
    """Concurrent uploads past the windows, 10 streams at a time on each connection: every
    body echoed whole (h2load counts the bytes)."""
    data = static_dir / "big.bin"
    n = 100
    out = run(
        *("h2load", "-n", str(n), "-c", "2", "-m", "10", "-T", "10"),
        *("-d", data, servers.url(kind) + "/echo"),
    )
    counts = h2load_counts(out)
    assert counts["succeeded"] == n and counts["2xx"] == n, out
    assert counts["errored"] == counts["timeout"] == 0, out
    traffic = re.search(r"\((\d+)\) data$", out, re.M)  # "traffic: ..., 19.53MB (N) data"
    assert traffic and int(traffic.group(1)) == n * data.stat().st_size, out


@needs_h2load
def test_h2load_many_streaming_responses_at_once(servers: Servers) -> None:
    """100 streams at a time on each connection (the most squall allows), each a handler that
    suspends between events: every stream gets its whole body."""
    n = 400
    out = run(*("h2load", "-n", str(n), "-c", "2", "-m", "100"), servers.url("web") + "/events")
    counts = h2load_counts(out)
    assert counts["succeeded"] == n and counts["2xx"] == n, out
    assert counts["errored"] == counts["timeout"] == 0, out
    traffic = re.search(r"\((\d+)\) data$", out, re.M)
    assert traffic and int(traffic.group(1)) == n * 5 * len(b"data: 0\n\n"), out


@needs_h2load
@pytest.mark.parametrize("kind", KINDS)
def test_h2load_files_through_tiny_windows(servers: Servers, static_dir: Path, kind: str) -> None:
    """The client's windows are 1 KiB a stream and 16 KiB the connection (``-w 10 -W 14``):
    each file goes out in hundreds of window-sized pieces, ten streams at a time, all whole."""
    n = 30
    out = run(
        *("h2load", "-n", str(n), "-c", "1", "-m", "10", "-w", "10", "-W", "14"),
        servers.url(kind) + "/static/big.bin",
    )
    counts = h2load_counts(out)
    assert counts["succeeded"] == n and counts["2xx"] == n, out
    traffic = re.search(r"\((\d+)\) data$", out, re.M)
    assert traffic and int(traffic.group(1)) == n * (static_dir / "big.bin").stat().st_size, out
