"""Prometheus metrics (squall/metrics.py): a real server, real requests, a real scrape, parsed by
prometheus_client's own parser; and the option off leaves no listener."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

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
    with pytest.raises(SystemExit):
        parse_config(["app:app", "--metrics-port", "9100", "--workers", "2"])
