"""``python -m squall.web``, run in subprocesses beside ``python -m aiohttp.web``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from squall.testing import unused_port

TIMEOUT = 15.0

ENTRY = """
import sys

from {framework} import web

async def hello(request):
    return web.Response(text="argv=" + " ".join(request.app[ARGV]))

ARGV = web.AppKey("argv", list)

def init(argv):
    app = web.Application()
    app[ARGV] = argv
    app.router.add_get("/", hello)
    return app

async def init_async(argv):
    return init(argv)

def forgot_return(argv):
    init(argv)

async def forgot_return_async(argv):
    init(argv)

app = init([])
not_a_function = 42
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    for framework in ("squall", "aiohttp"):
        (tmp_path / f"entry_{framework}.py").write_text(
            textwrap.dedent(ENTRY.format(framework=framework))
        )
    return tmp_path


def _run(cwd: Path, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@contextmanager
def _serving(cwd: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``python -m squall.web ARGS``; yield the process and its "Running on" line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "squall.web", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().rstrip("\n")
        if not line.startswith("======== Running on "):
            proc.kill()
            _, err = proc.communicate(timeout=TIMEOUT)
            pytest.fail(f"no ready line: {line!r}; stderr: {err!r}")
        yield proc, line
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=TIMEOUT)


def _get(sock: socket.socket) -> bytes:
    sock.settimeout(TIMEOUT)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


def _body(response: bytes) -> bytes:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    return body


def _stop(proc: subprocess.Popen[str], sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, err


@pytest.mark.parametrize(
    ("entry", "sig"),
    [("entry_squall:init", signal.SIGINT), ("entry_squall:init_async", signal.SIGTERM)],
)
def test_serves_on_host_and_port(app_dir: Path, entry: str, sig: int) -> None:
    port = unused_port()
    args = ("-H", "127.0.0.1", "-P", str(port), entry, "--flag", "value")
    with _serving(app_dir, *args) as (proc, line):
        assert line == f"======== Running on http://127.0.0.1:{port} ========"
        response = _get(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
        assert _body(response) == b"argv=--flag value"  # init_func got the unknown arguments
        code, err = _stop(proc, sig)
    assert code == 0
    assert err.endswith("Stopped\n")
    assert '"GET / HTTP/1.1" 200' in err  # logging is configured, the access log shows
    assert "Traceback" not in err


def test_serves_on_a_unix_socket(tmp_path: Path, app_dir: Path) -> None:
    path = tmp_path / "web.sock"
    with _serving(app_dir, "-U", str(path), "entry_squall:init") as (proc, line):
        assert line == f"======== Running on http://unix:{path}: ========"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect(str(path))
        assert _body(_get(sock)) == b"argv="
        assert _stop(proc, signal.SIGINT)[0] == 0


def test_serves_on_a_unix_socket_and_tcp(tmp_path: Path, app_dir: Path) -> None:
    path, port = tmp_path / "web.sock", unused_port()
    args = ("-U", str(path), "-H", "127.0.0.1", "-P", str(port), "entry_squall:init")
    with _serving(app_dir, *args) as (proc, line):
        assert f"http://127.0.0.1:{port}" in line and f"http://unix:{path}:" in line
        response = _get(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
        assert _body(response) == b"argv="
        assert _stop(proc, signal.SIGINT)[0] == 0


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("entry_{fw}",),
        ("entry_{fw}:",),
        (":init",),
        (".entry_{fw}:init",),
        ("no_such_module:init",),
        ("entry_{fw}:nope",),
        ("-P", "http", "entry_{fw}:init"),
    ],
)
def test_bad_arguments_as_aiohttp(app_dir: Path, args: tuple[str, ...]) -> None:
    """The same usage error and exit status 2 as ``python -m aiohttp.web``, name aside."""
    ours = _run(app_dir, "squall.web", *(a.format(fw="squall") for a in args))
    theirs = _run(app_dir, "aiohttp.web", *(a.format(fw="aiohttp") for a in args))
    assert theirs.returncode == 2
    assert ours.returncode == 2
    assert ours.stdout == ""
    expected = theirs.stderr.replace("aiohttp.web", "squall.web").replace("aiohttp", "squall")
    assert ours.stderr == expected
    assert "squall.web: error: " in ours.stderr


def test_help(app_dir: Path) -> None:
    result = _run(app_dir, "squall.web", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: squall.web [-h] [-H HOSTNAME] [-P PORT] [-U PATH]")
    for flag in ("--hostname", "--port", "--path", "entry-func"):
        assert flag in result.stdout


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("forgot_return", "entry_squall:forgot_return returned None (no 'return app'?), not a"),
        (
            "forgot_return_async",
            "entry_squall:forgot_return_async returned an awaitable of None (no 'return app'?)",
        ),
        ("app", "entry_squall:app is an Application, not a function returning one: serve it"),
        ("not_a_function", "entry_squall:not_a_function is an object of type int, not a"),
    ],
)
def test_an_entry_that_gives_no_application_is_named(
    app_dir: Path, entry: str, message: str
) -> None:
    """A usage error naming the entry and what it gave, not an AssertionError or a TypeError."""
    result = _run(app_dir, "squall.web", "-P", str(unused_port()), f"entry_squall:{entry}")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"squall.web: error: {message}" in result.stderr
