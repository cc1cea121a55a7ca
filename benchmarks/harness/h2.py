"""The HTTP/2 group: squall (seed app and raw ASGI), hypercorn, granian and uvicorn under h2load.

Cleartext HTTP/2 with prior knowledge (h2c: the client opens with the HTTP/2 preface, no
Upgrade), on the hello route. The server runs on core 0, h2load (Debian's nghttp2-client, one
thread) on core 1. Two loads: 64 connections with 10 concurrent streams each, and one connection
with 100. Each is a warm-up run of the same load, then a fixed-duration run (``h2load -D``) whose
per-request log (``--log-file``) gives p50 and p99 (h2load itself prints only min, max, mean and
sd); the server's CPU time over that run divided by the requests h2load counted gives CPU per
request. A server must first answer hello over HTTP/2 (httpx with prior knowledge).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import time
from argparse import Namespace
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.multi import children_cpu
from harness.procs import Server, cpu_times, free_port, pinned
from harness.servers import PY, SERVERS_DIR, Spec, granian, squall_asgi

if TYPE_CHECKING:
    from pathlib import Path

    from harness.report import ServerResult

H2LOAD = shutil.which("h2load")
INSTALL = "apt-get install nghttp2-client"
PATH = "/World"
ANSWER = "Hello, World!"
BUSY_CLIENT = 0.9  # h2load's share of its core above which the figure may be the client's limit


@dataclass(frozen=True)
class H2Scenario:
    """``connections`` HTTP/2 connections, each keeping ``streams`` requests in flight."""

    name: str
    header: str
    connections: int
    streams: int


H2_SCENARIOS = (
    H2Scenario("h2_64x10", "64x10", 64, 10),
    H2Scenario("h2_1x100", "1x100", 1, 100),
)
QUICK_H2_SCENARIOS = ("h2_64x10",)

# The probe speaks HTTP/2 through httpx (h2 underneath), so the harness needs both as well.
PROBE_NEEDS = ("httpx", "h2")
H2_SPECS = (
    Spec(
        "h2-squall",
        "squall (seed app), HTTP/2",
        (PY, "squall_seed.py", "{port}", "--http2"),  # web.run_app(..., http2=True)
        ("squall", "uvloop", *PROBE_NEEDS),
        idle=False,
    ),
    Spec(
        "h2-squall-asgi",
        "squall raw ASGI, HTTP/2",
        (*squall_asgi("asgi_raw:app"), "--http2"),
        ("squall", "uvloop", *PROBE_NEEDS),
        idle=False,
    ),
    Spec(
        "h2-hypercorn",
        "hypercorn raw ASGI (h2)",
        # h2c prior knowledge is served on the plain bind with no option; one worker process
        # (under hypercorn's supervisor), uvloop as for the others, no access log by default.
        (
            *(PY, "-m", "hypercorn", "asgi_raw:app", "--bind", "127.0.0.1:{port}"),
            *("--workers", "1", "--worker-class", "uvloop", "--keep-alive", "75"),
            *("--log-level", "warning"),
        ),
        ("hypercorn", "uvloop", *PROBE_NEEDS),
        idle=False,
    ),
    Spec(
        "h2-granian",
        "granian raw ASGI (--http 2)",
        granian("asgi_raw:app", http="2"),
        ("granian", "uvloop", *PROBE_NEEDS),
        idle=False,
    ),
    Spec(
        "h2-uvicorn",
        "uvicorn raw ASGI (--http zttp --http2)",
        # uvicorn's HTTP/2 (0.55+) needs its zttp protocol; it sniffs the preface in cleartext.
        (
            *(PY, "-m", "uvicorn", "asgi_raw:app", "--http", "zttp", "--http2"),
            *("--loop", "uvloop", "--no-access-log", "--log-level", "warning"),
            *("--timeout-keep-alive", "75", "--host", "127.0.0.1", "--port", "{port}"),
        ),
        ("uvicorn", "zttp", "uvloop", *PROBE_NEEDS),
        idle=False,
    ),
)


def missing_client() -> str | None:
    """Why no HTTP/2 server can be measured here, or None if h2load is installed."""
    return None if H2LOAD else f"h2load is not installed ({INSTALL})"


def _probe(port: int) -> str | None:
    """GET hello over HTTP/2 (prior knowledge); None if the answer is right, else what's wrong."""
    import httpx  # imported here: only the HTTP/2 group needs it (PROBE_NEEDS)

    url = f"http://127.0.0.1:{port}{PATH}"
    try:
        with httpx.Client(http1=False, http2=True, timeout=10) as client:
            resp = client.get(url)
    except httpx.HTTPError as exc:
        return f"HTTP/2 GET {PATH} failed: {exc!r}"
    if resp.http_version != "HTTP/2":
        return f"GET {PATH} was answered in {resp.http_version}"
    if resp.status_code != 200 or resp.text != ANSWER:
        return f"HTTP/2 GET {PATH} answered {resp.status_code} {resp.content[:40]!r}"
    return None


def check(port: int, retry_for: float = 0.0) -> str | None:
    """The HTTP/2 hello check, retried for ``retry_for`` s (a server may accept before serving)."""
    deadline = time.monotonic() + retry_for
    while (problem := _probe(port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return problem


@dataclass(frozen=True)
class H2loadResult:
    """What one h2load run measured (its main phase)."""

    done: int
    ok_2xx: int
    rps: float
    failed: int  # all that failed: errored (stream or connection errors), timed out, others
    errored: int
    protocol: str | None


def parse(output: str) -> H2loadResult | None:
    """Parse h2load's report; None when it has no request count."""
    rps = re.search(r"^finished in [\d.]+\w*, ([\d.]+) req/s", output, re.M)
    counts = re.search(
        r"^requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        output,
        re.M,
    )
    if not rps or not counts:
        return None
    status = re.search(r"^status codes: (\d+) 2xx", output, re.M)
    protocol = re.search(r"^Application protocol: (\S+)", output, re.M)
    done, failed, errored, _ = map(int, counts.groups())
    return H2loadResult(
        done=done,
        ok_2xx=int(status[1]) if status else 0,
        rps=float(rps[1]),
        failed=failed,
        errored=errored,
        protocol=protocol[1] if protocol else None,
    )


def latencies_ms(log: Path) -> tuple[float, float] | None:
    """p50 and p99 (nearest rank) in ms from h2load's ``--log-file``: one line per request of
    the main phase, tab-separated: start time (us since the epoch), status, duration (us)."""
    try:
        lines = log.read_bytes().splitlines()
    except OSError:
        return None
    times = sorted(int(line.rsplit(b"\t", 1)[1]) for line in lines if line.count(b"\t") == 2)
    if not times:
        return None

    def rank(q: float) -> float:
        return times[max(math.ceil(q * len(times)) - 1, 0)] / 1e3

    return rank(0.5), rank(0.99)


def command(sc: H2Scenario, url: str, seconds: float, log: Path | None = None) -> list[str]:
    """h2load on core 1, one thread, ``sc``'s load, for ``seconds`` (whole milliseconds)."""
    argv = [H2LOAD or "h2load", "-t1", f"-c{sc.connections}", f"-m{sc.streams}"]
    argv += ["-D", f"{round(seconds * 1000)}ms", *(["--log-file", str(log)] if log else []), url]
    return pinned(1, argv)


def bench_server(spec: Spec, opts: Namespace, result: ServerResult, logs: Path) -> None:
    """One round for one HTTP/2 server: start it, check it, run each h2load scenario, stop it.

    Quick mode only starts and checks the servers it does not measure (``spec.quick``).
    """
    port = free_port()
    server = Server(spec.command(port), SERVERS_DIR, port, logs / f"{spec.name}.log")
    try:
        if problem := server.wait_ready() or check(port, retry_for=10.0):
            result.note(f"skipped: {problem}")
            result.skipped = True
            return
        result.add("rss_mib", server.rss() / 2**20)
        if opts.quick and not spec.quick:
            return
        chosen = opts.scenarios.split(",")
        cpu = [
            run_scenario(sc, server, opts, result, logs / f"{spec.name}-{sc.name}.tsv")
            for sc in H2_SCENARIOS
            if sc.name in chosen
        ]
        if measured := [c for c in cpu if c is not None]:
            result.add("h2load_cpu", max(measured))
    finally:
        server.stop()


def run_scenario(
    sc: H2Scenario, server: Server, opts: Namespace, result: ServerResult, log: Path
) -> float | None:
    """Warm up, run h2load for the duration; record req/s, p50/p99 and the server's CPU per
    request; return h2load's share of its core, if it ran."""
    url = f"http://127.0.0.1:{server.port}{PATH}"
    if opts.warmup > 0:
        warm = command(sc, url, opts.warmup)
        subprocess.run(warm, capture_output=True, timeout=opts.warmup + 30, check=False)
    log.unlink(missing_ok=True)  # h2load appends to its log file
    argv = command(sc, url, opts.duration, log)
    user0, kernel0 = cpu_times(server.proc.pid)
    client0, started = children_cpu(), time.monotonic()
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=opts.duration + 60, check=False
        )
    except subprocess.TimeoutExpired:
        result.note(f"{sc.name}: h2load timed out")
        return None
    seconds = time.monotonic() - started
    client = (children_cpu() - client0) / seconds
    user, kernel = cpu_times(server.proc.pid)
    user, kernel = user - user0, kernel - kernel0
    output = done.stdout + done.stderr
    got = parse(output)
    if got is None or not got.done:
        result.note(f"{sc.name}: h2load failed: {output.strip()[-200:]!r}")
        return None
    if got.protocol != "h2c":
        result.note(f"{sc.name}: h2load spoke {got.protocol}, not h2c")
    if got.errored:
        # A stream or connection error: h2load does not reopen a closed connection in a timed
        # run, so its req/s would count a dead connection's share of the run as no requests.
        result.note(
            f"{sc.name}: {got.errored} requests errored (a stream reset or a connection "
            f"closed by the server; its log: {server.log_tail(1)}), not recorded"
        )
        log.unlink(missing_ok=True)
        return client
    if got.failed or got.ok_2xx < got.done:
        result.note(f"{sc.name}: {got.failed} failed, {got.done - got.ok_2xx} non-2xx")
    result.add(f"{sc.name}_rps", got.rps)
    if (lat := latencies_ms(log)) is not None:
        result.add(f"{sc.name}_p50_ms", lat[0])
        result.add(f"{sc.name}_p99_ms", lat[1])
    result.add(f"{sc.name}_user_us", user / got.done * 1e6)
    result.add(f"{sc.name}_kernel_us", kernel / got.done * 1e6)
    log.unlink(missing_ok=True)
    if client > BUSY_CLIENT:
        result.note(f"{sc.name}: h2load used {client:.0%} of its core (near its limit)")
    return client


def version() -> str:
    if not H2LOAD:
        return "missing"
    done = subprocess.run(
        [H2LOAD, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return done.stdout.strip().removeprefix("h2load ") or "unknown"
