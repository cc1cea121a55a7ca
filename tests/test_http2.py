"""HTTP/2 (prior knowledge, cleartext) on the same port as HTTP/1.1, for both interfaces.

Real clients: httpx with ``http2=True``, curl ``--http2-prior-knowledge`` where it has HTTP/2,
and the ``h2`` library's client side over a raw socket for what the others cannot do (reset a
stream, read the frames).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from squall import web
from squall.asgi.handler import ASGIHandler
from squall.http import HttpServer
from squall.http.preface import ALPN

from .loop_thread import LoopThread

BIG = 3 * 1024 * 1024 + 7  # past every window: the connection's (1 MiB) and a stream's (64 KiB)


class Probe:
    """What the handlers saw, read by the tests (set from the server's thread)."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []
        self.seen: dict[str, Any] = {}


# -- the two applications: the same routes, as aiohttp.web and as raw ASGI ----------------------


def web_app(probe: Probe) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        probe.seen["version"] = request.version
        probe.seen["host"] = request.host
        return web.Response(text="Hello, World!")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def sleepy(request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)
        return web.Response(text=request.query.get("n", ""))

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "text/event-stream"
        await resp.prepare(request)
        for i in range(5):
            await resp.write(b"data: %d\n\n" % i)
            await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * BIG)

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    async def cookie(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("Cookie", ""))

    async def forever(request: web.Request) -> web.Response:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            probe.cancelled.append("web")
            raise
        return web.Response(text="late")

    app = web.Application(client_max_size=2 * BIG)
    app.add_routes(
        [
            web.get("/", hello),
            web.post("/echo", echo),
            web.get("/sleepy", sleepy),
            web.get("/stream", stream),
            web.get("/big", big),
            web.get("/empty", empty),
            web.get("/boom", boom),
            web.get("/cookie", cookie),
            web.get("/forever", forever),
        ]
    )
    return app


def asgi_app(probe: Probe) -> Callable[..., Any]:
    async def send_text(send: Any, body: bytes, status: int = 200, more: bool = False) -> None:
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"x-app", b"asgi")]}
        )
        await send({"type": "http.response.body", "body": body, "more_body": more})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        path = scope["path"]
        if path == "/":
            probe.seen["version"] = scope["http_version"]
            probe.seen["host"] = dict(scope["headers"]).get(b"host", b"").decode()
            await send_text(send, b"Hello, World!")
        elif path == "/echo":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            await send_text(send, body)
        elif path == "/sleepy":
            await asyncio.sleep(0.2)
            await send_text(send, scope["query_string"].partition(b"=")[2])
        elif path == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for i in range(5):
                await send(
                    {"type": "http.response.body", "body": b"data: %d\n\n" % i, "more_body": True}
                )
                await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b""})
        elif path == "/big":
            await send_text(send, b"x" * BIG)
        elif path == "/empty":
            await send_text(send, b"", status=204)
        elif path == "/boom":
            raise RuntimeError("boom")
        elif path == "/cookie":
            cookies = [v for n, v in scope["headers"] if n == b"cookie"]
            await send_text(send, b",".join(cookies))
        elif path == "/forever":
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                probe.cancelled.append("asgi")
                raise
        else:
            await send_text(send, b"not found", status=404)

    return app


class H2Server(LoopThread):
    """One interface's app on ``HttpServer`` (HTTP/1.1 and HTTP/2 on one port), in a thread."""

    def __init__(self, kind: str, http2: bool = True, ssl: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.http2 = http2
        self.ssl = ssl
        self.probe = Probe()
        self.port = 0
        self.http: HttpServer | None = None

    async def serve(self, stop: asyncio.Event) -> None:
        if self.kind == "web":
            runner = web.AppRunner(web_app(self.probe), http2=self.http2, shutdown_timeout=2.0)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site.port
            self.http = runner.server
            self.ready()
            await stop.wait()
            await runner.cleanup()
        else:
            loop = asyncio.get_running_loop()
            self.http = HttpServer(ASGIHandler(asgi_app(self.probe)), loop=loop, http2=self.http2)
            listener = await loop.create_server(self.http, "127.0.0.1", 0, ssl=self.ssl)
            self.port = int(listener.sockets[0].getsockname()[1])
            self.ready()
            await stop.wait()
            listener.close()
            await self.http.shutdown(2.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> list[str]:
        http = self.http
        assert http is not None
        return list(self.call(lambda: [type(c).__name__ for c in http.connections]))


@pytest.fixture(scope="module", params=["web", "asgi"])
def server(request: pytest.FixtureRequest) -> Iterator[H2Server]:
    srv = H2Server(request.param).start()
    try:
        yield srv
    finally:
        srv.stop()


def client() -> httpx.Client:
    # http1=False: prior knowledge, the HTTP/2 preface first (what h2load and gRPC do too)
    return httpx.Client(http1=False, http2=True, timeout=10)


def test_get(server: H2Server) -> None:
    with client() as c:
        r = c.get(server.url + "/")
    assert r.http_version == "HTTP/2"
    assert r.status_code == 200
    assert r.text == "Hello, World!"
    assert r.headers["content-length"] == "13"
    assert "date" in r.headers and "server" in r.headers
    if server.kind == "web":
        assert server.probe.seen["version"] == (2, 0)
    else:
        assert server.probe.seen["version"] == "2"
    assert server.probe.seen["host"] == f"127.0.0.1:{server.port}"  # from :authority


def test_http11_on_the_same_port(server: H2Server) -> None:
    with httpx.Client() as c:
        r = c.get(server.url + "/")
    assert r.http_version == "HTTP/1.1"
    assert r.text == "Hello, World!"


def test_post_with_body(server: H2Server) -> None:
    with client() as c:
        r = c.post(server.url + "/echo", content=b"ping" * 100)
    assert r.status_code == 200
    assert r.content == b"ping" * 100


def test_many_concurrent_streams_on_one_connection(server: H2Server) -> None:
    async def run() -> tuple[list[str], float]:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as c:
            start = time.monotonic()
            rs = await asyncio.gather(*(c.get(server.url + f"/sleepy?n={i}") for i in range(50)))
            took = time.monotonic() - start
        assert all(r.http_version == "HTTP/2" for r in rs)
        return [r.text for r in rs], took

    texts, took = asyncio.run(run())
    assert texts == [str(i) for i in range(50)]
    assert took < 2.0  # concurrent: 50 x 0.2 s one after the other would take 10 s


def test_streamed_response(server: H2Server) -> None:
    with client() as c, c.stream("GET", server.url + "/stream") as r:
        assert r.http_version == "HTTP/2"
        assert "content-length" not in r.headers
        body = b"".join(r.iter_bytes())
    assert body == b"".join(b"data: %d\n\n" % i for i in range(5))


def test_head_and_204_carry_no_data(server: H2Server) -> None:
    with client() as c:
        head = c.head(server.url + "/")
        empty = c.get(server.url + "/empty")
    assert head.status_code == 200 and head.content == b""
    assert empty.status_code == 204 and empty.content == b""


def test_large_bodies_both_ways(server: H2Server) -> None:
    payload = bytes(range(256)) * (BIG // 256)
    with client() as c:
        up = c.post(server.url + "/echo", content=payload)
        down = c.get(server.url + "/big")
    assert up.content == payload
    assert down.content == b"x" * BIG


def test_handler_that_raises_is_500(server: H2Server) -> None:
    with client() as c:
        r = c.get(server.url + "/boom")
        after = c.get(server.url + "/")  # the connection goes on
    assert r.status_code == 500
    assert after.status_code == 200


def test_client_reset_cancels_the_handler(server: H2Server) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(
        1,
        [(":method", "GET"), (":path", "/forever"), (":scheme", "http"), (":authority", "x")],
        end_stream=True,
    )
    sock.sendall(conn.data_to_send())
    time.sleep(0.2)
    conn.reset_stream(1)
    # a second stream on the same connection is still served
    conn.send_headers(
        3,
        [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")],
        end_stream=True,
    )
    sock.sendall(conn.data_to_send())
    got = b""
    ended = False
    deadline = time.monotonic() + 5
    while not ended and time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived) and event.stream_id == 3:
                got += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, 3)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == 3:
                ended = True
        sock.sendall(conn.data_to_send())
    sock.close()
    assert got == b"Hello, World!"
    deadline = time.monotonic() + 2
    while not server.probe.cancelled and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.probe.cancelled == [server.kind]


needs_curl_http2 = pytest.mark.skipif(
    shutil.which("curl") is None
    or "HTTP2" not in subprocess.run(["curl", "-V"], capture_output=True, text=True).stdout,
    reason="curl without HTTP/2",
)


@needs_curl_http2
def test_curl_prior_knowledge(server: H2Server) -> None:
    out = subprocess.run(
        ["curl", "-si", "--http2-prior-knowledge", server.url + "/"],
        capture_output=True,
        timeout=10,
        check=True,
    ).stdout
    assert out.startswith(b"HTTP/2 200")
    assert out.endswith(b"\r\n\r\nHello, World!")


def test_preface_split_over_reads(server: H2Server) -> None:
    """The sniffer waits for the whole preface, one byte at a time if need be."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        for i in range(len(preface)):
            sock.sendall(preface[i : i + 1])
            time.sleep(0.005)
        data = sock.recv(1024)
    assert data[3] == 0x4  # a SETTINGS frame: HTTP/2


def test_http2_off() -> None:
    srv = H2Server("asgi", http2=False).start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            data = sock.recv(1024)
        assert data.startswith(b"HTTP/1.1 505 ")
    finally:
        srv.stop()


def test_response_before_the_upload_is_whole(server: H2Server) -> None:
    """A handler that answers without reading the body: the rest is dropped, the client gets
    its answer (web: 405 for POST on a GET route; ASGI: the app ignores the body)."""
    with client() as c:
        r = c.post(server.url + "/", content=b"z" * BIG)
        after = c.get(server.url + "/")
    assert r.status_code == (405 if server.kind == "web" else 200)
    assert after.text == "Hello, World!"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_tls_alpn_chooses_h2(tmp_path: Any) -> None:
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(keyfile), "-out", str(certfile)),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile, keyfile)
    ctx.set_alpn_protocols(list(ALPN))
    srv = H2Server("asgi", ssl=ctx).start()
    try:
        url = f"https://127.0.0.1:{srv.port}/"
        verify = ssl.create_default_context(cafile=str(certfile))
        with httpx.Client(http2=True, verify=verify) as c:
            r2 = c.get(url)
        with httpx.Client(verify=verify) as c:  # offers http/1.1 only
            r1 = c.get(url)
    finally:
        srv.stop()
    assert (r2.http_version, r2.text) == ("HTTP/2", "Hello, World!")
    assert (r1.http_version, r1.text) == ("HTTP/1.1", "Hello, World!")


@needs_curl_http2
@pytest.mark.parametrize("kind", ["web", "asgi"])
def test_graceful_shutdown_lets_streams_finish(kind: str) -> None:
    """GOAWAY on shutdown: the stream in flight is answered, then the connection closes.

    (With curl: httpx fails every stream in flight on a GOAWAY, and the h2 library's client
    refuses any frame after one.)"""
    srv = H2Server(kind).start()
    curl = subprocess.Popen(
        ["curl", "-s", "--http2-prior-knowledge", srv.url + "/sleepy?n=7"],
        stdout=subprocess.PIPE,
    )
    time.sleep(0.1)
    srv.stop()
    out, _ = curl.communicate(timeout=5)
    assert (curl.returncode, out) == (0, b"7")


def h2_get(port: int, path: str, extra: list[tuple[str, str]]) -> tuple[int, bytes]:
    """One GET with the h2 library's client (header fields exactly as given)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        fields = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "x")]
        conn.send_headers(1, fields + extra, end_stream=True)
        sock.sendall(conn.data_to_send())
        status, body = 0, b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                elif isinstance(event, h2.events.StreamEnded):
                    return status, body
            sock.sendall(conn.data_to_send())
    raise AssertionError("no response")


def test_cookie_crumbs_reach_the_app_as_one_field(server: H2Server) -> None:
    """HTTP/2 may split Cookie into crumbs (RFC 9113 8.2.3): apps get one field, as on 1.1."""
    status, body = h2_get(server.port, "/cookie", [("cookie", "a=1"), ("cookie", "b=2")])
    assert (status, body) == (200, b"a=1; b=2")


def test_expect_100_continue(server: H2Server) -> None:
    """The body is invited (a 100 HEADERS) once the handler reads it, then echoed."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        fields = [(":method", "POST"), (":path", "/echo"), (":scheme", "http")]
        conn.send_headers(1, [*fields, (":authority", "x"), ("expect", "100-continue")])
        sock.sendall(conn.data_to_send())
        statuses: list[bytes] = []
        body = b""
        done = False
        while not done:
            data = sock.recv(65536)
            assert data, "closed"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.InformationalResponseReceived):
                    statuses.append(dict(event.headers)[b":status"])
                    conn.send_data(1, b"ping", end_stream=True)
                elif isinstance(event, h2.events.ResponseReceived):
                    statuses.append(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                elif isinstance(event, h2.events.StreamEnded):
                    done = True
            sock.sendall(conn.data_to_send())
    assert (statuses, body) == ([b"100", b"200"], b"ping")
