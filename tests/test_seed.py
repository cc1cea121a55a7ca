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


# Ctrl-C as a terminal delivers it, wherever the suite runs: a shell that starts a job in the
# background (`make test &`) makes its children ignore SIGINT, and Python then never turns
# SIGINT into KeyboardInterrupt; so the child puts the default handler back before the program.
# The port is a free one, not the program's 8080, which another run on this machine may hold.
CTRL_C_RUNNER = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
source = open(sys.argv[1]).read().replace("8080", sys.argv[2])
code = compile(source, sys.argv[1], "exec")
exec(code, {"__name__": "__main__", "__file__": sys.argv[1]})
"""


def test_seed_program_stops_on_ctrl_c_with_connections_open() -> None:
    """asyncio.run's teardown cancels every task: connection tasks must end, not hang."""
    import signal
    import socket

    from squall.testing import unused_port

    port = unused_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_RUNNER, str(EXAMPLES / "seed.py"), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    sockets: list[socket.socket] = []
    try:
        assert _get(f"http://127.0.0.1:{port}/World", time.monotonic() + 60) == "Hello, World!"
        idle = socket.create_connection(("127.0.0.1", port), timeout=30)  # keep-alive, served
        sockets.append(idle)
        idle.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        partial = socket.create_connection(("127.0.0.1", port), timeout=30)  # head in progress
        sockets.append(partial)
        partial.sendall(b"GET /b HTTP/1.1\r\n")
        # On loopback the partial head is in the server's socket before this request is: once
        # this one is answered, the loop has seen both, and reads the partial head before it
        # gets to the SIGINT (a fixed sleep here was too short under load).
        idle.sendall(b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for sock in sockets:
            sock.close()
    # Stopped by the KeyboardInterrupt asyncio.run re-raises after its teardown (Python then
    # ends itself by SIGINT, as a shell expects), not killed above.
    assert proc.returncode == -signal.SIGINT, err
    assert err.rstrip().endswith(b"KeyboardInterrupt"), err
