"""The servers under test: how to start each, what it needs, and a check of its answers."""

from __future__ import annotations

import http.client
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.procs import Server
    from harness.report import ServerResult

SERVERS_DIR = Path(__file__).resolve().parent.parent / "servers"
PLUGINS_APP = str(Path(__file__).resolve().parents[2] / "examples" / "plugins_app.py")
ECHO_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Spec:
    """One server: ``argv`` gets the port appended (or substituted for ``{port}``).

    ``only``: the scenarios it is measured on (empty: all), ``idle``: whether the idle test runs,
    ``quick``: whether quick mode measures it at all (if not, it is only started and checked).
    """

    name: str
    label: str
    argv: tuple[str, ...]
    needs: tuple[str, ...]
    only: tuple[str, ...] = ()
    idle: bool = True
    quick: bool = True

    def command(self, port: int) -> list[str]:
        if any("{port}" in arg for arg in self.argv):
            return [arg.replace("{port}", str(port)) for arg in self.argv]
        return [*self.argv, str(port)]

    def missing(self) -> list[str]:
        """The modules this server needs that are not installed."""
        return [mod for mod in self.needs if importlib.util.find_spec(mod) is None]


PY = sys.executable


def granian(target: str, workers: int = 1, http: str = "1") -> tuple[str, ...]:
    """granian serving the ASGI app ``target`` (``module:attribute``) on ``workers`` workers,
    speaking HTTP/``http`` (``"2"``: HTTP/2 only, prior knowledge in cleartext)."""
    return (
        *(PY, "-m", "granian", "--interface", "asgi", "--workers", str(workers), "--http", http),
        *("--loop", "uvloop", "--no-ws", "--log-level", "warning", "--no-access-log"),
        # Its default (1024) caps open connections, which the idle test would hit.
        *("--backpressure", "65536"),
        *("--host", "127.0.0.1", "--port", "{port}", target),
    )


def squall_asgi(target: str) -> tuple[str, ...]:
    """squall's command line serving the ASGI app ``target`` (uvloop, one process)."""
    return (
        *(PY, "-m", "squall", target, "--interface", "asgi", "--host", "127.0.0.1"),
        *("--port", "{port}", "--no-access-log", "--log-level", "warning"),
    )


FASTAPI = ("fastapi", "uvicorn", "httptools", "uvloop")
PLUGINS = ("aiohttp", "aiohttp_session", "aiohttp_cors", "aiohttp_jinja2", "cryptography", "uvloop")
# aiohttp's run_app makes asyncio's loop; installing uvloop's policy first gives the aiohttp row
# the loop squall's run_app uses, the file itself unchanged.
ON_UVLOOP = (
    "import runpy, sys, uvloop; uvloop.install(); sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)
SPECS = (
    Spec("squall", "squall (seed app)", (PY, "squall_seed.py"), ("squall", "uvloop")),
    # The same with Prometheus metrics on, beside it: what metrics cost on the hello request.
    Spec(
        "squall-metrics",
        "squall (seed app, metrics on)",
        (PY, "squall_seed.py", "{port}", "--metrics"),
        ("squall", "uvloop"),
        only=("hello",),
        idle=False,
    ),
    Spec("aiohttp", "aiohttp (seed app, uvloop)", (PY, "aiohttp_seed.py"), ("aiohttp", "uvloop")),
    Spec("uvicorn", "uvicorn raw ASGI", (PY, "asgi_raw.py"), ("uvicorn", "httptools", "uvloop")),
    Spec("granian", "granian raw ASGI", granian("asgi_raw:app"), ("granian", "uvloop")),
    Spec(
        "squall-asgi",
        "squall raw ASGI",
        squall_asgi("asgi_raw:app"),
        ("squall", "uvloop"),
        quick=False,
    ),
    Spec(
        "starlette",
        "uvicorn + Starlette",
        (PY, "starlette_app.py"),
        ("starlette", "uvicorn", "httptools", "uvloop"),
    ),
    Spec("floor", "floor (uvloop + httptools)", (PY, "floor.py"), ("httptools", "uvloop")),
    # FastAPI's JSON endpoint on the three ASGI servers: only `json` is measured.
    *(
        Spec(f"fastapi-{name}", label, argv, needs, only=("json",), idle=False, quick=False)
        for name, label, argv, needs in (
            ("squall", "squall + FastAPI", squall_asgi("fastapi_app:app"), ("squall", *FASTAPI)),
            ("uvicorn", "uvicorn + FastAPI", (PY, "fastapi_app.py"), FASTAPI),
            ("granian", "granian + FastAPI", granian("fastapi_app:app"), ("granian", *FASTAPI)),
        )
    ),
)

# examples/plugins_app.py (aiohttp-session, -cors, -jinja2), unchanged, on squall through the alias
# and on aiohttp. Only `hello` (its `/{name}` route, through the session middleware) is measured,
# and only when asked (run.py leaves them out of its defaults):
#   python benchmarks/run.py --servers plugins-squall,plugins-aiohttp --scenarios hello
PLUGIN_SPECS = tuple(
    Spec(name, label, argv, needs, only=("hello",), idle=False, quick=False)
    for name, label, argv, needs in (
        (
            "plugins-squall",
            "squall --as-aiohttp (plugins app)",
            (PY, "-m", "squall.as_aiohttp", PLUGINS_APP),
            ("squall", *PLUGINS),
        ),
        (
            "plugins-aiohttp",
            "aiohttp (plugins app, uvloop)",
            (PY, "-c", ON_UVLOOP, PLUGINS_APP),
            PLUGINS,
        ),
    )
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


def ready(server: Server, port: int, result: ServerResult) -> bool:
    """Wait for ``server`` to serve hello; if it does not, note why and mark ``result`` skipped."""
    problem = server.wait_ready() or check(port, ("hello",), retry_for=10.0).get("hello")
    if problem:
        result.note(f"skipped: {problem}")
        result.skipped = True
    return not problem


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
