"""Prometheus metrics (squall/metrics.py): a real server, real requests, a real scrape, parsed by
prometheus_client's own parser; and the option off leaves no listener."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from squall import web
from squall.cli import parse_config
from squall.metrics import BUCKETS, Metrics

from .conftest import ServerThread, serve
from .test_asgi import ASGIThread


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def metrics_app(release: threading.Event) -> web.Application:
    async def user(request: web.Request) -> web.Response:
        return web.Response(text=request.match_info["id"])

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    async def held(request: web.Request) -> web.Response:
        while not release.is_set():
            await asyncio.sleep(0.01)
        return web.Response(text="done")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.03)
        return web.Response(text="slow")

    app = web.Application()
    app.router.add_get("/users/{id}", user)
    app.router.add_post("/users/{id}", user)
    app.router.add_get("/boom", boom)
    app.router.add_get("/held", held)
    app.router.add_get("/slow", slow)
    return app


@pytest.fixture(scope="module")
def release() -> threading.Event:
    return threading.Event()


@pytest.fixture(scope="module")
def metered(release: threading.Event) -> Iterator[ServerThread]:
    with serve(metrics_app(release), metrics_port=0, access_log=None) as srv:
        yield srv


def scrape_url(srv: ServerThread) -> str:
    assert srv.runner is not None and srv.runner.metrics_listener is not None
    return f"http://127.0.0.1:{srv.runner.metrics_listener.port}/metrics"


def test_counts_after_real_requests(metered: ServerThread, release: threading.Event) -> None:
    url = scrape_url(metered)
    with httpx.Client(base_url=metered.url) as client:
        for i in range(30):
            assert client.get(f"/users/{i}").status_code == 200
        for i in range(7):
            assert client.post(f"/users/{i}").status_code == 200
        for _ in range(5):
            assert client.get("/nowhere").status_code == 404
            assert client.get("/boom").status_code == 500
        for _ in range(3):
            assert client.get("/slow").status_code == 200
        found = samples(httpx.get(url).text)
    total = "squall_requests_total"
    assert value(found, total, method="GET", route="/users/{id}", status="2xx") == 30
    assert value(found, total, method="POST", route="/users/{id}", status="2xx") == 7
    assert value(found, total, method="GET", route="unmatched", status="4xx") == 5
    assert value(found, total, method="GET", route="/boom", status="5xx") == 5
    hist = "squall_request_duration_seconds"
    assert value(found, hist + "_count", route="/users/{id}") == 37
    assert value(found, hist + "_bucket", route="/users/{id}", le="+Inf") == 37
    # the slow route's 3 requests took 30 ms or more: none in the buckets below 25 ms
    assert value(found, hist + "_bucket", route="/slow", le="0.025") == 0
    assert value(found, hist + "_bucket", route="/slow", le="10.0") == 3
    # (an event loop runs a timer up to its clock resolution early: uvloop's is 1 ms)
    assert value(found, hist + "_sum", route="/slow") >= 3 * (0.03 - 0.001)
    # no request is in flight while scraping; the client's keep-alive connection is open
    assert value(found, "squall_requests_in_flight") == 0


def test_gauges_in_flight_and_connections(metered: ServerThread, release: threading.Event) -> None:
    url = scrape_url(metered)
    release.clear()
    socks = [socket.create_connection(("127.0.0.1", metered.port)) for _ in range(3)]
    try:
        for sock in socks[:2]:
            sock.sendall(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
        found: dict[Any, float] = {}
        for _ in range(100):  # until the server has read both requests
            found = samples(httpx.get(url).text)
            if value(found, "squall_requests_in_flight") == 2:
                break
            threading.Event().wait(0.02)
        assert value(found, "squall_requests_in_flight") == 2
        assert value(found, "squall_connections_open") >= 3
    finally:
        release.set()
        for sock in socks:
            sock.close()


def test_metrics_listener_serves_nothing_else(metered: ServerThread) -> None:
    base = scrape_url(metered).rsplit("/", 1)[0]
    assert httpx.get(base + "/").status_code == 404
    assert httpx.post(base + "/metrics").status_code == 405
    response = httpx.get(base + "/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert httpx.get(metered.url + "/metrics").status_code == 404  # not on the app's port


def test_off_no_listener() -> None:
    with serve(metrics_app(threading.Event())) as srv:
        assert srv.runner is not None and srv.runner.metrics_listener is None


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.observe("GET", '/a"b\\c\nd', 200, 0.001)
    metrics.observe("GET", "/x", 0, 20.0)  # no response: 5xx; past the last bucket: +Inf only
    found = samples(metrics.render())
    assert (
        value(found, "squall_requests_total", method="GET", route='/a"b\\c\nd', status="2xx") == 1
    )
    assert value(found, "squall_requests_total", method="GET", route="/x", status="5xx") == 1
    hist = "squall_request_duration_seconds_bucket"
    assert value(found, hist, route="/x", le=str(BUCKETS[-1])) == 0
    assert value(found, hist, route="/x", le="+Inf") == 1


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_asgi_counts() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def item(request: Any) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["id"])

    app = Starlette(routes=[Route("/items/{id}", item)])
    srv = ASGIThread(app, lifespan=False, metrics_port=0).start()
    try:
        with httpx.Client(base_url=srv.url) as client:
            for i in range(4):
                assert client.get(f"/items/{i}").status_code == 200
            assert client.get("/nope").status_code == 404
        assert srv.server is not None and srv.server.metrics_listener is not None
        found = samples(
            httpx.get(f"http://127.0.0.1:{srv.server.metrics_listener.port}/metrics").text
        )
    finally:
        srv.stop()
    total = "squall_requests_total"
    assert value(found, total, method="GET", route="/items/{id}", status="2xx") == 4
    assert value(found, total, method="GET", route="unmatched", status="4xx") == 1


def test_command_line() -> None:
    config = parse_config(["app:app", "--metrics-port", "9100"])
    assert (config.metrics_port, config.metrics_host) == (9100, "127.0.0.1")
    assert parse_config(["app:app"]).metrics_port is None
    # the supervisor serves its workers' metrics, summed
    config = parse_config(["app:app", "--metrics-port", "9100", "--workers", "2"])
    assert (config.metrics_port, config.workers) == (9100, 2)


def wait_for(url: str, check: Any, timeout: float = 10.0) -> dict[Any, float]:
    """Scrape ``url`` until ``check(found)`` holds; the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        found = samples(httpx.get(url, timeout=5.0).text)
        if check(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


# -- the wire's own metrics: WebSockets, bytes, refusals and timeouts -------------------------


def wire_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"x" * 65536
        for _ in range(1000):  # 64 MB: more than the socket buffers hold
            await response.write(chunk)
        return response

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket_ = web.WebSocketResponse()
        await socket_.prepare(request)
        async for message in socket_:
            await socket_.send_str(message.data)
        return socket_

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_post("/echo", echo)
    app.router.add_get("/big", big)
    app.router.add_get("/ws", ws)
    return app


@pytest.fixture
def wire() -> Iterator[ServerThread]:
    with serve(
        wire_app(),
        metrics_port=0,
        access_log=None,
        header_timeout=1.0,
        body_timeout=1.0,
        send_timeout=1.0,
    ) as srv:
        yield srv


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, read until the server closes; the bytes read."""
    with socket.create_connection(("127.0.0.1", port), timeout=10.0) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_bytes_received_and_sent(wire: ServerThread) -> None:
    """The bytes of closed connections, exactly as they went over TCP."""
    url = scrape_url(wire)
    requests = [
        b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n12345",
    ] * 3
    before = samples(httpx.get(url).text)
    answers = [exchange(wire.port, data) for data in requests]
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
    found = wait_for(url, lambda f: value(f, "squall_connections_open") == 0)
    received = value(found, "squall_received_bytes_total") - value(
        before, "squall_received_bytes_total"
    )
    sent = value(found, "squall_sent_bytes_total") - value(before, "squall_sent_bytes_total")
    # (each scrape's own connection is the metrics listener's, not counted.) The kernel counts
    # in sequence space: a FIN counts one, so each closed connection may add one each way.
    expected_in = sum(len(data) for data in requests)
    expected_out = sum(len(answer) for answer in answers)
    assert expected_in <= received <= expected_in + len(requests)
    assert expected_out <= sent <= expected_out + len(requests)


def test_websockets_open(wire: ServerThread) -> None:
    url = scrape_url(wire)

    async def client() -> dict[Any, float]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(wire.url + "/ws") as a,
            session.ws_connect(wire.url + "/ws") as b,
        ):
            for conn in (a, b):
                await conn.send_str("ping")
                assert (await conn.receive_str()) == "ping"
            return await asyncio.to_thread(
                wait_for, url, lambda f: value(f, "squall_websockets_open") == 2
            )

    found = asyncio.run(client())
    assert value(found, "squall_websockets_open") == 2
    assert value(found, "squall_connections_open") >= 2
    found = wait_for(url, lambda f: value(f, "squall_websockets_open") == 0)
    assert value(found, "squall_websockets_open") == 0


def test_errors_by_kind(wire: ServerThread) -> None:
    """Refusals and timeouts, each counted once under its kind; a keep-alive close is none."""
    url = scrape_url(wire)
    errors = "squall_http_errors_total"
    assert exchange(wire.port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert exchange(wire.port, b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n").startswith(
        b"HTTP/1.1 400"
    )
    big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 70000 + b"\r\n\r\n"
    assert exchange(wire.port, big)[:12] in (b"HTTP/1.1 431", b"HTTP/1.1 414")
    # the header timeout: half a head, then nothing; the body timeout: half a body
    assert exchange(wire.port, b"GET /hello HTTP/1.1\r\nHo").startswith(b"HTTP/1.1 408")
    half_body = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"
    assert exchange(wire.port, half_body).startswith(b"HTTP/1.1 408")
    # HTTP/2 (prior knowledge): a DATA frame on stream 0 is a connection error (GOAWAY)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
    answer = exchange(wire.port, preface + bytes(9))
    assert bytes([0, 0, 8, 7]) in answer  # a GOAWAY frame's head: 8 bytes, type 7
    # a keep-alive connection that stays idle, and one the client closes: no error
    with socket.create_connection(("127.0.0.1", wire.port)) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    found = samples(httpx.get(url).text)
    assert value(found, errors, kind="bad_request") == 2
    assert value(found, errors, kind="too_large") == 1
    assert value(found, errors, kind="header_timeout") == 1
    assert value(found, errors, kind="body_timeout") == 1
    assert value(found, errors, kind="send_timeout") == 0
    assert value(found, errors, kind="http2_protocol") == 1


def test_send_timeout_counted(wire: ServerThread) -> None:
    """A client that reads none of a large answer is dropped after send_timeout."""
    url = scrape_url(wire)
    with socket.create_connection(("127.0.0.1", wire.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        found = wait_for(
            url, lambda f: value(f, "squall_http_errors_total", kind="send_timeout") == 1
        )
    assert value(found, "squall_http_errors_total", kind="send_timeout") == 1
