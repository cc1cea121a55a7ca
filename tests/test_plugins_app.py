"""examples/plugins_app.py, plain aiohttp code with aiohttp-session, aiohttp-cors and
aiohttp-jinja2, served unchanged by squall through the alias, in a subprocess, real requests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import squall

from .server_process import SquallProcess

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
APP = EXAMPLES / "plugins_app.py"
ENV = {**os.environ, "PYTHONPATH": str(Path(squall.__file__).resolve().parent.parent)}
ORIGIN = "https://app.example.com"
TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1].decode()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the example did not start")


@pytest.fixture(scope="module", params=["as_aiohttp", "cli", "aiohttp"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The example served on squall: ``python -m squall.as_aiohttp FILE PORT`` (its own
    ``run_app``), or ``squall --as-aiohttp plugins_app:create_app --factory``; and on aiohttp
    (``python FILE PORT``), which shows that what the tests expect is aiohttp's behaviour."""
    if request.param == "cli":
        args = ("--as-aiohttp", "plugins_app:create_app", "--factory", "--port", "0")
        with SquallProcess(EXAMPLES, *args, env={"PYTHONPATH": ENV["PYTHONPATH"]}) as server:
            yield server.wait_ready()
        return
    port = _free_port()
    launcher = ["-m", "squall.as_aiohttp"] if request.param == "as_aiohttp" else []
    proc = subprocess.Popen(
        [sys.executable, *launcher, str(APP), str(port)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_up(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.communicate(timeout=TIMEOUT)


def test_hello(url: str, request: pytest.FixtureRequest) -> None:
    resp = httpx.get(f"{url}/World", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.text == "Hello, World!"
    server = "aiohttp" if request.node.callspec.params["url"] == "aiohttp" else "squall"
    assert server in resp.headers["server"]
    assert "set-cookie" not in resp.headers  # the session middleware saw it; no session made


def test_template_and_session_cookie_round_trip(url: str) -> None:
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        first = client.get("/", params={"name": "Ann"})
        assert first.status_code == 200
        assert first.headers["content-type"] == "text/html; charset=utf-8"
        assert "<h1>Hello, Ann!</h1>" in first.text
        assert "Visits in this session: 1" in first.text
        cookie = first.headers["set-cookie"]
        assert cookie.startswith("PLUGINS_SESSION=") and "HttpOnly" in cookie
        assert "Visits in this session: 2" in client.get("/").text  # the cookie came back
        assert client.get("/api/visits").json() == {"visits": 2}
        assert client.delete("/api/visits").json() == {"visits": 0}
        assert client.get("/api/visits").json() == {"visits": 0}
    # a fresh client, no cookie: a new session
    assert "Visits in this session: 1" in httpx.get(f"{url}/", timeout=TIMEOUT).text


def test_cors_preflight_and_actual_request(url: str) -> None:
    preflight = httpx.options(
        f"{url}/api/visits",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "X-Requested-With",
        },
        timeout=TIMEOUT,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert preflight.headers["access-control-allow-methods"] == "DELETE"
    assert preflight.headers["access-control-allow-headers"].upper() == "X-REQUESTED-WITH"
    assert preflight.headers["access-control-max-age"] == "600"

    actual = httpx.get(f"{url}/api/visits", headers={"Origin": ORIGIN}, timeout=TIMEOUT)
    assert actual.status_code == 200
    assert actual.headers["access-control-allow-origin"] == ORIGIN
    assert actual.headers["access-control-allow-credentials"] == "true"

    refused = httpx.options(
        f"{url}/api/visits",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"},
        timeout=TIMEOUT,
    )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    # a route without CORS: no CORS headers for a cross-origin request
    plain = httpx.get(f"{url}/World", headers={"Origin": ORIGIN}, timeout=TIMEOUT)
    assert "access-control-allow-origin" not in plain.headers
