"""Shared listening socket vs SO_REUSEPORT under ``squall --workers N`` (docs/deployment.md).

For each mode: how wrk's connections and requests spread over the workers (keep-alive, and one
connection per request), and what wrk sees when the workers are replaced (SIGHUP) or one is
killed (SIGKILL) in the middle of a run. Needs wrk on PATH.

    .venv/bin/python benchmarks/workers.py [--workers 2] [--seconds 4] [--connections 64]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

APP = """
import os, sys
from squall import web

served = 0
peers = set()

async def hello(request):
    global served
    served += 1
    peers.add(request.transport.get_extra_info("peername"))
    return web.Response(text="hello")

async def report(app):
    print(f"served {os.getpid()} {served} {len(peers)}", file=sys.stderr, flush=True)

app = web.Application()
app.router.add_get("/", hello)
app.on_cleanup.append(report)
"""

READY = re.compile(r"squall: serving (\S+) ")


def start(app_dir: str, workers: int, reuse_port: bool) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "squall", "app:app", "--port", "0", "--no-access-log"]
    args += ["--workers", str(workers), "--timeout-graceful-shutdown", "5"]
    if reuse_port:
        args.append("--reuse-port")
    proc = subprocess.Popen(
        args, cwd=app_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    match = READY.search(proc.stdout.readline())
    if match is None:
        proc.kill()
        raise SystemExit(f"no ready line: {proc.communicate()[1]}")
    return proc, match.group(1)


def wrk(url: str, seconds: float, connections: int, close: bool) -> dict[str, int]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", url]
    if close:
        args[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30).stdout
    result = {"requests": int(re.search(r"(\d+) requests in", out).group(1))}  # type: ignore[union-attr]
    errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    for i, name in enumerate(("connect", "read", "write", "timeout"), 1):
        result[name] = int(errors.group(i)) if errors else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    return result


def stop(proc: subprocess.Popen[str]) -> list[tuple[int, int]]:
    """Stop the server; (requests, connections) of each worker."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return [(int(r), int(c)) for r, c in re.findall(r"served \d+ (\d+) (\d+)", err)]


def workers_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def run_mode(app_dir: str, ns: argparse.Namespace, reuse_port: bool) -> None:
    name = "SO_REUSEPORT" if reuse_port else "shared socket"
    for close in (False, True):
        proc, url = start(app_dir, ns.workers, reuse_port)
        try:
            result = wrk(url, ns.seconds, ns.connections, close)
        finally:
            counts = stop(proc)
        total = sum(r for r, _ in counts) or 1
        counts.sort(reverse=True)
        shares = " / ".join(f"{100 * r / total:.0f}%" for r, _ in counts)
        conns = " / ".join(str(c) for _, c in counts)
        kind = "new connection per request" if close else "keep-alive"
        rate = result["requests"] / ns.seconds
        line = f"{name:14} {kind:27} {rate:8.0f} req/s  requests {shares}"
        print(line if close else f"{line}  connections {conns}")
    for event in ("SIGHUP", "SIGKILL"):
        for close in (False, True):
            proc, url = start(app_dir, ns.workers, reuse_port)
            try:

                def act(proc: subprocess.Popen[str] = proc, event: str = event) -> None:
                    time.sleep(ns.seconds / 3)
                    if event == "SIGHUP":
                        proc.send_signal(signal.SIGHUP)
                    else:
                        os.kill(workers_of(proc.pid)[0], signal.SIGKILL)

                thread = threading.Thread(target=act)
                thread.start()
                result = wrk(url, ns.seconds, ns.connections, close)
                thread.join()
            finally:
                stop(proc)
            kind = "new connection per request" if close else "keep-alive"
            errors = ", ".join(
                f"{key} {result[key]}"
                for key in ("connect", "read", "write", "timeout", "non2xx")
                if result[key]
            )
            print(f"{name:14} {event:7} {kind:27} errors: {errors or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--only", choices=("shared", "reuse-port"))
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory() as app_dir:
        Path(app_dir, "app.py").write_text(textwrap.dedent(APP))
        for reuse_port in (False, True):
            if ns.only == ("shared" if reuse_port else "reuse-port"):
                continue
            run_mode(app_dir, ns, reuse_port)


if __name__ == "__main__":
    main()
