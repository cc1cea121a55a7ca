"""``--max-worker-memory``: a supervised worker whose RSS grows past the bound is replaced
gracefully (new worker first, then the old one drained), with no request lost."""

from __future__ import annotations

import concurrent.futures
import os
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from squall.cli import parse_config
from squall.server.supervisor import resident_memory

from .server_process import SquallProcess, run_load

LEAKY_APP = """
import os
from squall import web

kept = []

async def pid(request):
    return web.Response(text=str(os.getpid()))

async def leak(request):
    kept.append(b"\\x01" * (20 * 1024 * 1024))  # written, so resident
    return web.Response(text=str(os.getpid()))

app = web.Application()
app.add_routes([web.get("/", pid), web.get("/leak", leak)])
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "leaky.py").write_text(textwrap.dedent(LEAKY_APP))
    return tmp_path


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return str(resp.read().decode())


def test_leaking_worker_is_replaced_without_a_failed_request(app_dir: Path) -> None:
    args = ("leaky:app", "--port", "0", "--max-worker-memory", "200")
    with SquallProcess(app_dir, *args, "--worker-memory-interval", "0.2") as server:
        server.wait_ready()
        (first,) = server.wait_workers(1)
        fresh = resident_memory(first)
        assert fresh is not None and fresh < 150 * 1024 * 1024, fresh
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            # steady traffic on the side while the worker leaks and is replaced
            load = pool.submit(run_load, server.port, seconds=4.0, concurrency=4)
            answered_by = []
            for _ in range(20):
                answered_by.append(_get(server.port, "/leak"))
                time.sleep(0.1)
            tally = load.result()
        assert tally.errors == 0 and tally.refused == 0, tally
        assert tally.ok > 100, tally
        assert len(set(answered_by)) >= 2, answered_by  # leaks went to a new worker later
        assert str(first) in answered_by
        (now,) = server.wait_workers(1, exclude=[first])
        assert now != first
        stderr = server.stderr()
        assert f"Worker {first} uses" in stderr, stderr
        assert "over --max-worker-memory 200 MiB: replacing it" in stderr
        assert f"Worker {first} stopped (exit status 0)" in stderr  # drained, not killed
        status, _ = server.stop()
        assert status == 0


def test_worker_over_the_bound_from_the_start_is_not_replaced_again_and_again(
    app_dir: Path,
) -> None:
    args = ("leaky:app", "--port", "0", "--max-worker-memory", "1")
    with SquallProcess(app_dir, *args, "--worker-memory-interval", "0.1") as server:
        server.wait_ready()
        (first,) = server.wait_workers(1)
        time.sleep(1.0)
        assert server.workers() == [first]
        assert _get(server.port, "/") == str(first)
        stderr = server.stderr()
        assert "once started, over --max-worker-memory 1 MiB" in stderr, stderr
        assert "replacing it" not in stderr


def test_memory_options() -> None:
    config = parse_config(["m:app", "--max-worker-memory", "512"])
    assert config.max_worker_memory == 512 and config.worker_memory_interval == 5.0
    assert config.supervised  # one worker, but under a supervisor that watches it
    assert not parse_config(["m:app"]).supervised
    assert parse_config(["m:app", "--worker-memory-interval", "0.5"]).worker_memory_interval == 0.5
    for bad in (["--worker-memory-interval", "0"], ["--max-worker-memory", "-1"]):
        with pytest.raises(SystemExit):
            parse_config(["m:app", *bad])


def test_resident_memory_of_this_process() -> None:
    rss = resident_memory(os.getpid())
    assert rss is not None and 1024 * 1024 < rss < 64 * 1024 * 1024 * 1024
    assert resident_memory(2**22 + 12345) is None  # (beyond pid_max's default: no such process)
