"""The WebSocket echo benchmark: its servers, its scenarios, the echo check and one server's turn.

Each server echoes every message on ws://127.0.0.1:PORT/. ws_load.py, pinned to core 1, keeps one
binary message in flight per connection and counts round-trips; its ``idle`` mode holds idle
WebSockets for the memory figure. There nobody compresses: the servers are told not to where they
can, and the load generator offers no extension, so permessage-deflate is never negotiated. The
deflate scenario is the exception: 1 KiB JSON text messages on /deflate, permessage-deflate
offered and required (ws_load.py ``--deflate``), measured on the servers that compress there
(``DEFLATE_SERVERS``; the floor inflates and deflates with zlib and no more).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import zlib
from argparse import Namespace
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ws_load import (
    ACCEPT,
    CLOSE_FRAME,
    DEFLATE_TAIL,
    client_frame,
    deflated_frame,
    handshake,
    json_texts,
)

from harness import idle
from harness.procs import Server, free_port, pinned
from harness.servers import PY, SERVERS_DIR, Spec, squall_asgi

if TYPE_CHECKING:
    from pathlib import Path

    from harness.report import ServerResult

CLIENT = SERVERS_DIR.parent / "ws_load.py"
SIZES = (("32b", "32 B", 32), ("64k", "64 KiB", 64 * 1024))  # name, header, bytes


DEFLATE_SIZE = 1024


@dataclass(frozen=True)
class WsScenario:
    """``connections`` WebSockets, each with one ``size``-byte message in flight (``deflate``:
    JSON text, compressed)."""

    name: str
    header: str
    connections: int
    size: int
    deflate: bool = False


WS_SCENARIOS = (
    *(
        WsScenario(f"ws_{name}_{n}", f"{label} x {n:,} rt/s", n, size)
        for name, label, size in SIZES
        for n in (1, 64, 1000)
    ),
    WsScenario("ws_1k_deflate_64", "1 KiB deflate x 64 rt/s", 64, DEFLATE_SIZE, deflate=True),
)
QUICK_WS_SCENARIOS = ("ws_32b_64", "ws_1k_deflate_64")
# The servers that compress on /deflate (uvicorn and websockets are told not to).
DEFLATE_SERVERS = ("ws-squall", "ws-aiohttp", "ws-squall-asgi", "ws-floor")

UVICORN_NEEDS = ("uvicorn", "httptools", "uvloop", "websockets")
WS_SPECS = (
    Spec("ws-squall", "squall WebSocketResponse", (PY, "ws_squall.py"), ("squall", "uvloop")),
    Spec(
        "ws-aiohttp",
        "aiohttp WebSocketResponse (uvloop)",
        (PY, "ws_aiohttp.py"),
        ("aiohttp", "uvloop"),
    ),
    Spec(
        "ws-websockets",
        "websockets asyncio server (uvloop)",
        (PY, "ws_websockets.py"),
        ("websockets", "uvloop"),
    ),
    Spec("ws-uvicorn", "uvicorn raw ASGI (--ws websockets)", (PY, "ws_asgi.py"), UVICORN_NEEDS),
    Spec("ws-squall-asgi", "squall raw ASGI", squall_asgi("ws_asgi:app"), ("squall", "uvloop")),
    Spec("ws-floor", "floor (bare Protocol echo)", (PY, "ws_floor.py"), ("websockets", "uvloop")),
)


def _read_frame(stream: socket.SocketIO) -> tuple[int, bytes]:
    """One unmasked server frame: its first byte and its payload."""

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = stream.read(n - len(data))
            if not chunk:
                raise ValueError("connection closed")
            data += chunk
        return data

    b0, b1 = exactly(2)
    length = b1 & 0x7F
    if length >= 126:
        length = int.from_bytes(exactly(2 if length == 126 else 8), "big")
    return b0, exactly(length)


def _read_message(stream: socket.SocketIO) -> bytes:
    """One unmasked server frame's payload (the echo comes back as one final binary frame)."""
    b0, payload = _read_frame(stream)
    if b0 != 0x82:
        raise ValueError(f"frame {b0:#x} instead of one final binary frame")
    return payload


def _probe(port: int) -> str | None:
    """Handshake, echo a small and a large message; None if all is right, else what is wrong."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(handshake(port, "/"))
            head = b""
            while b"\r\n\r\n" not in head:
                if not (chunk := sock.recv(4096)):
                    return "handshake: connection closed"
                head += chunk
            head, rest = head.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 101") or ACCEPT not in head or rest:
                return f"handshake answered {head[:40]!r}"
            if b"sec-websocket-extensions" in head.lower():
                return "an extension was negotiated though none was offered"
            stream = socket.SocketIO(sock, "rb")
            for _, _, size in SIZES:
                payload = os.urandom(size)
                sock.sendall(client_frame(payload))
                if _read_message(stream) != payload:
                    return f"the echo of {size} bytes came back different"
            sock.sendall(CLOSE_FRAME)
    except (OSError, ValueError) as exc:
        return f"WebSocket echo failed: {exc!r}"
    return None


def _probe_deflate(port: int) -> str | None:
    """Handshake on /deflate with permessage-deflate offered, echo three JSON texts; None if
    each comes back compressed and whole, else what is wrong."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(handshake(port, "/deflate", deflate=True))
            head = b""
            while b"\r\n\r\n" not in head:
                if not (chunk := sock.recv(4096)):
                    return "deflate handshake: connection closed"
                head += chunk
            head = head.split(b"\r\n\r\n", 1)[0]
            if b"permessage-deflate" not in head.lower():
                return "permessage-deflate not accepted on /deflate"
            stream = socket.SocketIO(sock, "rb")
            inflate = zlib.decompressobj(-15)
            for text in json_texts(3, DEFLATE_SIZE):
                sock.sendall(deflated_frame(text))
                b0, payload = _read_frame(stream)
                if b0 != 0xC1:
                    return f"deflate echo: frame {b0:#x} instead of a compressed text frame"
                if inflate.decompress(payload + DEFLATE_TAIL) != text:
                    return "deflate echo: the text came back different"
            sock.sendall(CLOSE_FRAME)
    except (OSError, ValueError, zlib.error) as exc:
        return f"WebSocket deflate echo failed: {exc!r}"
    return None


def check(port: int, retry_for: float = 0.0, deflate: bool = False) -> str | None:
    """The echo check (``deflate``: that one too), retried for ``retry_for`` s (a server may
    accept before it serves)."""
    deadline = time.monotonic() + retry_for
    while (problem := _probe(port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if problem is None and deflate:
        problem = _probe_deflate(port)
    return problem


def bench_server(spec: Spec, opts: Namespace, result: ServerResult, logs: Path) -> None:
    """One round for one WebSocket server: start, check, idle test, each scenario, stop."""
    port = free_port()
    server = Server(spec.command(port), SERVERS_DIR, port, logs / f"{spec.name}.log")
    try:
        chosen = opts.scenarios.split(",")
        deflate = spec.name in DEFLATE_SERVERS and any(
            sc.deflate and sc.name in chosen for sc in WS_SCENARIOS
        )
        if problem := server.wait_ready() or check(port, retry_for=10.0, deflate=deflate):
            result.note(f"skipped: {problem}")
            result.skipped = True
            return
        if opts.ws_idle:
            measure_idle(server, opts, result)
        else:
            result.add("rss_mib", server.rss() / 2**20)
        cpu = [
            run_scenario(sc, port, opts, result)
            for sc in WS_SCENARIOS
            if sc.name in chosen and (not sc.deflate or spec.name in DEFLATE_SERVERS)
        ]
        if measured := [c for c in cpu if c is not None]:
            result.add("ws_client_cpu", max(measured))
    finally:
        server.stop()


def measure_idle(server: Server, opts: Namespace, result: ServerResult) -> None:
    """Base RSS, and RSS growth per idle WebSocket (each after one echo)."""
    try:
        held = idle.measure(server, opts.ws_idle, 3.0, 1.0, client=(PY, str(CLIENT), "idle"))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        result.note(f"idle test failed: {exc}")
        result.add("rss_mib", server.rss() / 2**20)
        return
    result.add("rss_mib", held.rss_before / 2**20)
    result.add("idle_bytes_per_conn", held.bytes_per_conn)
    if held.opened < opts.ws_idle or held.still_open < held.opened:
        result.note(f"idle: {held.opened}/{opts.ws_idle} opened, {held.still_open} stayed open")


def run_scenario(sc: WsScenario, port: int, opts: Namespace, result: ServerResult) -> float | None:
    """Run ws_load.py for one scenario; record round-trips/s; return its CPU share, if measured."""
    argv = [PY, str(CLIENT), "echo", str(port), "--connections", str(sc.connections)]
    argv += ["--size", str(sc.size), "--warmup", str(opts.ws_warmup)]
    argv += ["--seconds", str(opts.ws_duration)]
    if sc.deflate:
        argv.append("--deflate")
    try:
        done = subprocess.run(
            pinned(1, argv),
            capture_output=True,
            text=True,
            timeout=opts.ws_warmup + opts.ws_duration + 90,
            check=False,
        )
    except subprocess.TimeoutExpired:
        result.note(f"{sc.name}: the load generator timed out")
        return None
    try:
        got = json.loads(done.stdout.strip().splitlines()[-1])
        rate = float(got["rate"])
    except (IndexError, KeyError, ValueError):
        result.note(f"{sc.name}: load generator failed: {(done.stdout + done.stderr)[-200:]!r}")
        return None
    if got.get("wrong"):
        result.note(f"{sc.name}: {got['wrong']} echoes did not inflate to the text sent")
    if got["connections"] < sc.connections or got["lost"]:
        result.note(
            f"{sc.name}: {got['connections']}/{sc.connections} connections opened, "
            f"{got['lost']} lost"
        )
    result.add(f"{sc.name}_rtps", rate)
    cpu = float(got["client_cpu"])
    if cpu > 0.9:
        result.note(f"{sc.name}: the load generator used {cpu:.0%} of its core (near its limit)")
    return cpu
