"""``squall --workers 2 --metrics-port P``: the supervisor's ``/metrics`` sums its workers, and
its counters never go back when workers are replaced (--max-requests, SIGHUP, a crash)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx

from .server_process import SquallProcess
from .test_metrics import samples, value

APP = """
import os
from squall import web


async def hello(request):
    return web.Response(text=str(os.getpid()))


app = web.Application()
app.router.add_get("/hello", hello)
"""

TOTAL = "squall_requests_total"
LABELS = {"method": "GET", "route": "/hello", "status": "2xx"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str) -> dict[Any, float]:
    response = httpx.get(url, timeout=10.0)
    assert response.status_code == 200
    return samples(response.text)


def until(url: str, check: Any, timeout: float = 20.0) -> dict[Any, float]:
    deadline = time.monotonic() + timeout
    while True:
        found = scrape(url)
        if check(found):
            return found
        assert time.monotonic() < deadline, f"never true; last scrape: {found}"
        time.sleep(0.1)


def test_workers_summed_and_never_backwards(tmp_path: Path) -> None:
    (tmp_path / "mapp.py").write_text(APP)
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    args = ["mapp:app", "--port", "0", "--workers", "2", "--metrics-port", str(port)]
    args += ["--max-requests", "40", "--max-requests-jitter", "0", "--no-access-log"]
    with SquallProcess(tmp_path, *args) as proc:
        url = proc.wait_ready()
        sent = 0
        answered_by: set[str] = set()
        last = 0.0
        # a new connection per request, so that both workers answer; scrape as they are replaced
        with httpx.Client(base_url=url, headers={"Connection": "close"}, timeout=10.0) as client:
            for _ in range(5):
                for _ in range(30):
                    response = client.get("/hello")
                    assert response.status_code == 200
                    answered_by.add(response.text)
                    sent += 1
                found = scrape(metrics)
                count = value(found, TOTAL, **LABELS)
                assert count == sent  # every worker's, the retired ones' included
                assert count >= last
                last = count
        # the workers past 40 requests are replaced (once their replacements are ready)
        first = set(answered_by)
        found = until(
            metrics,
            lambda f: (
                value(f, "squall_worker_restarts_total", reason="max_requests") >= 1
                and not {str(pid) for pid in proc.workers()} >= first
            ),
        )
        assert value(found, TOTAL, **LABELS) == sent
        with httpx.Client(base_url=url, headers={"Connection": "close"}, timeout=10.0) as client:
            # (the kernel hands each connection to whichever worker accepts first)
            while sent < 400 and not answered_by - first:
                response = client.get("/hello")
                assert response.status_code == 200
                answered_by.add(response.text)
                sent += 1
        assert answered_by - first  # a replacement answered
        found = scrape(metrics)
        assert value(found, TOTAL, **LABELS) == sent
        assert value(found, "squall_request_duration_seconds_count", route="/hello") == sent
        assert value(found, "squall_workers") >= 2
        assert value(found, "squall_scrape_missing_workers") == 0
        pids = [
            int(dict(k[1])["worker"]) for k in found if k[0] == "squall_worker_connections_open"
        ]
        assert len(pids) >= 2
        rss = [v for k, v in found.items() if k[0] == "squall_worker_resident_memory_bytes"]
        assert len(rss) >= 2 and all(v > 1_000_000 for v in rss)

        # SIGHUP: every worker replaced, one by one; nothing of their counts lost. Once the
        # --max-requests rotation above has settled (two workers, no replacement starting or
        # retiring), so that SIGHUP queues exactly those two.
        pids = proc.wait_workers(2)
        until(metrics, lambda f: value(f, "squall_workers") == 2)
        proc.send_signal(signal.SIGHUP)
        found = until(
            metrics,
            lambda f: (
                value(f, "squall_worker_restarts_total", reason="reload") == 2
                and not set(proc.workers()) & set(pids)
            ),
        )
        assert value(found, TOTAL, **LABELS) == sent

        # a crash: what the worker reported last (this scrape) stays in the sums; the victim is
        # a serving worker (a retiring one killed is a stop, not a crash)
        victim = proc.wait_workers(2)[0]
        scrape(metrics)
        os.kill(victim, signal.SIGKILL)
        found = until(
            metrics, lambda f: value(f, "squall_worker_restarts_total", reason="crash") == 1
        )
        assert value(found, TOTAL, **LABELS) == sent
        assert value(found, "squall_worker_restarts_total", reason="memory") == 0


def test_metrics_port_in_use(tmp_path: Path) -> None:
    """The supervisor cannot bind the metrics port: one line, and no worker is started."""
    (tmp_path / "mapp.py").write_text(APP)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["mapp:app", "--port", "0", "--workers", "2", "--metrics-port", str(port)]
        with SquallProcess(tmp_path, *args) as proc:
            assert proc.wait() == 1
            assert f"squall: cannot serve metrics on 127.0.0.1:{port}: Address already in use" in (
                proc.stderr()
            )


def test_lifetime_restarts_counted(tmp_path: Path) -> None:
    """--max-worker-lifetime: each replacement counts as restarts{reason="lifetime"}, and the
    requests the replaced worker answered stay in the sums."""
    (tmp_path / "mapp.py").write_text(APP)
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    args = ["mapp:app", "--port", "0", "--workers", "2", "--metrics-port", str(port)]
    args += ["--max-worker-lifetime", "2", "--no-access-log"]
    with SquallProcess(tmp_path, *args) as proc:
        url = proc.wait_ready()
        with httpx.Client(base_url=url, headers={"Connection": "close"}, timeout=10.0) as client:
            for _ in range(10):
                assert client.get("/hello").status_code == 200
        found = until(
            metrics, lambda f: value(f, "squall_worker_restarts_total", reason="lifetime") >= 2
        )
        assert value(found, TOTAL, **LABELS) == 10
        assert value(found, "squall_worker_restarts_total", reason="crash") == 0
