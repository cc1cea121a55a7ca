"""Load with wrk (skipped without wrk): no socket errors, no non-2xx, real throughput."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .apps import make_app
from .conftest import ServerThread, serve

WRK = shutil.which("wrk")
pytestmark = pytest.mark.skipif(WRK is None, reason="wrk is not installed")

PIPELINE_LUA = """
init = function(args)
  local r = {}
  for i = 1, %d do
    r[i] = wrk.format(nil, "/hello/World")
  end
  req = table.concat(r)
end

request = function()
  return req
end
"""


@dataclass
class WrkResult:
    requests: int
    socket_errors: dict[str, int]
    non_2xx: int | None
    output: str


def parse_wrk(output: str) -> WrkResult:
    m = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    assert m, output
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if e:
        errors = dict(zip(errors, map(int, e.groups()), strict=True))
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(int(m.group(1)), errors, int(n.group(1)) if n else None, output)


def run_wrk(url: str, *args: str, duration: int = 3) -> WrkResult:
    assert WRK is not None
    out = subprocess.run(
        [WRK, "-t1", "-c64", f"-d{duration}s", "--timeout", "2s", *args, url],
        capture_output=True,
        text=True,
        timeout=duration + 15,
        check=True,
    )
    return parse_wrk(out.stdout)


@pytest.fixture(scope="module")
def load_server() -> Iterator[ServerThread]:
    # access_log=None: measure the server, not the logging module.
    with serve(make_app(), access_log=None) as srv:
        yield srv


def test_parse_wrk_output() -> None:
    sample = (
        "Running 3s test @ http://127.0.0.1:1/hello/World\n"
        "  1 threads and 64 connections\n"
        "  12345 requests in 3.00s, 1.80MB read\n"
        "  Socket errors: connect 0, read 2, write 0, timeout 1\n"
        "  Non-2xx or 3xx responses: 7\n"
    )
    r = parse_wrk(sample)
    assert r.requests == 12345
    assert r.socket_errors == {"connect": 0, "read": 2, "write": 0, "timeout": 1}
    assert r.non_2xx == 7


def test_wrk_hello(load_server: ServerThread) -> None:
    r = run_wrk(load_server.url + "/hello/World", duration=3)
    assert r.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}, r.output
    assert r.non_2xx is None, r.output
    assert r.requests > 1000, r.output
    assert _connections_drop_to_zero(load_server), "connections left open after wrk exited"


def _connections_drop_to_zero(srv: ServerThread, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.connections == 0:
            return True
        time.sleep(0.05)
    return False


def test_wrk_pipelined(load_server: ServerThread, tmp_path: Path) -> None:
    script = tmp_path / "pipeline.lua"
    script.write_text(PIPELINE_LUA % 16)
    r = run_wrk(load_server.url + "/hello/World", "-s", str(script), duration=3)
    assert r.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}, r.output
    assert r.non_2xx is None, r.output
    assert r.requests > 1000, r.output
    assert _connections_drop_to_zero(load_server), "connections left open after wrk exited"
