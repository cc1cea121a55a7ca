"""Response trailers: ASGI's ``http.response.trailers``, ``StreamResponse.write_eof(trailers=)``.

On HTTP/2 they are a HEADERS frame with END_STREAM after the DATA (read here with the h2
library's client side over a raw socket, after a body large enough to wait for the windows);
on HTTP/1.1 they go in the last chunk of a chunked body (read as raw bytes), and a body of known
length drops them (HTTP/2 carries them whatever the length).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from squall import web
from squall.asgi.handler import ASGIHandler
from squall.http import HttpServer

from .loop_thread import LoopThread

BIG = 300_000  # past a stream's initial window (64 KiB): the trailers wait behind DATA


async def grpc_like(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    await resp.prepare(request)
    size = int(request.query.get("size", "5"))
    await resp.write(b"x" * size)
    await resp.write_eof(trailers={"grpc-status": "0", "grpc-message": "OK"})
    return resp


async def known_length(request: web.Request) -> web.Response:
    resp = web.Response(text="whole")
    await resp.prepare(request)
    await resp.write_eof(trailers=[("x-trailer", "1")])
    return resp


async def later_no_content(request: web.Request) -> web.Response:
    await asyncio.sleep(0.01)
    return web.Response(status=204)


def web_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/later204", later_no_content)
    app.router.add_get("/grpc", grpc_like)
    app.router.add_get("/known", known_length)
    return app


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/later204":
        await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    ext = "http.response.trailers" in scope.get("extensions", {})
    size = int(scope["query_string"].partition(b"=")[2] or b"5")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"x-extension", b"yes" if ext else b"no")],
            "trailers": True,
        }
    )
    await send({"type": "http.response.body", "body": b"x" * size, "more_body": False})
    await send(
        {
            "type": "http.response.trailers",
            "headers": [(b"grpc-status", b"0")],
            "more_trailers": True,
        }
    )
    await send(
        {
            "type": "http.response.trailers",
            "headers": [(b"grpc-message", b"OK")],
            "more_trailers": False,
        }
    )


class Server(LoopThread):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.port = 0

    async def serve(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        if self.kind == "web":
            runner = web.AppRunner(web_app(), http2=True)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site.port
            self.ready()
            await stop.wait()
            await runner.cleanup()
        else:
            http = HttpServer(ASGIHandler(asgi_app), loop=loop, http2=True)
            listener = await loop.create_server(http, "127.0.0.1", 0)
            self.port = int(listener.sockets[0].getsockname()[1])
            self.ready()
            await stop.wait()
            listener.close()
            await http.shutdown(1.0)


@pytest.fixture(scope="module", params=["web", "asgi"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    srv = Server(request.param).start()
    try:
        yield srv
    finally:
        srv.stop()


def h2_get(port: int, path: str) -> tuple[dict[bytes, bytes], bytes, list[Any]]:
    """GET over HTTP/2: the response head, the body, and the events after the last DATA."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    headers = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "x")]
    conn.send_headers(1, headers, end_stream=True)
    head: dict[bytes, bytes] = {}
    body = b""
    after: list[Any] = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(conn.data_to_send())
        ended = False
        while not ended:
            data = sock.recv(65536)
            assert data, "closed"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    head = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    after.clear()
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
                else:
                    after.append(event)
            sock.sendall(conn.data_to_send())
    return head, body, after


@pytest.mark.parametrize("size", [5, BIG])
def test_http2_trailers_follow_the_body(server: Server, size: int) -> None:
    head, body, after = h2_get(server.port, f"/grpc?size={size}")
    assert head[b":status"] == b"200"
    assert body == b"x" * size
    trailers = [e for e in after if isinstance(e, h2.events.TrailersReceived)]
    assert len(trailers) == 1
    fields = dict(trailers[0].headers)
    assert fields[b"grpc-status"] == b"0"
    assert fields[b"grpc-message"] == b"OK"
    if server.kind == "asgi":
        assert head[b"x-extension"] == b"yes"  # advertised in the scope on HTTP/2


def test_a_head_only_answer_after_a_suspension_is_flushed(server: Server) -> None:
    """HEADERS with END_STREAM made outside a read (the handler had suspended) leave at once,
    not with the connection's next read."""
    head, body, _ = h2_get(server.port, "/later204")
    assert head[b":status"] == b"204"
    assert body == b""


def http11_get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET %b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_http11_trailers_in_the_last_chunk(server: Server) -> None:
    raw = http11_get(server.port, "/grpc?size=5")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body.endswith(b"0\r\ngrpc-status: 0\r\ngrpc-message: OK\r\n\r\n"), body
    if server.kind == "asgi":
        assert b"x-extension: no" in head  # (advertised on HTTP/2 only)


def test_a_known_length_carries_them_on_http2_only() -> None:
    srv = Server("web").start()
    try:
        raw = http11_get(srv.port, "/known")
        _, h2_body, after = h2_get(srv.port, "/known")
    finally:
        srv.stop()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Length: 5" in head
    assert body == b"whole"
    assert b"x-trailer" not in raw
    assert h2_body == b"whole"
    trailers = [dict(e.headers) for e in after if isinstance(e, h2.events.TrailersReceived)]
    assert trailers == [{b"x-trailer": b"1"}]
