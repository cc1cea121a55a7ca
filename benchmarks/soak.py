"""Soak test (issue #9): mixed load against one squall server process for a long time.

The server runs in a child process (this file with ``--serve``) so its memory and descriptors
are its own. The load, from this process: plain GETs, JSON, POST bodies of random sizes (echoed
and checked), streamed responses, WebSockets (messages echoed and checked), pipelined bursts, and
clients that vanish mid-head, mid-body or mid-response (some with a reset). Every second the
server's RSS and open descriptors are sampled. At the end: requests and errors per kind, the RSS
trend (least-squares slope after warm-up), and descriptors when idle before and after the load.

    make soak                      # 10 minutes
    SOAK_SECONDS=60 make soak      # shorter
    python benchmarks/soak.py --seconds 60 --json out.json

Exit status 1 if any request failed, descriptors leaked, or RSS grew by more than 5 MiB/minute
after warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

WARMUP_SHARE = 0.15  # the first part of the run is not used for the slope
SLOPE_LIMIT_KIB_PER_MIN = 5 * 1024


# -- the server --------------------------------------------------------------------------------


def serve(port: int) -> None:
    import uvloop

    from squall import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="Hello, World!")

    async def json_handler(request: web.Request) -> web.Response:
        return web.json_response({"message": "Hello, World!", "n": [1, 2, 3]})

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for i in range(int(request.query.get("n", "20"))):
            await resp.write(b"chunk %d\n" % i)
        await resp.write_eof()
        return resp

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 4 * 1024 * 1024
        await resp.prepare(request)
        block = b"x" * 65536
        try:
            for _ in range(64):
                await resp.write(block)
        except ConnectionResetError:  # the vanishing clients of the load
            pass
        return resp

    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == web.WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == web.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application(client_max_size=1024 * 1024)
    app.add_routes(
        [
            web.get("/hello", hello),
            web.get("/json", json_handler),
            web.post("/echo", echo),
            web.get("/stream", stream),
            web.get("/big", big),
            web.get("/ws", ws_echo),
        ]
    )

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None, header_timeout=5.0, body_timeout=5.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        print(f"PORT {runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())  # as run_app and the command line would run it


# -- the load ----------------------------------------------------------------------------------


@dataclass
class Stats:
    ok: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def fail(self, kind: str, what: object) -> None:
        self.errors[kind] += 1
        self.examples.setdefault(kind, repr(what)[:300])


async def _loop_until(stop: float, stats: Stats, kind: str, step: Any) -> None:
    while time.monotonic() < stop:
        try:
            await step()
            stats.ok[kind] += 1
        except Exception as exc:  # counted, shown in the report
            stats.fail(kind, exc)
            await asyncio.sleep(0.05)


async def run_load(port: int, seconds: float, stats: Stats) -> None:
    import aiohttp

    base = f"http://127.0.0.1:{port}"
    stop = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=30)
    session = aiohttp.ClientSession(timeout=timeout)
    rnd = random.Random(9)

    async def hello() -> None:
        async with session.get(base + "/hello") as resp:
            body = await resp.read()
            if resp.status != 200 or body != b"Hello, World!":
                raise AssertionError((resp.status, body[:80]))

    async def json_get() -> None:
        async with session.get(base + "/json") as resp:
            if (await resp.json())["n"] != [1, 2, 3]:
                raise AssertionError("json")

    async def post() -> None:
        body = rnd.randbytes(rnd.choice([0, 10, 1000, 65536, 300_000]))
        async with session.post(base + "/echo", data=body) as resp:
            got = await resp.read()
            if resp.status != 200 or got != body:
                raise AssertionError((resp.status, len(got), len(body)))

    async def stream() -> None:
        async with session.get(base + "/stream?n=50") as resp:
            got = await resp.read()
            if got != b"".join(b"chunk %d\n" % i for i in range(50)):
                raise AssertionError(got[:80])

    async def websocket() -> None:
        async with session.ws_connect(base + "/ws") as ws:
            for i in range(20):
                payload = rnd.randbytes(rnd.choice([1, 100, 5000]))
                await ws.send_bytes(payload)
                msg = await ws.receive()
                if msg.data != payload:
                    raise AssertionError(("ws", i))

    async def pipelined() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n" * 49)
            writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 10)
            if data.count(b"Hello, World!") != 50:
                raise AssertionError(data.count(b"Hello, World!"))
        finally:
            writer.close()

    async def vanish() -> None:
        """A client that goes away mid-head, mid-body or mid-response (some with a reset)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        how = rnd.randrange(4)
        if how == 0:
            writer.write(b"GET /hel")
        elif how == 1:
            writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
        else:
            writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            await reader.read(65536)
        await writer.drain()
        await asyncio.sleep(0.01)
        sock = writer.get_extra_info("socket")
        if how == 3 and sock is not None:  # reset, not FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()
        await asyncio.sleep(0.05)

    tasks = [
        *(_loop_until(stop, stats, "hello", hello) for _ in range(2)),
        _loop_until(stop, stats, "json", json_get),
        _loop_until(stop, stats, "post", post),
        _loop_until(stop, stats, "stream", stream),
        _loop_until(stop, stats, "websocket", websocket),
        _loop_until(stop, stats, "pipelined", pipelined),
        _loop_until(stop, stats, "vanish", vanish),
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        await session.close()


# -- sampling and the report -------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def sample(pid: int, stop: float, samples: list[tuple[float, int, int]]) -> None:
    start = time.monotonic()
    while time.monotonic() < stop:
        samples.append((time.monotonic() - start, rss_kib(pid), open_fds(pid)))
        await asyncio.sleep(1.0)


def slope_kib_per_min(points: list[tuple[float, int]]) -> float:
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_r = sum(r for _, r in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var:
        return 0.0
    cov = sum((t - mean_t) * (r - mean_r) for t, r in points)
    return cov / var * 60.0


def _at(samples: list[tuple[float, int, int]], when: float) -> int:
    """The RSS sampled closest to ``when`` seconds into the run."""
    return min(samples, key=lambda s: abs(s[0] - when))[1] if samples else 0


async def soak(seconds: float) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"server did not start: {line!r}")
        port = int(line.split()[1])
        pid = proc.pid
        await asyncio.sleep(0.5)
        idle_before = (rss_kib(pid), open_fds(pid))
        stats = Stats()
        samples: list[tuple[float, int, int]] = []
        stop = time.monotonic() + seconds
        started = time.monotonic()
        await asyncio.gather(run_load(port, seconds, stats), sample(pid, stop, samples))
        elapsed = time.monotonic() - started
        await asyncio.sleep(3.0)  # lingering closes end (2 s)
        idle_after = (rss_kib(pid), open_fds(pid))
    finally:
        proc.kill()
        proc.wait()
    steady = [(t, r) for t, r, _ in samples if t >= seconds * WARMUP_SHARE]
    rss = [r for _, r, _ in samples]
    return {
        "seconds": round(elapsed, 1),
        "requests": dict(stats.ok),
        "requests_total": sum(stats.ok.values()),
        "errors": dict(stats.errors),
        "error_examples": stats.examples,
        "rss_kib": {
            "idle_before": idle_before[0],
            "first_sample": rss[0] if rss else 0,
            "after_warmup": steady[0][1] if steady else 0,
            "peak": max(rss, default=0),
            "end_of_load": rss[-1] if rss else 0,
            "idle_after": idle_after[0],
        },
        "rss_kib_at_share_of_run": {
            f"{share:.0%}": _at(samples, seconds * share) for share in (0.1, 0.25, 0.5, 0.75, 1.0)
        },
        "rss_slope_kib_per_min_after_warmup": round(slope_kib_per_min(steady), 1),
        "rss_slope_kib_per_min_second_half": round(
            slope_kib_per_min([(t, r) for t, r in steady if t >= seconds / 2]), 1
        ),
        "fds": {
            "idle_before": idle_before[1],
            "peak": max((f for _, _, f in samples), default=0),
            "idle_after": idle_after[1],
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "600"))
    )
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
        return 0
    import uvloop  # for the load too

    report = uvloop.run(soak(args.seconds))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as out:
            out.write(text + "\n")
    leaked = report["fds"]["idle_after"] > report["fds"]["idle_before"]
    growing = report["rss_slope_kib_per_min_after_warmup"] > SLOPE_LIMIT_KIB_PER_MIN
    return 1 if report["errors"] or leaked or growing else 0


if __name__ == "__main__":
    sys.exit(main())
