"""TLS: ``ssl_context`` on the sites and ``run_app``, ``--ssl-certfile/--ssl-keyfile``.

The certificate is made in the test by the ``openssl`` command line (a self-signed EC key for
127.0.0.1 and localhost); the tests are skipped where it is missing. Requests are made with
aiohttp's client trusting exactly that certificate, and compared with aiohttp.web serving the
same handler.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web as aioweb

from squall import web

from .loop_thread import LoopThread
from .server_process import SquallProcess

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key, as (certfile, keyfile)."""
    where = tmp_path_factory.mktemp("tls")
    certfile, keyfile = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(keyfile), "-out", str(certfile)),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return certfile, keyfile


def _server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    return ctx


def _client_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert[0]))


def _app(module: Any) -> Any:
    """The same application for squall and aiohttp: what a request knows of its transport."""

    async def describe(request: Any) -> Any:
        body = {
            "secure": request.secure,
            "scheme": request.scheme,
            "url": str(request.url),
            "host": request.host,
        }
        return module.json_response(body)

    app = module.Application()
    app.router.add_get("/describe", describe)
    return app


class TLSServer(LoopThread):
    """``make_site(runner)`` with an ssl_context, from a background thread."""

    def __init__(self, module: Any, make_site: Callable[[Any], Any]) -> None:
        super().__init__()
        self.module = module
        self.make_site = make_site

    async def serve(self, stop: asyncio.Event) -> None:
        runner = self.module.AppRunner(_app(self.module))
        await runner.setup()
        self.site = self.make_site(runner)
        await self.site.start()
        self.ready()
        await stop.wait()
        await runner.cleanup()


async def _fetch(url: str, ctx: ssl.SSLContext) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, ssl=ctx, timeout=aiohttp.ClientTimeout(total=10)) as resp,
    ):
        assert resp.status == 200
        return await resp.json()


def _fetch_unix(path: str, ctx: ssl.SSLContext) -> Any:
    """GET /describe over TLS on a Unix socket (aiohttp's UnixConnector does not do TLS)."""
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(10)
        raw.connect(path)
        with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"GET /describe HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return json.loads(body)


@pytest.mark.parametrize("module", [web, aioweb], ids=["squall", "aiohttp"])
def test_tcp_site_with_ssl_context(cert: tuple[Path, Path], module: Any) -> None:
    ctx = _server_context(cert)
    server = TLSServer(module, lambda r: module.TCPSite(r, "127.0.0.1", 0, ssl_context=ctx))
    server.start()
    try:
        port = server.site._server.sockets[0].getsockname()[1]
        assert server.site.name == f"https://127.0.0.1:{port}"
        got = asyncio.run(_fetch(f"https://127.0.0.1:{port}/describe", _client_context(cert)))
    finally:
        server.stop()
    assert got == {
        "secure": True,
        "scheme": "https",
        "url": f"https://127.0.0.1:{port}/describe",
        "host": f"127.0.0.1:{port}",
    }


@pytest.mark.parametrize("kind", ["unix", "sock"])
def test_unix_and_sock_sites_with_ssl_context(
    cert: tuple[Path, Path], tmp_path: Path, kind: str
) -> None:
    ctx = _server_context(cert)
    path = str(tmp_path / "tls.sock")
    if kind == "unix":
        server = TLSServer(web, lambda r: web.UnixSite(r, path, ssl_context=ctx))
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        server = TLSServer(web, lambda r: web.SockSite(r, sock, ssl_context=ctx))
    server.start()
    try:
        assert server.site.name.startswith("https://unix:")
        got = _fetch_unix(path, _client_context(cert))
    finally:
        server.stop()
    assert got["secure"] is True and got["scheme"] == "https"


RUN_APP = """
import socket, ssl, sys
from squall import web

async def hello(request):
    return web.Response(text=f"{request.scheme} {request.secure}")

app = web.Application()
app.router.add_get("/", hello)
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
web.run_app(app, sock=sock, ssl_context=ctx, print=lambda text: print(text, flush=True))
"""


def test_run_app_with_ssl_context(cert: tuple[Path, Path], tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent(RUN_APP))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(cert[0]), str(cert[1])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("======== Running on https://127.0.0.1:"), line
        port = int(line.split("https://127.0.0.1:")[1].split()[0])

        async def get() -> str:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"https://127.0.0.1:{port}/", ssl=_client_context(cert)) as resp,
            ):
                return await resp.text()

        assert asyncio.run(get()) == "https True"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=15)


# -- the command line ------------------------------------------------------------------------

CLI_APPS = """
import os
from squall import web

async def describe(request):
    return web.json_response(
        {"secure": request.secure, "scheme": request.scheme, "pid": os.getpid()}
    )

app = web.Application()
app.router.add_get("/describe", describe)


async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f'{{"scheme": "{scope["scheme"]}"}}'.encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "tlsapp.py").write_text(textwrap.dedent(CLI_APPS))
    return tmp_path


def _tls_args(cert: tuple[Path, Path]) -> tuple[str, ...]:
    return ("--ssl-certfile", str(cert[0]), "--ssl-keyfile", str(cert[1]), "--port", "0")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_serves_https(cert: tuple[Path, Path], app_dir: Path, workers: str) -> None:
    args = ("tlsapp:app", "--workers", workers, *_tls_args(cert))
    with SquallProcess(app_dir, *args) as server:
        url = server.wait_ready()
        assert url.startswith("https://127.0.0.1:")
        got = asyncio.run(_fetch(f"{url}/describe", _client_context(cert)))
        assert got["secure"] is True and got["scheme"] == "https"
        assert server.stop()[0] == 0


def test_cli_asgi_scope_scheme_is_https(cert: tuple[Path, Path], app_dir: Path) -> None:
    with SquallProcess(app_dir, "tlsapp:asgi", *_tls_args(cert)) as server:
        url = server.wait_ready()
        assert asyncio.run(_fetch(f"{url}/", _client_context(cert))) == {"scheme": "https"}
        assert server.stop()[0] == 0


def _plain_http(port: int) -> bytes:
    """Speak plain HTTP to the port; return what comes back before the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /describe HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    return data


@pytest.mark.parametrize("module", [web, aioweb], ids=["squall", "aiohttp"])
def test_plain_http_to_a_tls_port_is_closed(cert: tuple[Path, Path], module: Any) -> None:
    ctx = _server_context(cert)
    server = TLSServer(module, lambda r: module.TCPSite(r, "127.0.0.1", 0, ssl_context=ctx))
    server.start()
    try:
        port = server.site._server.sockets[0].getsockname()[1]
        answer = _plain_http(port)  # returns: the server closed (a timeout would raise)
        assert not answer.startswith(b"HTTP/")
        # ... and the server goes on serving TLS.
        got = asyncio.run(_fetch(f"https://127.0.0.1:{port}/describe", _client_context(cert)))
        assert got["secure"] is True
    finally:
        server.stop()


def test_cli_plain_http_to_tls_port_logs_no_error(cert: tuple[Path, Path], app_dir: Path) -> None:
    with SquallProcess(app_dir, "tlsapp:app", *_tls_args(cert)) as server:
        url = server.wait_ready()
        assert not _plain_http(server.port).startswith(b"HTTP/")
        got = asyncio.run(_fetch(f"{url}/describe", _client_context(cert)))
        assert got["secure"] is True
        assert server.stop()[0] == 0
        stderr = server.stderr()
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr


def _key(where: Path, name: str, *extra: str) -> Path:
    path = where / name
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            *extra,
            "-out",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_tls_file_errors_name_the_option_and_the_file(
    cert: tuple[Path, Path], app_dir: Path, workers: str
) -> None:
    """Each bad TLS file is one line naming the option and the file, before anything listens."""
    certfile, keyfile = (str(p) for p in cert)
    (app_dir / "junk.pem").write_text("not PEM\n")
    (app_dir / "both.pem").write_text(cert[0].read_text() + cert[1].read_text())
    other = str(_key(app_dir, "other.pem"))
    locked = str(_key(app_dir, "locked.pem", "-aes256", "-pass", "pass:secret"))
    cases = [
        (("--ssl-certfile", "nope.pem"), "--ssl-certfile nope.pem: No such file or directory"),
        (
            ("--ssl-certfile", certfile, "--ssl-keyfile", "nokey.pem"),
            "--ssl-keyfile nokey.pem: No such file or directory",
        ),
        (
            ("--ssl-certfile", certfile),
            f"--ssl-certfile {certfile} holds no private key: give the key with --ssl-keyfile",
        ),
        (
            ("--ssl-certfile", certfile, "--ssl-keyfile", other),
            f"--ssl-certfile {certfile} and --ssl-keyfile {other}: the key is not the "
            "certificate's",
        ),
        (
            ("--ssl-certfile", "junk.pem", "--ssl-keyfile", keyfile),
            "--ssl-certfile junk.pem: no PEM certificate in it",
        ),
        (
            ("--ssl-certfile", certfile, "--ssl-keyfile", "junk.pem"),
            "--ssl-keyfile junk.pem: no PEM private key in it",
        ),
        (
            ("--ssl-certfile", certfile, "--ssl-keyfile", locked),
            f"--ssl-keyfile {locked}: the private key is encrypted; squall takes an "
            "unencrypted key (openssl pkey -in KEY -out NEW)",
        ),
    ]
    for args, message in cases:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "squall",
                "tlsapp:app",
                "--port",
                "0",
                "--workers",
                workers,
                *args,
            ],
            cwd=app_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (result.returncode, result.stdout) == (1, ""), (args, result.stderr)
        assert result.stderr.splitlines() == [f"squall: {message}"], args
    # A certificate file that holds its key too needs no --ssl-keyfile.
    with SquallProcess(
        app_dir, "tlsapp:app", "--ssl-certfile", "both.pem", "--port", "0"
    ) as server:
        url = server.wait_ready()
        got = asyncio.run(_fetch(f"{url}/describe", _client_context(cert)))
        assert got["scheme"] == "https"
        assert server.stop()[0] == 0
