"""The ``squall`` command line, run as ``python -m squall`` in subprocesses."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import squall

TIMEOUT = 15.0

WEB_APP = """
from squall import web

async def hello(request):
    return web.Response(text="hello aiohttp")

app = web.Application()
app.router.add_get("/", hello)

def make_app():
    return app

async def make_app_async():
    return app
"""

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "hello asgi"
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    greeting = scope["state"]["greeting"]
    body = f"{greeting} {scope['root_path']}{scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
"""

# The build is the one under test: the server runs the same squall (squall.COMPILED).
BUILD = "compiled" if squall.COMPILED else "pure Python"
READY = re.compile(
    rf"^squall: serving (\S+) \((aiohttp|asgi) interface, {BUILD}\), Ctrl-C to stop$"
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "webmod.py").write_text(textwrap.dedent(WEB_APP))
    (tmp_path / "asgimod.py").write_text(textwrap.dedent(ASGI_APP))
    (tmp_path / "raising.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "notapp.py").write_text("app = 42\n")
    (tmp_path / "aiohttpmod.py").write_text(
        "from aiohttp import web\napp = web.Application()\ndef make_app():\n    return app\n"
    )
    return tmp_path


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "squall", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@contextmanager
def _serving(
    cwd: Path, *args: str, pass_fds: tuple[int, ...] = ()
) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """Start ``python -m squall ARGS``; yield the process, its URL and interface once ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "squall", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        pass_fds=pass_fds,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().rstrip("\n")
        match = READY.match(line)
        if match is None:
            proc.kill()
            _, err = proc.communicate(timeout=TIMEOUT)
            pytest.fail(f"no ready line: {line!r}; stderr: {err!r}")
        yield proc, match.group(1), match.group(2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=TIMEOUT)


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, float]:
    started = time.monotonic()
    proc.send_signal(sig)
    code = proc.wait(timeout=TIMEOUT)
    return code, time.monotonic() - started


def _get(sock: socket.socket, path: str = "/") -> bytes:
    sock.settimeout(TIMEOUT)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


def _get_tcp(url: str, path: str = "/") -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return _get(socket.create_connection((host, int(port)), timeout=TIMEOUT), path)


def _status_and_body(response: bytes) -> tuple[bytes, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], body


def test_help_lists_the_flags() -> None:
    result = _run(Path.cwd(), "--help")
    assert result.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--uds",
        "--fd",
        "--workers",
        "--factory",
        "--interface",
        "--root-path",
        "--timeout-keep-alive",
        "--backlog",
        "--log-level",
        "--access-log",
        "--no-access-log",
        "--ssl-keyfile",
        "--ssl-certfile",
        "MODULE:APP",
        "--proxy-headers",
        "--no-proxy-headers",
        "--forwarded-allow-ips",
        "--max-requests",
        "--reload",
    ):
        assert flag in result.stdout, flag


def test_aiohttp_app(app_dir: Path) -> None:
    with _serving(app_dir, "webmod:app", "--port", "0") as (proc, url, interface):
        assert interface == "aiohttp"
        assert url.startswith("http://127.0.0.1:")
        status, body = _status_and_body(_get_tcp(url))
        assert status == b"HTTP/1.1 200 OK"
        assert body == b"hello aiohttp"
        code, _ = _stop(proc)
        assert code == 0
        assert proc.stderr is not None
        assert '"GET / HTTP/1.1" 200' in proc.stderr.read()  # the access log


@pytest.mark.parametrize("factory", ["make_app", "make_app_async"])
def test_factory(app_dir: Path, factory: str) -> None:
    args = (f"webmod:{factory}", "--factory", "--port", "0", "--no-access-log")
    with _serving(app_dir, *args) as (proc, url, interface):
        assert interface == "aiohttp"
        assert _status_and_body(_get_tcp(url))[1] == b"hello aiohttp"
        assert _stop(proc)[0] == 0
        assert proc.stderr is not None
        assert "GET /" not in proc.stderr.read()


def test_factory_without_flag_is_explained(app_dir: Path) -> None:
    result = _run(app_dir, "webmod:make_app", "--port", "0")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "squall: 'webmod:make_app' takes no arguments: if it is an application factory, "
        "pass --factory"
    ]


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("aiohttpmod:app",), "'aiohttpmod:app' is"),
        (("aiohttpmod:app", "--factory"), "'aiohttpmod:app' is"),
        (("aiohttpmod:make_app", "--factory"), "'aiohttpmod:make_app' returned"),
    ],
)
def test_an_aiohttp_application_is_named(app_dir: Path, args: tuple[str, ...], what: str) -> None:
    """aiohttp's own Application is refused with the fix, not taken for an ASGI app (500s)."""
    result = _run(app_dir, *args, "--port", "0")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"squall: {what} an aiohttp.web.Application: squall serves squall.web applications; "
        "write 'from squall import web' in place of 'from aiohttp import web', or call "
        "squall.install_as_aiohttp() before aiohttp.web is imported (docs/migrating.md)"
    ]


def test_sighup_to_one_process_is_logged_and_ignored(app_dir: Path) -> None:
    """No workers to replace: the server keeps serving and says why it did nothing."""
    with _serving(app_dir, "asgimod:app", "--port", "0") as (proc, url, _):
        proc.send_signal(signal.SIGHUP)
        assert _status_and_body(_get_tcp(url))[0] == b"HTTP/1.1 200 OK"
        assert proc.poll() is None
        assert _stop(proc)[0] == 0
        assert proc.stderr is not None
        err = proc.stderr.read()
    assert "WARNING:squall.server: SIGHUP ignored: one process has no workers to replace" in err


@pytest.mark.parametrize("interface", [None, "asgi"])
def test_asgi_app(app_dir: Path, interface: str | None) -> None:
    args = ["asgimod:app", "--port", "0"]
    if interface is not None:
        args += ["--interface", interface]
    with _serving(app_dir, *args) as (proc, url, detected):
        assert detected == "asgi"
        status, body = _status_and_body(_get_tcp(url, "/x"))
        assert status == b"HTTP/1.1 200 OK"
        assert body == b"hello asgi /x"  # the lifespan state reached the request
        assert _stop(proc)[0] == 0
        assert proc.stderr is not None
        assert re.search(r'127\.0\.0\.1:\d+ - "GET /x HTTP/1\.1" 200', proc.stderr.read())


def test_asgi_root_path(app_dir: Path) -> None:
    with _serving(app_dir, "asgimod:app", "--port", "0", "--root-path", "/api") as (
        proc,
        url,
        _,
    ):
        assert _status_and_body(_get_tcp(url, "/x"))[1] == b"hello asgi /api/api/x"
        assert _stop(proc)[0] == 0


@pytest.mark.parametrize("module", ["webmod", "asgimod"])
def test_unix_socket(tmp_path: Path, app_dir: Path, module: str) -> None:
    path = tmp_path / "squall.sock"
    with _serving(app_dir, f"{module}:app", "--uds", str(path)) as (proc, url, _):
        assert url == f"http+unix://{path}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect(str(path))
        status, body = _status_and_body(_get(sock))
        assert status == b"HTTP/1.1 200 OK"
        assert body.startswith(b"hello ")
        assert _stop(proc)[0] == 0
    assert not path.exists()


def test_inherited_fd(app_dir: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    fd = listener.fileno()
    try:
        with _serving(app_dir, "webmod:app", "--fd", str(fd), pass_fds=(fd,)) as (proc, url, _):
            assert url == f"http://127.0.0.1:{port}"
            assert _status_and_body(_get_tcp(url))[1] == b"hello aiohttp"
            assert _stop(proc)[0] == 0
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "nosuchmodule:app",
            "squall: cannot import 'nosuchmodule:app': No module named 'nosuchmodule'",
        ),
        (
            "webmod:nope",
            "squall: cannot import 'webmod:nope': module 'webmod' has no attribute 'nope'",
        ),
        ("raising:app", "squall: cannot import 'raising:app': RuntimeError: boom at import"),
        ("webmod", "squall: cannot import 'webmod': expected MODULE:APP, as in 'main:app'"),
        (
            "notapp:app",
            "squall: 'notapp:app' is neither a squall.web.Application nor an ASGI "
            "callable (got int)",
        ),
    ],
)
def test_import_errors_are_one_line(app_dir: Path, spec: str, message: str) -> None:
    result = _run(app_dir, spec, "--port", "0")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [message]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ("webmod:app", "--port", "http"),
        ("webmod:app", "--interface", "wsgi"),
        ("webmod:app", "--uds", "/tmp/x.sock", "--fd", "3"),
        ("webmod:app", "--bogus"),
        ("webmod:app", "--ssl-keyfile", "key.pem"),
        ("webmod:app", "--interface", "asgi"),
        ("asgimod:app", "--interface", "aiohttp"),
        (),
    ],
)
def test_bad_arguments_are_one_line(app_dir: Path, args: tuple[str, ...]) -> None:
    result = _run(app_dir, *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("squall: "), result.stderr


def test_port_in_use(app_dir: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        result = _run(app_dir, "asgimod:app", "--port", str(taken.getsockname()[1]))
    finally:
        taken.close()
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("squall: cannot listen on 127.0.0.1:"), lines


@pytest.mark.parametrize(
    ("module", "sig"), [("webmod", signal.SIGTERM), ("asgimod", signal.SIGINT)]
)
def test_signal_stops_promptly(app_dir: Path, module: str, sig: int) -> None:
    with _serving(app_dir, f"{module}:app", "--port", "0") as (proc, url, _):
        assert _status_and_body(_get_tcp(url))[0] == b"HTTP/1.1 200 OK"
        code, took = _stop(proc, sig)
        assert code == 0
        assert took < 5.0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()


def test_proxy_headers_flags_reach_the_app(tmp_path: Path) -> None:
    """--forwarded-allow-ips decides whose X-Forwarded-For is believed (on by default)."""
    (tmp_path / "proxied.py").write_text(
        "from squall import web\n"
        "async def remote(request):\n"
        "    return web.Response(text=f'{request.remote} {request.scheme}')\n"
        "app = web.Application()\n"
        "app.router.add_get('/', remote)\n"
    )
    request = (
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"X-Forwarded-For: 203.0.113.5\r\nX-Forwarded-Proto: https\r\n\r\n"
    )
    answers = []
    for flags in ([], ["--forwarded-allow-ips", "10.0.0.1"], ["--no-proxy-headers"]):
        with _serving(tmp_path, "proxied:app", "--port", "0", *flags) as (_, url, _):
            host, port = url.removeprefix("http://").rsplit(":", 1)
            sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            sock.close()
            answers.append(_status_and_body(b"".join(chunks))[1])
    assert answers == [b"203.0.113.5 https", b"127.0.0.1 http", b"127.0.0.1 http"]


def test_bad_forwarded_allow_ips_is_one_line(app_dir: Path) -> None:
    proc = _run(app_dir, "webmod:app", "--forwarded-allow-ips", "10.0.0.0/99")
    assert proc.returncode == 2
    assert "--forwarded-allow-ips" in proc.stderr and "Traceback" not in proc.stderr


def test_limit_concurrency_answers_503_past_the_limit(app_dir: Path) -> None:
    with _serving(app_dir, "webmod:app", "--port", "0", "--limit-concurrency", "1") as (_, url, _):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        held = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        held.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")  # keep-alive: holds the place
        assert held.recv(65536).startswith(b"HTTP/1.1 200 ")
        status, _ = _status_and_body(_get_tcp(url))
        held.close()
    assert status == b"HTTP/1.1 503 Service Unavailable"
