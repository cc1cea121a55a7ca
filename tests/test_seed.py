"""The seed program runs as printed (with `squall` for `aiohttp`) and answers Hello, World!"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _get(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("script", ["seed.py", "seed_web.py"])
def test_seed_program_serves_hello(script: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        assert _get("http://127.0.0.1:8080/World", deadline) == "Hello, World!"
        assert _get("http://127.0.0.1:8080/squall", deadline) == "Hello, squall!"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert b"Server started at http://localhost:8080/" in out
    assert b"Traceback" not in err


def test_import_squall_makes_web_available() -> None:
    code = "import squall; app = squall.web.Application(); print(type(app).__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Application"


def test_seed_program_stops_on_ctrl_c_with_connections_open() -> None:
    """asyncio.run's teardown cancels every task: connection tasks must end, not hang."""
    import signal
    import socket

    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "seed.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert _get("http://127.0.0.1:8080/World", time.monotonic() + 15) == "Hello, World!"
        idle = socket.create_connection(("127.0.0.1", 8080))  # keep-alive, after one request
        idle.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        idle.recv(4096)
        partial = socket.create_connection(("127.0.0.1", 8080))  # a head still in progress
        partial.sendall(b"GET /b HTTP/1.1\r\n")
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for sock in ("idle", "partial"):
            if sock in locals():
                locals()[sock].close()
    assert proc.returncode is not None
