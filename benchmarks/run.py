"""Benchmark squall against aiohttp, uvicorn, granian, uvicorn + Starlette and the floor.

Each server runs pinned to core 0, wrk (one thread, 64 connections) pinned to core 1. For every
round, every server is started afresh, in turn: the idle-connection test first, then each wrk
scenario after a warm-up. Medians over the rounds are printed as tables (figures, ratio to aiohttp,
ratio to the floor; squall against uvicorn and granian on the same ASGI apps) and written to
results/NAME.json and results/NAME.md. The WebSocket servers take their turns the same way, with
ws_load.py (pinned to core 1) as the load generator (harness/ws.py); the 2-worker servers too, but
with servers and wrk sharing both cores (harness/multi.py); the HTTP/2 servers too, with h2load
(pinned to core 1) as the load generator (harness/h2.py). See README.md; docs/benchmarks.md
shows the latest full run.

Usage: ``python benchmarks/run.py [--quick] [--only-h2] [--servers a,b] [--scenarios a,b] ...``
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import h2, idle, multi, publish, report, wrk, ws
from harness.h2 import H2_SCENARIOS, H2_SPECS, QUICK_H2_SCENARIOS
from harness.procs import PINNING, Server, cpu_busy, cpu_times, free_port, raise_nofile
from harness.servers import ECHO_SIZE, PLUGIN_SPECS, SERVERS_DIR, SPECS, Spec, check, ready
from harness.ws import QUICK_WS_SCENARIOS, WS_SCENARIOS, WS_SPECS

HERE = Path(__file__).resolve().parent
LUA = HERE / "lua"
PIPELINE_DEPTH = 16
BUSY = 0.15  # machine-wide CPU use, with no server running, above which figures are suspect


@dataclass(frozen=True)
class Scenario:
    """One wrk run: the path to load and an optional Lua script with its arguments."""

    name: str
    path: str
    script: str | None = None
    args: tuple[str, ...] = ()


SCENARIOS = (
    Scenario("hello", "/World"),  # also gives p50 and p99
    Scenario("names", "/World", "names.lua", ("100000",)),  # hello, a new name each request
    Scenario("json", "/json"),
    Scenario("pipelined", "/World", "pipeline.lua", (str(PIPELINE_DEPTH),)),
    Scenario("echo", "/echo", "echo.lua"),
)
QUICK_SCENARIOS = ("hello", "pipelined")


def names(items: tuple[Spec | Scenario | ws.WsScenario | h2.H2Scenario, ...]) -> str:
    return ",".join(item.name for item in items)


ALL_SPECS = SPECS + PLUGIN_SPECS + multi.WORKER_SPECS + WS_SPECS + H2_SPECS
# Measured only when --servers names them.
DEFAULT_SPECS = tuple(s for s in ALL_SPECS if s not in PLUGIN_SPECS)
# Quick mode leaves out the 2-worker servers but one, which it only starts and checks.
QUICK_SPECS = tuple(
    s for s in DEFAULT_SPECS if s not in multi.WORKER_SPECS or s.name in multi.QUICK_WORKER_SPECS
)
ALL_SCENARIOS = SCENARIOS + WS_SCENARIOS + H2_SCENARIOS
QUICK_ALL = QUICK_SCENARIOS + QUICK_WS_SCENARIOS + QUICK_H2_SCENARIOS


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: 1 round of 2 s, few tests")
    parser.add_argument("--rounds", type=int, help="rounds over all servers (3; quick 1)")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (10; quick 2)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per run (2; quick 0.5)")
    parser.add_argument("--idle", type=int, help="idle connections, 0 to skip (10000; quick 1000)")
    parser.add_argument("--ws-duration", type=float, help="seconds per WebSocket run (5; quick .5)")
    parser.add_argument("--ws-warmup", type=float, help="WebSocket warm-up seconds (1; quick 0.2)")
    parser.add_argument("--ws-idle", type=int, help="idle WebSockets, 0 to skip (10000; quick 0)")
    parser.add_argument("--servers", help="comma-separated subset of: " + names(ALL_SPECS))
    parser.add_argument("--scenarios", help="comma-separated subset of: " + names(ALL_SCENARIOS))
    parser.add_argument(
        "--only-h2",
        action="store_true",
        help="only the HTTP/2 servers and scenarios (h2load); --servers/--scenarios narrow it",
    )
    parser.add_argument("--out", help="results/OUT.json and .md (latest; quick or partial)")
    opts = parser.parse_args(argv)
    full = not opts.quick
    subset = opts.servers is not None or opts.scenarios is not None or opts.only_h2
    defaults = {
        "rounds": 3 if full else 1,
        "duration": 10 if full else 2,
        "warmup": 2.0 if full else 0.5,
        "idle": 10_000 if full else 1_000,
        "ws_duration": 5.0 if full else 0.5,
        "ws_warmup": 1.0 if full else 0.2,
        "ws_idle": 10_000 if full else 0,
        "out": "quick" if opts.quick else "partial" if subset else "latest",
        "servers": names(DEFAULT_SPECS if full else QUICK_SPECS),
        "scenarios": names(ALL_SCENARIOS) if full else ",".join(QUICK_ALL),
    }
    if opts.only_h2:
        defaults["servers"] = names(H2_SPECS)
        defaults["scenarios"] = names(H2_SCENARIOS) if full else ",".join(QUICK_H2_SCENARIOS)
    for key, value in defaults.items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    for key, known in (("servers", ALL_SPECS), ("scenarios", ALL_SCENARIOS)):
        if unknown := set(getattr(opts, key).split(",")) - set(names(known).split(",")):
            parser.error(f"unknown {key}: {', '.join(sorted(unknown))}")
    return opts


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bench_server(
    spec: Spec, opts: argparse.Namespace, result: report.ServerResult, logs: Path
) -> None:
    """One round for one server: start it, check it, measure it, stop it."""
    port = free_port()
    server = Server(spec.command(port), SERVERS_DIR, port, logs / f"{spec.name}.log")
    try:
        if not ready(server, port, result):
            return
        measured = not opts.quick or spec.quick
        if opts.idle and spec.idle and measured:
            measure_idle(server, opts, result)
        else:
            result.add("rss_mib", server.rss() / 2**20)
        # cheap, so always: the smoke test checks them (those of the scenarios it serves)
        served = tuple(n for n in ("json", "echo") if not spec.only or n in spec.only)
        problems = check(port, served)
        for name, problem in problems.items():
            result.note(f"wrong answer, {name} not measured: {problem}")
        chosen = opts.scenarios.split(",")
        for sc in SCENARIOS:
            wanted = sc.name in chosen and (not spec.only or sc.name in spec.only)
            if wanted and measured and sc.name not in problems:
                run_scenario(sc, server, opts, result)
    finally:
        server.stop()


def measure_idle(server: Server, opts: argparse.Namespace, result: report.ServerResult) -> None:
    """Base RSS, and RSS growth per idle keep-alive connection."""
    hold = 3.0 if opts.duration >= 5 else 1.5
    try:
        held = idle.measure(server, opts.idle, hold=hold, settle=1.0)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        result.note(f"idle test failed: {exc}")
        result.add("rss_mib", server.rss() / 2**20)
        return
    log(f"  idle: {held.opened} connections opened in {held.seconds_to_open} s")
    result.add("rss_mib", held.rss_before / 2**20)
    result.add("idle_bytes_per_conn", held.bytes_per_conn)
    if held.opened < opts.idle or held.still_open < held.opened:
        result.note(f"idle: {held.opened}/{opts.idle} opened, {held.still_open} stayed open")


def run_scenario(
    sc: Scenario, server: Server, opts: argparse.Namespace, result: report.ServerResult
) -> None:
    url = f"http://127.0.0.1:{server.port}{sc.path}"
    script = LUA / sc.script if sc.script else None
    wrk.warm_up(url, opts.warmup, script, sc.args)
    user0, kernel0 = cpu_times(server.proc.pid)
    output = wrk.run(url, opts.duration, script, sc.args)
    user, kernel = cpu_times(server.proc.pid)
    user, kernel = user - user0, kernel - kernel0
    got = wrk.parse(output)
    if got is None:
        result.note(f"{sc.name}: wrk failed: {output.strip()[-200:]!r}")
        return
    if got.socket_errors or got.non_2xx:
        result.note(f"{sc.name}: {got.socket_errors} socket errors, {got.non_2xx} non-2xx")
    if sc.name == "echo":
        result.add("echo_mbps", got.rps * ECHO_SIZE / 1e6)
    else:
        result.add(f"{sc.name}_rps", got.rps)
    if sc.name == "hello":
        result.add("p50_ms", got.p50_ms)
        result.add("p99_ms", got.p99_ms)
        # The server's CPU per request, in user space and in the kernel: where its time goes
        # (the kernel's share is about the same for every server; the rest is its own code).
        if got.requests:
            result.add("hello_user_us", user / got.requests * 1e6)
            result.add("hello_kernel_us", kernel / got.requests * 1e6)


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    chosen = set(opts.scenarios.split(","))
    wrk_needed = bool(chosen - set(names(H2_SCENARIOS).split(",")))
    if wrk_needed and not wrk.WRK:
        log("wrk is not installed (apt-get install wrk); nothing to measure")
        return 1
    if not PINNING:
        log("note: taskset or a second core is missing; servers and wrk run unpinned")
    raise_nofile(max(opts.idle, opts.ws_idle, 1000) + 1024)  # servers inherit it
    wanted = opts.servers.split(",")
    specs = [s for s in SPECS + PLUGIN_SPECS + multi.WORKER_SPECS if s.name in wanted]
    if not wrk_needed:
        specs = []  # only HTTP/2 scenarios: the wrk servers would only be started and checked
    if not chosen & set(names(WS_SCENARIOS).split(",")):
        log("no WebSocket scenario chosen: the WebSocket servers are left out")
    else:
        specs += [s for s in WS_SPECS if s.name in wanted]
    if not chosen & set(names(H2_SCENARIOS).split(",")):
        log("no HTTP/2 scenario chosen: the HTTP/2 servers are left out")
    else:
        specs += [s for s in H2_SPECS if s.name in wanted]
    groups = (
        {s.name: "ws" for s in WS_SPECS}
        | {s.name: "workers" for s in multi.WORKER_SPECS}
        | {s.name: "h2" for s in H2_SPECS}
    )
    results = {
        s.name: report.ServerResult(s.name, s.label, groups.get(s.name, "http")) for s in specs
    }
    for spec in specs:
        if missing := spec.missing():
            results[spec.name].skipped = True
            results[spec.name].note(f"skipped: not installed: {', '.join(missing)}")
        elif results[spec.name].group == "h2" and (why := h2.missing_client()):
            results[spec.name].skipped = True
            results[spec.name].note(f"skipped: {why}")
    if (why := h2.missing_client()) and any(s in H2_SPECS for s in specs):
        log(f"HTTP/2 section skipped: {why}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="squall-bench-") as logs:
        for round_no in range(opts.rounds):
            order = specs if round_no % 2 == 0 else specs[::-1]
            for spec in order:
                if results[spec.name].skipped:
                    continue
                log(f"round {round_no + 1}/{opts.rounds}: {spec.label}")
                result = results[spec.name]
                if (busy := cpu_busy()) > BUSY:
                    result.note(
                        f"round {round_no + 1}: other processes kept the CPUs {busy:.0%} busy "
                        "beforehand"
                    )
                benches = {
                    "ws": ws.bench_server,
                    "workers": multi.bench_server,
                    "h2": h2.bench_server,
                }
                bench = benches.get(result.group, bench_server)
                bench(spec, opts, result, Path(logs))
    settings = {
        "mode": "quick" if opts.quick else "full",
        "rounds": opts.rounds,
        "duration": opts.duration,
        "warmup": opts.warmup,
        "connections": wrk.CONNECTIONS,
        "pipeline_depth": PIPELINE_DEPTH,
        "echo_bytes": ECHO_SIZE,
        "idle_connections": opts.idle,
        "ws_duration": opts.ws_duration,
        "ws_warmup": opts.ws_warmup,
        "ws_idle_connections": opts.ws_idle,
        "h2_loads": {sc.name: [sc.connections, sc.streams] for sc in H2_SCENARIOS},
        "scenarios": opts.scenarios.split(","),
        "pinned": PINNING,
        "workers": {"count": multi.WORKERS, "cores": multi.CORES},
        "seconds_taken": round(time.monotonic() - started, 1),
    }
    data = report.record(list(results.values()), settings, HERE.parent)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"{opts.out}.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / f"{opts.out}.md").write_text(report.markdown(data))
    print(report.text(data), end="")
    log(f"wrote {out / opts.out}.json and .md in {settings['seconds_taken']} s")
    if opts.out == "latest":  # a full run: the pages show it (quick and partial runs do not)
        for path in publish.publish(data):
            log(f"wrote {path.relative_to(HERE.parent)}")
    return 0 if any(r.samples for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
