"""The servers under test: how to start each, what it needs, and a check of its answers."""

import http.client
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SERVERS_DIR = Path(__file__).resolve().parent.parent / "servers"
ECHO_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Spec:
    """One server: ``argv`` gets the port appended (or substituted for ``{port}``)."""

    name: str
    label: str
    argv: tuple[str, ...]
    needs: tuple[str, ...]

    def command(self, port: int) -> list[str]:
        if any("{port}" in arg for arg in self.argv):
            return [arg.replace("{port}", str(port)) for arg in self.argv]
        return [*self.argv, str(port)]

    def missing(self) -> list[str]:
        """The modules this server needs that are not installed."""
        return [mod for mod in self.needs if importlib.util.find_spec(mod) is None]


PY = sys.executable
GRANIAN = (
    *(PY, "-m", "granian", "--interface", "asgi", "--workers", "1", "--http", "1"),
    *("--loop", "uvloop", "--no-ws", "--log-level", "warning", "--no-access-log"),
    # Its default (1024) caps open connections, which the idle test would hit; the others have none.
    *("--backpressure", "65536"),
    *("--host", "127.0.0.1", "--port", "{port}", "asgi_raw:app"),
)
SPECS = (
    Spec("squall", "squall (seed app)", (PY, "squall_seed.py"), ("squall", "uvloop")),
    Spec("aiohttp", "aiohttp (seed app, uvloop)", (PY, "aiohttp_seed.py"), ("aiohttp", "uvloop")),
    Spec("uvicorn", "uvicorn raw ASGI", (PY, "asgi_raw.py"), ("uvicorn", "httptools", "uvloop")),
    Spec("granian", "granian raw ASGI", GRANIAN, ("granian", "uvloop")),
    Spec(
        "starlette",
        "uvicorn + Starlette",
        (PY, "starlette_app.py"),
        ("starlette", "uvicorn", "httptools", "uvloop"),
    ),
    Spec("floor", "floor (uvloop + httptools)", (PY, "floor.py"), ("httptools", "uvloop")),
)


ECHO_BODY = bytes(range(256)) * (ECHO_SIZE // 256)
PROBES: dict[str, tuple[str, str, bytes | None, object]] = {  # method, path, body, answer
    "hello": ("GET", "/World", None, b"Hello, World!"),
    "json": ("GET", "/json", None, {"message": "Hello, World!"}),
    "echo": ("POST", "/echo", ECHO_BODY, ECHO_BODY),
}


def _probe(port: int, name: str) -> str | None:
    """Send the scenario's request once; None if the answer is right, else what was wrong."""
    method, path, body, expected = PROBES[name]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"{method} {path} failed: {exc!r}"
    finally:
        conn.close()
    if resp.status != 200:
        return f"{method} {path} answered status {resp.status}"
    try:
        answer = json.loads(data) if isinstance(expected, dict) else data
    except ValueError:
        answer = data
    return None if answer == expected else f"{method} {path} answered {data[:40]!r}"


def check(port: int, names: tuple[str, ...], retry_for: float = 0.0) -> dict[str, str]:
    """Probe each scenario's route; return ``{scenario: problem}`` for the wrong ones.

    The first probe is retried for ``retry_for`` seconds: a server may accept connections
    before it serves them (granian while its worker starts).
    """
    problems: dict[str, str] = {}
    deadline = time.monotonic() + retry_for
    for name in names:
        while (problem := _probe(port, name)) and time.monotonic() < deadline:
            time.sleep(0.1)
        deadline = 0.0
        if problem:
            problems[name] = problem
    return problems
