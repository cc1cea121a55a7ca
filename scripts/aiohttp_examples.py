"""aiohttp's own server-side example programs, unmodified, on aiohttp and on squall: what differs.

Downloads the sdist of the aiohttp release installed in .venv into build/aiohttp-examples/ and
extracts its ``examples/``. Each server-side example runs twice, on aiohttp (``python FILE``) and on
squall through the alias (``python -m squall.as_aiohttp FILE``, squall from this checkout's src/;
``cli_app.py`` through ``python -m aiohttp.web``, and ``-m squall.as_aiohttp -m aiohttp.web``):

- the programs that serve on port 8080 get the same requests (raw HTTP/1.1, and WebSocket
  messages where they serve one); status, body and the headers that carry meaning are compared;
- the programs that start a server, talk to it with aiohttp's client and exit are compared by exit
  status and output (numbers blanked: they print timings and ports).

Prints one line per example and every difference. Uses port 8080 (the examples' own), waiting for
it to be free; anything else that talks to 8080 meanwhile (``make run``, tests/test_seed.py, the
docs' served examples) shows up as a difference. Not part of ``make test``.

    python scripts/aiohttp_examples.py [--examples web_srv.py ...]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "aiohttp-examples"
VERSION = aiohttp.__version__
PORT = 8080
TIMEOUT = 60.0
# The headers compared (Date and Server differ by design, and so may the order of the rest).
HEADERS = ("content-type", "content-length", "location", "set-cookie", "allow", "content-encoding")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def get(*paths: str) -> tuple[Request, ...]:
    return tuple(Request("GET", path) for path in paths)


SRV = get("/", "/simple", "/change_body", "/hello", "/hello/John", "/missing")
FORM = (("Content-Type", "application/x-www-form-urlencoded"),)
# Examples that serve until stopped: the requests they get, and WebSocket messages to echo.
SERVERS: dict[str, tuple[tuple[Request, ...], tuple[str, tuple[str, ...]] | None]] = {
    "server_simple.py": (get("/", "/Ann", "/a/b"), ("/echo", ("world",))),
    "static_files.py": (get("/", "/web_srv.py", "/nothing-here"), None),
    "web_classview.py": (
        (
            *get("/", "/get?a=1&b=2", "/post"),
            Request("POST", "/post", b"c=3&d=4", FORM),
            Request("PUT", "/get"),
        ),
        None,
    ),
    "web_cookies.py": (
        (
            *get("/", "/login", "/logout"),
            Request("GET", "/", headers=(("Cookie", "AUTH=secret"),)),
        ),
        None,
    ),
    "web_rewrite_headers_middleware.py": (get("/", "/missing"), None),
    "web_srv.py": (SRV, None),
    "web_srv_route_deco.py": (SRV, None),
    "web_srv_route_table.py": (SRV, None),
    "web_ws.py": (get("/"), ("/", ("hello", "again"))),
    "lowlevel_srv.py": (get("/", "/anything"), None),
    "cli_app.py": (get("/", "/missing"), None),
}
# How an example is run when not as ``python FILE`` (on squall: after ``-m squall.as_aiohttp``).
RUN_AS = {
    "cli_app.py": (
        *("-m", "aiohttp.web", "-H", "localhost", "-P", str(PORT), "cli_app:init"),
        *("--repeat", "3", "Hello World"),
    ),
}
# Examples that start a server, use it with aiohttp's client, print and exit.
PROGRAMS = (
    "basic_auth_middleware.py",
    "combined_middleware.py",
    "logging_middleware.py",
    "retry_middleware.py",
    "token_refresh_middleware.py",
    "fake_server.py",
)
LEFT_OUT = {"background_tasks.py": "needs a Valkey server"}


def fetch_examples() -> Path:
    """build/aiohttp-examples/aiohttp-VERSION/examples, from aiohttp's sdist."""
    dest = WORK / f"aiohttp-{VERSION}" / "examples"
    if (dest / "web_srv.py").is_file():
        return dest
    WORK.mkdir(parents=True, exist_ok=True)
    sdist = WORK / f"aiohttp-{VERSION}.tar.gz"
    if not sdist.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
             f"aiohttp=={VERSION}", "-d", str(WORK)],
            check=True,
        )  # fmt: skip
    prefix = f"aiohttp-{VERSION}/examples/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(WORK, members=members, filter="data")
    return dest


def command(example: Path, on_squall: bool) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    args = RUN_AS.get(example.name, (str(example),))
    if not on_squall:
        return [sys.executable, *args], env
    env["PYTHONPATH"] = str(ROOT / "src")
    return [sys.executable, "-m", "squall.as_aiohttp", *args], env


def port_free() -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", PORT))
        except OSError:
            return False
    return True


def wait_port(up: bool, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """Wait until something listens on PORT (``up``) or nothing does."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            listening = True
        except OSError:
            listening = False
        if listening == up and (up or port_free()):
            return True
        time.sleep(0.1)
    return False


def ask(req: Request) -> str:
    """One request on a new connection: status, the compared headers, the body."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    try:
        conn.request(req.method, req.path, body=req.body or None, headers=dict(req.headers))
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"{req.method} {req.path}: failed: {exc!r}"
    finally:
        conn.close()
    fields = [
        f"{name}: {value}"
        for name, value in sorted((k.lower(), v) for k, v in resp.getheaders())
        if name in HEADERS
    ]
    return f"{req.method} {req.path}: {resp.status} {fields} {body!r}"


async def talk(path: str, messages: tuple[str, ...]) -> list[str]:
    """Open a WebSocket on ``path``, send each message and note what comes back."""
    seen: list[str] = []
    url = f"http://127.0.0.1:{PORT}{path}"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, timeout=10) as ws:
        for text in messages:
            await ws.send_str(text)
            try:
                msg = await ws.receive(timeout=1)
                seen.append(f"ws {path} sent {text!r}: got {msg.type.name} {msg.data!r}")
            except TimeoutError:
                seen.append(f"ws {path} sent {text!r}: nothing within 1 s")
    return seen


def serve_and_ask(example: Path, on_squall: bool) -> list[str]:
    requests, ws = SERVERS[example.name]
    if not wait_port(False):
        return [f"port {PORT} stayed busy"]
    cmd, env = command(example, on_squall)
    proc = subprocess.Popen(
        cmd, cwd=example.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        if not wait_port(True, proc):
            proc.kill()
            out = proc.communicate()[0].decode(errors="replace")
            return [f"did not serve on {PORT}: {out[-500:]}"]
        seen = [ask(req) for req in requests]
        if ws is not None:
            try:
                seen += asyncio.run(talk(*ws))
            except Exception as exc:  # a difference to report, not to raise
                seen.append(f"ws {ws[0]}: failed: {exc!r}")
        return seen
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def run_program(example: Path, on_squall: bool) -> list[str]:
    if not wait_port(False):
        return [f"port {PORT} stayed busy"]
    cmd, env = command(example, on_squall)
    try:
        done = subprocess.run(
            cmd, cwd=example.parent, env=env, capture_output=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return [f"did not finish in {TIMEOUT:.0f} s"]
    out = (done.stdout + done.stderr).decode(errors="replace")
    out = re.sub(r"0x[0-9a-f]+", "0x…", out)
    # the Server header, as the programs print it, differs by design
    out = re.sub(r"(aiohttp|squall)/[\d.]+", "SERVER", out)
    out = re.sub(r"\d+(\.\d+)?", "N", out)
    return [f"exit {done.returncode}", *out.splitlines()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    known = [*SERVERS, *PROGRAMS]
    parser.add_argument("--examples", nargs="+", default=known, choices=known, metavar="FILE")
    args = parser.parse_args()
    examples = fetch_examples()
    same = 0
    for name in args.examples:
        path = examples / name
        check = serve_and_ask if name in SERVERS else run_program
        on_aiohttp = check(path, False)
        on_squall = check(path, True)
        if on_aiohttp[0].startswith(("did not", f"port {PORT}")):
            print(f"NOT RUN  {name}: on aiohttp, {on_aiohttp[0]}", flush=True)
            continue
        if on_aiohttp == on_squall:
            same += 1
            print(f"same     {name} ({len(on_aiohttp)} answers or lines)", flush=True)
            continue
        print(f"DIFFERS  {name}", flush=True)
        for a, s in zip(on_aiohttp, on_squall, strict=False):
            if a != s:
                print(f"  aiohttp: {a}\n  squall:  {s}")
        for extra, who in ((on_aiohttp, "aiohttp"), (on_squall, "squall")):
            for line in extra[min(len(on_aiohttp), len(on_squall)) :]:
                print(f"  only {who}: {line}")
    for name, why in LEFT_OUT.items():
        print(f"left out {name}: {why}")
    print(f"{same} of {len(args.examples)} examples: clients see the same on both")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
