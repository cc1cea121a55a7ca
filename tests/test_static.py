"""Static files on a real server: escapes from the root over raw sockets, large files sent exactly
and without buffering them, slow and vanishing readers, TLS, and what the differential suite
(tests/compat/apps/static_files.py) cannot compare with aiohttp."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from squall import web
from squall.http import sendfile as sendfile_module
from squall.web.fileresponse import accepted_codings

from .conftest import ServerThread, raw_request, serve
from .loop_thread import LoopThread

BIG_SIZE = 20 * 1024 * 1024
BIG_BODY = 12 * 1024 * 1024  # more than the kernel buffers: part waits in the transport
SECRET = b"top secret, outside the root\n"

events: list[str] = []
ROOT = web.AppKey("root", Path)


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/ (served) with files, a big one and symlinks; secret.txt next to it, outside."""
    base = tmp_path_factory.mktemp("static")
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"hello\n")
    (root / "sub" / "inner.txt").write_bytes(b"inner\n")
    (root / "page.js").write_bytes(b"plain js\n")
    (root / "page.js.gz").write_bytes(b"gzipped js")
    (root / "page.js.br").write_bytes(b"brotli js")
    (root / "a\\b.txt").write_bytes(b"a backslash in the name\n")
    (base / "secret.txt").write_bytes(SECRET)
    os.symlink(base / "secret.txt", root / "link-out.txt")
    os.symlink(base, root / "dir-out")
    os.symlink(root / "hello.txt", root / "link-in.txt")
    os.symlink(root / "loop-a", root / "loop-b")
    os.symlink(root / "loop-b", root / "loop-a")
    os.mkfifo(root / "fifo")
    block = hashlib.sha256(b"squall").digest() * 2048  # 64 KiB that do not repeat trivially
    with open(root / "big.bin", "wb") as f:
        for i in range(BIG_SIZE // len(block)):
            f.write(bytes([i % 251]) + block[1:])
    return root


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def tracked(request: web.Request) -> web.StreamResponse:
    """Sends big.bin itself, so the test sees when the whole file has been handed over."""
    resp = web.FileResponse(request.app[ROOT] / "big.bin")
    try:
        await resp.prepare(request)
    except ConnectionResetError:
        events.append("reset")
        raise
    events.append("sent")
    return resp


async def big_body(request: web.Request) -> web.Response:
    return web.Response(body=b"r" * BIG_BODY)


async def compressed(request: web.Request) -> web.StreamResponse:
    resp = web.FileResponse(request.app[ROOT] / "big.bin", chunk_size=100_000)
    resp.enable_compression()
    return resp


def _app(root: Path) -> web.Application:
    app = web.Application()
    app[ROOT] = root
    app.router.add_static("/static", root, name="static")
    app.router.add_static("/follow", root, follow_symlinks=True)
    app.router.add_static("/listing", root, show_index=True)
    app.router.add_get("/tracked", tracked)
    app.router.add_get("/big-body", big_body)
    app.router.add_get("/compressed", compressed)
    return app


@pytest.fixture(scope="module")
def srv(tree: Path) -> Iterator[ServerThread]:
    with serve(_app(tree)) as server:
        yield server


@pytest.fixture
def no_sendfile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sendfile_module, "NOSENDFILE", True)


# --------------------------------------------------------------------------------------------
# helpers


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _get(port: int, target: str, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    request = f"GET {target} HTTP/1.1\r\nHost: x\r\n{head}Connection: close\r\n\r\n"
    return raw_request(port, request.encode("latin-1"))


def _read_response(sock: socket.socket, *, head_only: bool = False) -> tuple[bytes, bytes]:
    """One response with a Content-Length body (or none, for HEAD) off a raw socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the head: {buf!r}"
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    if head_only:
        return head, body
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    chunks = [body]
    got = len(body)
    while got < length:
        chunk = sock.recv(min(1 << 20, length - got))
        assert chunk, f"closed after {got} of {length} body bytes"
        chunks.append(chunk)
        got += len(chunk)
    return head, b"".join(chunks)


def _slow_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def _wait_for(cond: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _tasks(server: ServerThread) -> int:
    loop = server.loop
    assert loop is not None
    return int(server.call(lambda: len([t for t in asyncio.all_tasks(loop) if not t.done()])))


def _write_buffer_sizes(server: ServerThread) -> list[int]:
    assert server.runner is not None and server.runner.server is not None
    conns = server.runner.server.connections
    return list(
        server.call(
            lambda: [c.transport.get_write_buffer_size() for c in conns if c.transport is not None]
        )
    )


# --------------------------------------------------------------------------------------------
# nothing leaves the root


ESCAPES = [
    "/static/../secret.txt",
    "/static/sub/../../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2e/secret.txt",
    "/static/%2E%2E%2Fsecret.txt",
    "/static/..%2fsecret.txt",
    "/static/..%2Fsecret.txt",
    "/static/sub/..%2f..%2fsecret.txt",
    "/static/..\\secret.txt",
    "/static/%5c..%5csecret.txt",
    "/static/sub\\..\\..\\secret.txt",
    "/static//" + "{secret}",
    "/static/%2F{secret}",
    "/static/hello.txt%00/../../secret.txt",
    "/static/%00",
    "/static/link-out.txt",
    "/static/dir-out/secret.txt",
    "/follow/../secret.txt",
    "/follow/%2e%2e/secret.txt",
    "/follow/..%2fsecret.txt",
    "/follow/sub/..%2F..%2Fsecret.txt",
]


@pytest.mark.parametrize("target", ESCAPES)
def test_no_escape_from_the_root(srv: ServerThread, tree: Path, target: str) -> None:
    secret = str(tree.parent / "secret.txt").lstrip("/")
    response = _get(srv.port, target.replace("{secret}", secret))
    assert SECRET not in response
    assert _status(response) == 404, response[:200]


def test_nul_byte_in_raw_path_is_refused(srv: ServerThread) -> None:
    """A raw NUL never reaches the file system: the request line itself is refused."""
    response = raw_request(srv.port, b"GET /static/hello.txt\x00.png HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status(response) == 400
    assert b"hello" not in response.partition(b"\r\n\r\n")[2]


def test_symlinks_inside_and_followed(srv: ServerThread) -> None:
    assert _get(srv.port, "/static/link-in.txt").endswith(b"\r\n\r\nhello\n")
    followed = _get(srv.port, "/follow/link-out.txt")
    assert _status(followed) == 200 and followed.endswith(SECRET)
    assert _get(srv.port, "/follow/dir-out/secret.txt").endswith(SECRET)


def test_symlink_loop_is_404(srv: ServerThread) -> None:
    assert _status(_get(srv.port, "/static/loop-a")) == 404
    assert _status(_get(srv.port, "/follow/loop-a")) == 404


def test_names_too_long_are_404(srv: ServerThread) -> None:
    assert _status(_get(srv.port, "/static/" + "a" * 300)) == 404
    assert _status(_get(srv.port, "/follow/" + "a/" * 2100)) == 404


def test_backslash_is_part_of_a_name(srv: ServerThread) -> None:
    response = _get(srv.port, "/static/a%5Cb.txt")
    assert response.endswith(b"a backslash in the name\n")


def test_fifo_is_forbidden_without_blocking(srv: ServerThread) -> None:
    started = time.monotonic()
    assert _status(_get(srv.port, "/static/fifo")) == 403
    assert time.monotonic() - started < 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_forbidden(srv: ServerThread, tree: Path) -> None:
    path = tree / "locked.txt"
    path.write_bytes(b"locked")
    path.chmod(0)
    try:
        assert _status(_get(srv.port, "/static/locked.txt")) == 403
    finally:
        path.unlink()


def test_directory_is_forbidden_or_listed(srv: ServerThread) -> None:
    assert _status(_get(srv.port, "/static/sub")) == 403
    listing = _get(srv.port, "/listing/sub")
    assert _status(listing) == 200
    assert b'<li><a href="/listing/sub/inner.txt">inner.txt</a></li>' in listing
    assert b"secret" not in _get(srv.port, "/listing/dir-out/")  # not followed: 404


# --------------------------------------------------------------------------------------------
# large files


@pytest.mark.parametrize("path", ["sendfile", "reads"])
def test_large_file_exact(
    srv: ServerThread, tree: Path, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sendfile_module, "NOSENDFILE", path == "reads")

    async def fetch() -> tuple[int, str, bytes]:
        async with aiohttp.ClientSession() as session:
            url = f"{srv.url}/static/big.bin"
            async with session.get(url) as resp:
                body = await resp.read()
            async with session.get(url, headers={"Range": "bytes=1000000-2999999"}) as part:
                return resp.status, hashlib.sha256(body).hexdigest(), await part.read()

    status, digest, part = asyncio.run(asyncio.wait_for(fetch(), 30))
    assert status == 200
    assert digest == _digest(tree / "big.bin")
    assert part == (tree / "big.bin").read_bytes()[1000000:3000000]


@pytest.mark.parametrize("path", ["sendfile", "reads"])
def test_slow_reader_is_not_buffered_for(
    srv: ServerThread, tree: Path, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the client reads slowly, the file stays on disk: the transport holds at most a
    chunk or so, and the response is not done. Then every byte arrives, in order."""
    monkeypatch.setattr(sendfile_module, "NOSENDFILE", path == "reads")
    events.clear()
    with _slow_socket(srv.port) as sock:
        sock.sendall(b"GET /tracked HTTP/1.1\r\nHost: x\r\n\r\n")
        head, first = _read_response(sock, head_only=True)
        assert b"Content-Length: %d" % BIG_SIZE in head
        time.sleep(0.5)
        assert events == []
        buffered = max(_write_buffer_sizes(srv))
        assert buffered <= (0 if path == "sendfile" else 512 * 1024)
        digest = hashlib.sha256(first)
        got = len(first)
        while got < BIG_SIZE:
            chunk = sock.recv(1 << 20)
            assert chunk
            digest.update(chunk)
            got += len(chunk)
        assert got == BIG_SIZE
        assert digest.hexdigest() == _digest(tree / "big.bin")
    assert _wait_for(lambda: events == ["sent"])


@pytest.mark.parametrize("path", ["sendfile", "reads"])
def test_client_gone_mid_file_leaves_nothing(
    srv: ServerThread, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sendfile_module, "NOSENDFILE", path == "reads")
    events.clear()
    assert _wait_for(lambda: srv.connections == 0)
    tasks, fds = _tasks(srv), _open_fds()
    with _slow_socket(srv.port) as sock:
        sock.sendall(b"GET /tracked HTTP/1.1\r\nHost: x\r\n\r\n")
        _read_response(sock, head_only=True)
        time.sleep(0.2)
        assert events == []
    assert _wait_for(lambda: events == ["reset"])
    assert _wait_for(lambda: srv.connections == 0)
    assert _wait_for(lambda: _tasks(srv) <= tasks)
    assert _wait_for(lambda: _open_fds() <= fds), os.listdir("/proc/self/fd")


def test_compressed_large_file(srv: ServerThread, tree: Path) -> None:
    """enable_compression() on a FileResponse: read in chunks, compressed, chunked."""

    async def fetch() -> tuple[str | None, str | None, bytes]:
        async with aiohttp.ClientSession() as session:
            headers = {"Accept-Encoding": "gzip"}
            async with session.get(f"{srv.url}/compressed", headers=headers) as resp:
                return (
                    resp.headers.get("Content-Encoding"),
                    resp.headers.get("Transfer-Encoding"),
                    await resp.read(),
                )

    coding, framing, body = asyncio.run(asyncio.wait_for(fetch(), 30))
    assert (coding, framing) == ("gzip", "chunked")
    assert hashlib.sha256(body).hexdigest() == _digest(tree / "big.bin")


def test_handler_cancellation_mid_file_leaves_nothing(tree: Path) -> None:
    events.clear()
    with serve(_app(tree), handler_cancellation=True) as server:
        tasks, fds = _tasks(server), _open_fds()
        with _slow_socket(server.port) as sock:
            sock.sendall(b"GET /tracked HTTP/1.1\r\nHost: x\r\n\r\n")
            _read_response(sock, head_only=True)
        assert _wait_for(lambda: server.connections == 0)
        assert _wait_for(lambda: _tasks(server) <= tasks)
        assert _wait_for(lambda: _open_fds() <= fds)
        assert "sent" not in events


@pytest.mark.parametrize("path", ["sendfile", "reads"])
def test_file_cut_short_while_sent_closes(
    tmp_path: Path, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file shrinks after its length went out in the head: the connection is closed after
    what there was, so the client sees a short body, never a response that runs into the next."""
    monkeypatch.setattr(sendfile_module, "NOSENDFILE", path == "reads")
    shrinking = tmp_path / "shrinking.bin"
    shrinking.write_bytes(b"s" * 1_000_000)
    app = web.Application()
    app.router.add_static("/static", tmp_path)

    async def truncate(request: web.Request, response: web.StreamResponse) -> None:
        os.truncate(shrinking, 1000)  # after open and fstat, before the body

    app.on_response_prepare.append(truncate)
    with serve(app) as server:
        response = raw_request(
            server.port, b"GET /static/shrinking.bin HTTP/1.1\r\nHost: x\r\n\r\n"
        )
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"Content-Length: 1000000" in head
    assert body == b"s" * 1000


def test_file_after_a_buffered_response_keeps_order(srv: ServerThread, tree: Path) -> None:
    """Pipelined behind a response still in the transport's buffer, the file waits for it."""
    with _slow_socket(srv.port) as sock:
        sock.sendall(
            b"GET /big-body HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        time.sleep(0.3)
        _, first = _read_response(sock)
        _, second = _read_response(sock)
        _, third = _read_response(sock)
    assert first == b"r" * BIG_BODY
    assert hashlib.sha256(second).hexdigest() == _digest(tree / "big.bin")
    assert third == b"hello\n"


def test_keep_alive_across_file_responses(srv: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        for target in ("/static/hello.txt", "/static/sub/inner.txt", "/static/missing"):
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head, _ = _read_response(sock)
            if target.endswith("missing"):
                assert head.startswith(b"HTTP/1.1 404")
        sock.sendall(b"HEAD /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        head, rest = _read_response(sock, head_only=True)
        assert b"Content-Length: %d" % BIG_SIZE in head and rest == b""
        sock.sendall(b"GET /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock)[1] == b"hello\n"


def test_http10_file(srv: ServerThread) -> None:
    response = raw_request(srv.port, b"GET /static/hello.txt HTTP/1.0\r\n\r\n")
    assert _status(response) == 200 and response.endswith(b"\r\n\r\nhello\n")


# --------------------------------------------------------------------------------------------
# TLS: no sendfile, reads through the transport


class TLSServer(LoopThread):
    def __init__(self, app: web.Application, context: ssl.SSLContext) -> None:
        super().__init__()
        self.app = app
        self.context = context
        self.port = 0

    async def serve(self, stop: asyncio.Event) -> None:
        runner = web.AppRunner(self.app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self.context)
        await site.start()
        self.port = runner.addresses[0][1]
        self.ready()
        await stop.wait()
        await runner.cleanup()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_large_file(tree: Path, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = TLSServer(_app(tree), context).start()
    try:
        client = ssl.create_default_context()
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with client.wrap_socket(raw) as sock:
            sock.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            _, body = _read_response(sock)
            sock.sendall(b"GET /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            _, small = _read_response(sock)
    finally:
        server.stop()
    assert hashlib.sha256(body).hexdigest() == _digest(tree / "big.bin")
    assert small == b"hello\n"


# --------------------------------------------------------------------------------------------
# where squall chooses (docs/compat.md) and API details


def test_accept_encoding_q0_refuses_a_coding(srv: ServerThread) -> None:
    assert _get(srv.port, "/static/page.js", "Accept-Encoding: br;q=0, gzip").endswith(
        b"gzipped js"
    )
    assert _get(srv.port, "/static/page.js", "Accept-Encoding: gzip;q=0").endswith(b"plain js\n")
    assert _get(srv.port, "/static/page.js", "Accept-Encoding: x-gzip").endswith(b"gzipped js")


def test_accepted_codings() -> None:
    assert accepted_codings("gzip, deflate, br") == {"gzip", "deflate", "br"}
    assert accepted_codings("gzip;q=0.5, br; q=0") == {"gzip"}
    assert accepted_codings("GZIP;Q=1.0, identity") == {"gzip", "identity"}
    assert accepted_codings("") == frozenset()


def test_if_range_with_an_etag(srv: ServerThread) -> None:
    head = _get(srv.port, "/static/hello.txt").partition(b"\r\n\r\n")[0].decode()
    etag = next(line for line in head.split("\r\n") if line.startswith("ETag:"))[6:]
    matching = _get(srv.port, "/static/hello.txt", "Range: bytes=0-1", f"If-Range: {etag}")
    assert _status(matching) == 206 and matching.endswith(b"he")
    stale = _get(srv.port, "/static/hello.txt", "Range: bytes=0-1", 'If-Range: "stale"')
    assert _status(stale) == 200 and stale.endswith(b"hello\n")
    weak = _get(srv.port, "/static/hello.txt", "Range: bytes=0-1", f"If-Range: W/{etag}")
    assert _status(weak) == 200


def test_url_for_and_route_defs(tree: Path) -> None:
    app = web.Application()
    resource = app.router.add_static("/s/", tree, name="s", append_version=True)
    assert isinstance(resource, web.StaticResource)
    url = resource.url_for(filename="hello.txt")
    assert url.path == "/s/hello.txt" and len(url.query["v"]) == 44
    assert resource.url_for(filename="hello.txt", append_version=False).query == {}
    assert "v" not in resource.url_for(filename="link-out.txt").query  # leads outside
    assert resource.url_for(filename="missing").query == {}
    assert resource.get_info()["directory"] == tree.resolve()
    assert sorted(route.method for route in resource) == ["GET", "HEAD"]

    routes = web.RouteTableDef()
    routes.static("/t", tree, show_index=True)
    table = [web.static("/u", tree), *routes]
    assert repr(table[0]) == f"<StaticDef /u -> {tree}>"
    assert "show_index=True" in repr(table[1])
    registered = app.router.add_routes(table)
    assert [route.method for route in registered] == ["GET", "HEAD", "GET", "HEAD"]

    with pytest.raises(ValueError, match="does not exist"):
        app.router.add_static("/x", tree / "missing")
    with pytest.raises(ValueError, match="is not a directory"):
        app.router.add_static("/x", tree / "hello.txt")


async def _options(request: web.Request) -> web.Response:
    return web.Response(text="preflight")


def test_options_route(tree: Path) -> None:
    app = web.Application()
    resource = app.router.add_static("/static", tree)
    resource.set_options_route(_options)
    with pytest.raises(RuntimeError):
        resource.set_options_route(_options)
    with serve(app) as server:
        response = raw_request(
            server.port,
            b"OPTIONS /static/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    assert response.endswith(b"preflight")


@web.middleware
async def stamp(request: web.Request, handler: Any) -> web.StreamResponse:
    resp = await handler(request)
    resp.headers["X-Stamp"] = type(resp).__name__
    return resp


def test_middleware_and_signal_see_the_file_response(tree: Path) -> None:
    app = web.Application(middlewares=[stamp])
    app.router.add_static("/static", tree)
    seen: list[str] = []

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        seen.append(response.headers.get("Content-Type", ""))

    app.on_response_prepare.append(on_prepare)
    with serve(app) as server:
        response = _get(server.port, "/static/hello.txt")
    assert b"X-Stamp: FileResponse" in response and response.endswith(b"hello\n")
    assert seen == ["text/plain"]
