"""HTTP/2 over TLS with the user's own SSLContext: squall sets ALPN on it while HTTP/2 is on.

The contexts here are made as a user makes them (``ssl.create_default_context`` and
``load_cert_chain``, no ALPN): ``run_app(ssl_context=ctx)``, a site, and
``squall.asgi.serve(ssl=ctx)`` must negotiate ``h2`` with curl ``--http2`` and httpx as the
``squall`` command does; with ``http2=False`` the context is left as given.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from squall import web
from squall.asgi import serve

from .h2_framework_apps import Probe, make_starlette_app
from .loop_thread import LoopThread
from .server_process import SquallProcess

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

needs_curl = pytest.mark.skipif(
    shutil.which("curl") is None
    or "HTTP2" not in subprocess.run(["curl", "-V"], capture_output=True, text=True).stdout,
    reason="curl without HTTP/2",
)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, as (certfile, keyfile)."""
    where = tmp_path_factory.mktemp("h2tls")
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


def user_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    """A server context as a user makes one: no ALPN of its own."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    return ctx


def selected_alpn(port: int, cert: tuple[Path, Path]) -> str | None:
    """The protocol the server picks when a client offers h2 and http/1.1."""
    client = ssl.create_default_context(cafile=str(cert[0]))
    client.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        return sock.selected_alpn_protocol()


def curl(url: str, cert: tuple[Path, Path], *args: str) -> bytes:
    return subprocess.run(
        ["curl", "-s", "-i", "--http2", "--cacert", str(cert[0]), *args, url],
        capture_output=True,
        timeout=10,
        check=True,
    ).stdout


class SiteServer(LoopThread):
    """An aiohttp.web app on ``AppRunner`` + ``TCPSite(ssl_context=...)``, in a thread."""

    def __init__(self, ctx: ssl.SSLContext, http2: bool = True) -> None:
        super().__init__()
        self.ctx = ctx
        self.http2 = http2
        self.port = 0

    async def serve(self, stop: asyncio.Event) -> None:
        async def hello(request: web.Request) -> web.Response:
            return web.Response(text=f"{request.version.major} {request.scheme}")

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, http2=self.http2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self.ctx)
        await site.start()
        self.port = site.port
        self.ready()
        await stop.wait()
        await runner.cleanup()


RUN_APP = """
import socket, ssl, sys
from squall import web

async def hello(request):
    return web.Response(text=f"{request.version.major} {request.scheme}")

app = web.Application()
app.router.add_get("/", hello)
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
web.run_app(app, sock=sock, ssl_context=ctx, print=lambda text: print(text, flush=True))
"""


@needs_curl
def test_run_app_with_a_users_context_speaks_h2(cert: tuple[Path, Path], tmp_path: Path) -> None:
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
        url = "https://" + line.split("https://")[1].split()[0] + "/"
        out = curl(url, cert)
        verify = ssl.create_default_context(cafile=str(cert[0]))
        with httpx.Client(http2=True, verify=verify) as c:
            r = c.get(url)
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    assert out.startswith(b"HTTP/2 200") and out.endswith(b"\r\n\r\n2 https"), out
    assert (r.http_version, r.text) == ("HTTP/2", "2 https")


@needs_curl
def test_site_with_a_users_context(cert: tuple[Path, Path]) -> None:
    srv = SiteServer(user_context(cert)).start()
    try:
        url = f"https://127.0.0.1:{srv.port}/"
        assert selected_alpn(srv.port, cert) == "h2"
        h2 = curl(url, cert)
        h1 = curl(url, cert, "--http1.1")  # a client without h2 still gets HTTP/1.1
    finally:
        srv.stop()
    assert h2.startswith(b"HTTP/2 200") and h2.endswith(b"2 https")
    assert h1.startswith(b"HTTP/1.1 200") and h1.endswith(b"1 https")


def test_http2_off_leaves_the_context_as_given(cert: tuple[Path, Path]) -> None:
    """No ALPN set on the context: a client offering h2 negotiates nothing, and speaks 1.1."""
    srv = SiteServer(user_context(cert), http2=False).start()
    try:
        assert selected_alpn(srv.port, cert) is None
        verify = ssl.create_default_context(cafile=str(cert[0]))
        with httpx.Client(http2=True, verify=verify) as c:
            r = c.get(f"https://127.0.0.1:{srv.port}/")
    finally:
        srv.stop()
    assert (r.http_version, r.text) == ("HTTP/1.1", "1 https")


class AsgiTLSServer(LoopThread):
    """The Starlette app on ``squall.asgi.serve(ssl=ctx)``, in a thread."""

    def __init__(self, ctx: ssl.SSLContext, static_dir: Path) -> None:
        super().__init__()
        self.ctx = ctx
        self.app = make_starlette_app(Probe(), static_dir)
        self.port = 0

    async def serve(self, stop: asyncio.Event) -> None:
        async with serve(self.app, "127.0.0.1", 0, ssl=self.ctx) as server:
            self.port = server.port
            self.ready()
            await stop.wait()


@pytest.fixture(scope="module")
def asgi_tls(cert: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    where = tmp_path_factory.mktemp("h2tlsstatic")
    (where / "big.bin").write_bytes(bytes(range(256)) * 1200)  # past the 64 KiB window
    (where / "hello.txt").write_text("hello\n")
    srv = AsgiTLSServer(user_context(cert), where).start()
    try:
        yield srv, where
    finally:
        srv.stop()


def test_asgi_serve_with_a_users_context(cert: tuple[Path, Path], asgi_tls: Any) -> None:
    srv, where = asgi_tls
    base = f"https://127.0.0.1:{srv.port}"
    verify = ssl.create_default_context(cafile=str(cert[0]))
    data = (where / "big.bin").read_bytes()

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(http2=True, verify=verify, timeout=10) as c:
            # the upload alone: httpcore's HTTP/2 upload stalls when another stream reads the
            # WINDOW_UPDATE it waits for (pydantic/httpx2#1133); h2load uploads concurrently
            # in tests/test_http2_clients.py
            echo = await c.post(base + "/echo", content=data)
            return [
                echo,
                *await asyncio.gather(
                    c.get(base + "/"),
                    c.get(base + "/file"),
                    c.get(base + "/static/big.bin", headers={"Range": "bytes=1000-1999"}),
                    *(c.get(base + f"/sleepy?n={i}") for i in range(10)),
                ),
            ]

    echo, hello, file, part, *slept = asyncio.run(run())
    assert all(r.http_version == "HTTP/2" for r in (hello, echo, file, part, *slept))
    assert hello.text == "Hello, World!"
    assert echo.content == data and file.content == data
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert [r.text for r in slept] == [str(i) for i in range(10)]


@needs_curl
def test_asgi_serve_tls_with_curl(cert: tuple[Path, Path], asgi_tls: Any) -> None:
    srv, _ = asgi_tls
    out = curl(f"https://127.0.0.1:{srv.port}/static/hello.txt", cert)
    assert out.startswith(b"HTTP/2 200") and out.endswith(b"\r\n\r\nhello\n")


@pytest.mark.skipif(shutil.which("h2load") is None, reason="needs h2load (Debian: nghttp2-client)")
def test_h2load_over_tls(cert: tuple[Path, Path], asgi_tls: Any) -> None:
    """h2load offers h2 by ALPN and gets it from the user's context; all answered."""
    srv, _ = asgi_tls
    out = subprocess.run(
        [*("h2load", "-n", "500", "-c", "2", "-m", "10"), f"https://127.0.0.1:{srv.port}/"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    assert "Application protocol: h2\n" in out, out
    assert "500 succeeded, 0 failed, 0 errored, 0 timeout" in out, out
    assert "status codes: 500 2xx" in out, out


CLI_APP = """
from squall import web

async def hello(request):
    return web.Response(text=f"{request.version.major} {request.scheme}")

app = web.Application()
app.router.add_get("/", hello)


async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"{scope['http_version'][0]} {scope['scheme']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""


@needs_curl
@pytest.mark.parametrize(
    ("target", "flag", "alpn"),
    [
        ("h2tlsapp:app", "--http2", "h2"),
        ("h2tlsapp:asgi", "--http2", "h2"),
        ("h2tlsapp:app", "--no-http2", "http/1.1"),
    ],
)
def test_cli_tls_alpn(
    cert: tuple[Path, Path], tmp_path: Path, target: str, flag: str, alpn: str
) -> None:
    """The command line's own context: h2 first, or http/1.1 alone with --no-http2, on both
    interfaces (their listeners are made in different places)."""
    (tmp_path / "h2tlsapp.py").write_text(textwrap.dedent(CLI_APP))
    args = (target, flag, "--ssl-certfile", str(cert[0]), "--ssl-keyfile", str(cert[1]))
    with SquallProcess(tmp_path, *args, "--port", "0") as server:
        url = server.wait_ready()
        assert selected_alpn(server.port, cert) == alpn
        out = curl(url + "/", cert)
        assert server.stop()[0] == 0
    version = b"2" if alpn == "h2" else b"1"
    assert out.startswith(b"HTTP/2 200" if alpn == "h2" else b"HTTP/1.1 200"), out
    assert out.endswith(b"\r\n\r\n" + version + b" https"), out
