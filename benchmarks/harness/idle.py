"""The idle-connection test: server RSS growth per idle keep-alive connection."""

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.procs import Server, pinned

CLIENT = Path(__file__).resolve().parent.parent / "idle_clients.py"


@dataclass(frozen=True)
class IdleResult:
    """RSS before and while ``opened`` connections were held; ``still_open`` at the end."""

    rss_before: int
    rss_held: int
    opened: int
    still_open: int
    seconds_to_open: float

    @property
    def bytes_per_conn(self) -> float | None:
        return (self.rss_held - self.rss_before) / self.opened if self.opened else None


def _event(proc: subprocess.Popen[str], name: str) -> dict[str, Any]:
    """Next JSON line from the client (its own deadlines bound the wait)."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    event: dict[str, Any] = json.loads(line) if line.startswith("{") else {}
    if event.get("event") != name:
        raise RuntimeError(f"idle client: expected {name!r}, got {line.strip()!r}")
    return event


def measure(
    server: Server, count: int, hold: float, settle: float, client: tuple[str, ...] = ()
) -> IdleResult:
    """Hold ``count`` connections for ``hold`` s; read the server's RSS ``settle`` s in.

    ``client``: the command of another idle client taking the same arguments and printing the
    same lines (ws_load.py's ``idle``); idle_clients.py by default.
    """
    before = server.rss()
    client = client or (sys.executable, str(CLIENT))
    argv = pinned(1, [*client, str(server.port), str(count), str(hold)])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        event = _event(proc, "open")
        opened, seconds = int(event["open"]), float(event["seconds"])
        time.sleep(settle)
        held = server.rss()
        still = int(_event(proc, "held")["still_open"])
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return IdleResult(before, held, opened, still, seconds)
