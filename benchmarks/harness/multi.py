"""The 2-worker group: squall, aiohttp, uvicorn and granian, each running two worker processes.

Two workers on a two-core machine need both cores, so here nothing is pinned to one core: the
servers run on cores 0 and 1, and so does wrk, which has nowhere else to go and competes with the
workers for CPU. The figures show how the servers stand against each other under the same
conditions, not how they scale from one worker to two. Each hello run also records what the
sharing looked like: the CPU the server's processes used (in cores), wrk's share of a core, and
the busiest worker's share of wrk's connections (sampled half-way through the run).
"""

from __future__ import annotations

import os
import resource
import threading
import time
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING

from harness import wrk
from harness.procs import Server, cpu_times, free_port, tree_pids
from harness.servers import PY, SERVERS_DIR, Spec, check, granian, ready

if TYPE_CHECKING:
    from harness.report import ServerResult

WORKERS = 2
CORES = "0,1"  # for the servers and for wrk
SCENARIOS = (("hello", "/World"), ("json", "/json"))  # name, path: a subset of run.py's
_N = str(WORKERS)
_ONLY = tuple(name for name, _ in SCENARIOS)

WORKER_SPECS = tuple(
    Spec(name, label, argv, needs, only=_ONLY, idle=False, quick=False)
    for name, label, argv, needs in (
        (
            "squall-2w",
            "squall (seed app), 2 workers",
            (
                *(PY, "-m", "squall", "squall_seed:make_app", "--factory", "--workers", _N),
                *("--host", "127.0.0.1", "--port", "{port}", "--no-access-log"),
                *("--log-level", "warning"),
            ),
            ("squall", "uvloop"),
        ),
        (
            "aiohttp-2w",
            "aiohttp (seed app, gunicorn), 2 workers",
            (
                *(PY, "-m", "gunicorn", "aiohttp_seed:make_app()", "--workers", _N),
                *("--worker-class", "aiohttp.worker.GunicornUVLoopWebWorker"),
                # aiohttp's default keep-alive (gunicorn's is 2 s); no access log by default
                *("--bind", "127.0.0.1:{port}", "--keep-alive", "75", "--log-level", "warning"),
            ),
            ("gunicorn", "aiohttp", "uvloop"),
        ),
        (
            "uvicorn-2w",
            "uvicorn raw ASGI, 2 workers",
            (
                *(PY, "-m", "uvicorn", "asgi_raw:app", "--workers", _N, "--http", "httptools"),
                *("--loop", "uvloop", "--no-access-log", "--log-level", "warning"),
                # aiohttp's and squall's default, as for the one-worker uvicorn row
                *("--timeout-keep-alive", "75", "--host", "127.0.0.1", "--port", "{port}"),
            ),
            ("uvicorn", "httptools", "uvloop"),
        ),
        (
            "granian-2w",
            "granian raw ASGI, 2 workers",
            granian("asgi_raw:app", WORKERS),
            ("granian", "uvloop"),
        ),
    )
)
QUICK_WORKER_SPECS = ("squall-2w",)  # quick mode starts and checks this one, skips the others


def bench_server(spec: Spec, opts: Namespace, result: ServerResult, logs: Path) -> None:
    """One round for one server: start it on both cores, check it, measure it, stop it.

    Quick mode only starts and checks it.
    """
    port = free_port()
    server = Server(spec.command(port), SERVERS_DIR, port, logs / f"{spec.name}.log", CORES)
    try:
        if not ready(server, port, result):
            return
        result.add("rss_mib", server.rss() / 2**20)
        problems = check(port, ("json", "echo"))
        for name, problem in problems.items():
            result.note(f"wrong answer, {name} not measured: {problem}")
        if opts.quick:
            return
        chosen = opts.scenarios.split(",")
        for name, path in SCENARIOS:
            if name in chosen and name not in problems:
                _run(name, path, server, opts, result)
    finally:
        server.stop()


def _run(name: str, path: str, server: Server, opts: Namespace, result: ServerResult) -> None:
    url = f"http://127.0.0.1:{server.port}{path}"
    wrk.warm_up(url, opts.warmup, None, (), CORES)
    counts: list[list[int]] = []
    sampler = threading.Timer(
        opts.duration / 2, lambda: counts.append(connections(server.proc.pid, server.port))
    )
    server_cpu, wrk_cpu, started = sum(cpu_times(server.proc.pid)), children_cpu(), time.monotonic()
    sampler.start()
    output = wrk.run(url, opts.duration, cores=CORES)
    sampler.join()
    seconds = time.monotonic() - started
    server_cpu = sum(cpu_times(server.proc.pid)) - server_cpu
    wrk_cpu = children_cpu() - wrk_cpu
    got = wrk.parse(output)
    if got is None:
        result.note(f"{name}: wrk failed: {output.strip()[-200:]!r}")
        return
    if got.socket_errors or got.non_2xx:
        result.note(f"{name}: {got.socket_errors} socket errors, {got.non_2xx} non-2xx")
    result.add(f"{name}_rps", got.rps)
    if name != "hello":
        return
    result.add("p50_ms", got.p50_ms)
    result.add("p99_ms", got.p99_ms)
    result.add("server_cpu", server_cpu / seconds)
    result.add("wrk_cpu", wrk_cpu / seconds)
    if counts and sum(counts[0]):
        result.add("busiest_worker", max(counts[0]) / sum(counts[0]))


def children_cpu() -> float:
    """User + system CPU seconds of this process's waited-for children (wrk, once it is done)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def connections(root: int, port: int) -> list[int]:
    """Established connections to ``port`` held by each process of ``root``'s tree that has any."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    counts = []
    for pid in tree_pids(root):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            held = sum(_link(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds)
        except OSError:
            continue
        if held:
            counts.append(held)
    return counts


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # closed meanwhile
        return ""
