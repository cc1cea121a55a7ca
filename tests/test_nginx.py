"""squall behind a real nginx, configured by the shipped deploy/nginx/squall.conf.

nginx runs in the foreground as an ordinary process (pid, logs and temp files in a tmp dir, one
worker) on ephemeral loopback ports, in front of two ``python -m squall`` instances serving
tests/nginx_app.py. The site file is used as shipped with only its listen ports, upstream
addresses and certificate swapped (``render_site`` fails if any of them is missing).

Clients connect from 127.0.0.2, so that the address squall reports (from X-Forwarded-For) is
told apart from nginx's own 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .server_process import SquallProcess, run_load

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "squall.conf"
TESTS = Path(__file__).resolve().parent
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
)
CLIENT = "127.0.0.2"  # the test client's source address: loopback, but not nginx's
TIMEOUT = 10.0

pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="needs the nginx binary (CI: .ci/run installs it)"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for nginx's cert"),
]

MAIN_CONF = """\
{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {d}/access.log;
    gzip on;  # as Debian's nginx.conf
    gzip_types text/plain;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/squall.conf;
}}
"""


def render_site(
    *,
    cert: tuple[Path, Path],
    upstreams: tuple[int, int] | None = None,
    http_port: int | None = None,
    tls_port: int | None = None,
) -> str:
    """deploy/nginx/squall.conf with the certificate (and, if given, ports) swapped."""
    text = SITE.read_text()
    swaps = {
        "/etc/ssl/certs/example.com.pem": str(cert[0]),
        "/etc/ssl/private/example.com.key": str(cert[1]),
    }
    if upstreams is not None:
        swaps["127.0.0.1:8001"] = f"127.0.0.1:{upstreams[0]}"
        swaps["127.0.0.1:8002"] = f"127.0.0.1:{upstreams[1]}"
    if http_port is not None and tls_port is not None:
        swaps["listen 80;"] = f"listen 127.0.0.1:{http_port};"
        swaps["listen [::]:80;"] = ""
        swaps["listen 443 ssl http2;"] = f"listen 127.0.0.1:{tls_port} ssl http2;"
        swaps["listen [::]:443 ssl http2;"] = ""
    for old, new in swaps.items():
        assert text.count(old) == 1, f"{SITE.name} no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


def write_conf(where: Path, site: str) -> Path:
    """nginx.conf for an unprivileged-friendly nginx whose files all live in ``where``."""
    (where / "squall.conf").write_text(site)
    # As root, nginx would run its worker as nobody, who cannot use a 0700 tmp dir.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    conf = where / "nginx.conf"
    conf.write_text(MAIN_CONF.format(user=user, d=where))
    return conf


def nginx_command(conf: Path, *extra: str) -> list[str]:
    assert NGINX is not None
    d = str(conf.parent)
    return [NGINX, "-p", d, "-e", f"{d}/error.log", "-c", str(conf), *extra]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    where = tmp_path_factory.mktemp("nginx-tls")
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


class Cluster:
    """nginx (deploy/nginx/squall.conf) in front of two squall instances."""

    def __init__(self, where: Path, cert: tuple[Path, Path]) -> None:
        self.where = where
        self.cert = cert
        self.instances: list[SquallProcess] = []
        self.nginx: subprocess.Popen[bytes] | None = None
        self.http_port = self.tls_port = 0

    def start(self) -> None:
        args = ["nginx_app:app", "--app-dir", str(TESTS), "--port", "0", "--no-access-log"]
        args += ["--timeout-graceful-shutdown", "5"]
        self.instances = [SquallProcess(self.where, *args) for _ in range(2)]
        for instance in self.instances:
            instance.wait_ready()
        for _attempt in range(3):  # a picked port may be taken before nginx binds it
            self.http_port, self.tls_port = free_port(), free_port()
            site = render_site(
                cert=self.cert,
                upstreams=(self.instances[0].port, self.instances[1].port),
                http_port=self.http_port,
                tls_port=self.tls_port,
            )
            conf = write_conf(self.where, site)
            self.nginx = subprocess.Popen(
                [*nginx_command(conf, "-g", "daemon off;")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            if self._wait_listening():
                return
            self.stop_nginx()
            if "Address already in use" not in self.error_log():
                break
        raise AssertionError(f"nginx did not start: {self.error_log()}")

    def _wait_listening(self) -> bool:
        assert self.nginx is not None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.nginx.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pids(self) -> set[int]:
        return {instance.pid for instance in self.instances}

    def error_log(self) -> str:
        path = self.where / "error.log"
        return path.read_text() if path.exists() else ""

    def stop_nginx(self) -> None:
        if self.nginx is None:
            return
        try:
            os.killpg(self.nginx.pid, signal.SIGKILL)  # the master and its worker
        except ProcessLookupError:
            pass
        self.nginx.wait(TIMEOUT)
        self.nginx = None

    def close(self) -> None:
        try:
            self.stop_nginx()
        finally:
            for instance in self.instances:
                instance.kill()


def _cluster(where: Path, cert: tuple[Path, Path]) -> Iterator[Cluster]:
    cluster = Cluster(where, cert)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, cert: tuple[Path, Path]) -> Iterator[Cluster]:
    """Shared by the tests that leave both instances running."""
    yield from _cluster(tmp_path_factory.mktemp("nginx"), cert)


@pytest.fixture
def fresh_cluster(tmp_path: Path, cert: tuple[Path, Path]) -> Iterator[Cluster]:
    yield from _cluster(tmp_path, cert)


def client(**kwargs: Any) -> aiohttp.ClientSession:
    """A session whose connections come from 127.0.0.2."""
    connector = aiohttp.TCPConnector(local_addr=(CLIENT, 0), **kwargs)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(TIMEOUT))


def direct_json(port: int, path: str) -> Any:
    """GET straight from an instance, bypassing nginx."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data.partition(b"\r\n\r\n")[2])


# -- the shipped config ----------------------------------------------------------------------


def test_shipped_config_passes_nginx_t(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    """`nginx -t` on deploy/nginx/squall.conf with only the certificate swapped (-t binds
    no port, so listen 80/443 stay as shipped)."""
    conf = write_conf(tmp_path, render_site(cert=cert))
    done = subprocess.run(nginx_command(conf, "-t"), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


# -- through nginx ---------------------------------------------------------------------------


def test_requests_reach_both_instances_with_the_clients_address(cluster: Cluster) -> None:
    async def main() -> list[dict[str, Any]]:
        async with client() as session:
            answers = []
            for _ in range(8):
                async with session.get(f"{cluster.url}/info", headers={"Host": "app.example"}) as r:
                    assert r.status == 200
                    answers.append(await r.json())
            # A client's own X-Forwarded-For is kept and nginx appends the real peer, which
            # squall (trusting only 127.0.0.1) takes as the client.
            spoof = {"Host": "app.example", "X-Forwarded-For": "203.0.113.9"}
            async with session.get(f"{cluster.url}/info", headers=spoof) as r:
                answers.append(await r.json())
            return answers

    answers = asyncio.run(main())
    assert {a["pid"] for a in answers} == cluster.pids  # round robin over both
    for answer in answers:
        assert answer["peer"] == "127.0.0.1"  # the socket is nginx's ...
        assert answer["remote"] == CLIENT  # ... the client is ours, from X-Forwarded-For
        assert (answer["scheme"], answer["secure"]) == ("http", False)
        assert answer["host"] == "app.example"
        assert answer["url"] == "http://app.example/info"
    assert answers[-1]["x_forwarded_for"] == f"203.0.113.9, {CLIENT}"


def test_tls_at_nginx_is_https_for_the_application(cluster: Cluster) -> None:
    context = ssl.create_default_context(cafile=str(cluster.cert[0]))

    async def main() -> dict[str, Any]:
        async with (
            client(ssl=context) as session,
            session.get(f"https://127.0.0.1:{cluster.tls_port}/info") as r,
        ):
            assert r.status == 200
            result: dict[str, Any] = await r.json()
            return result

    answer = asyncio.run(main())
    assert (answer["scheme"], answer["secure"]) == ("https", True)  # X-Forwarded-Proto
    assert answer["remote"] == CLIENT
    # `Host $host` drops the port: right on 443, and said in docs/deployment.md.
    assert answer["url"] == "https://127.0.0.1/info"


def _stream(cluster: Cluster, query: str) -> tuple[bytes, list[float], str]:
    """The body of /stream, and when each piece arrived (seconds from the request)."""

    async def main() -> tuple[bytes, list[float], str]:
        async with client() as session:
            started, times, body = time.monotonic(), [], b""
            async with session.get(f"{cluster.url}/stream?{query}") as r:
                assert r.status == 200
                async for piece in r.content.iter_any():  # gunzipped by aiohttp
                    times.append(time.monotonic() - started)
                    body += piece
                return body, times, r.headers.get("Content-Encoding", "")

    return asyncio.run(main())


def test_streamed_response_arrives_piece_by_piece(cluster: Cluster) -> None:
    """With `X-Accel-Buffering: no` each piece is passed on at once, even through nginx's
    gzip (on here, as in Debian's stock nginx.conf); buffered, gzip holds the whole body."""
    n, delay = 6, 0.15
    expected = b"".join(f"{i:<999}\n".encode() for i in range(n))
    body, times, encoding = _stream(cluster, f"n={n}&delay={delay}")
    assert (body, encoding) == (expected, "gzip")
    assert times[-1] - times[0] >= (n - 2) * delay, times  # the pieces came over time
    body, times, encoding = _stream(cluster, f"n={n}&delay={delay}&buffered=1")
    assert (body, encoding) == (expected, "gzip")
    assert times[0] >= (n - 1) * delay, times  # nothing before the handler was done


def test_post_bodies(cluster: Cluster) -> None:
    payload = os.urandom(300_000)  # over client_body_buffer_size: nginx spools it to disk

    async def chunked() -> Any:
        for i in range(0, len(payload), 65536):
            yield payload[i : i + 65536]

    async def main() -> list[dict[str, Any]]:
        results = []
        async with client() as session:
            for data in (payload, chunked()):
                async with session.post(f"{cluster.url}/echo", data=data) as r:
                    assert r.status == 200
                    results.append(await r.json())
        return results

    digest = hashlib.sha256(payload).hexdigest()
    for result in asyncio.run(main()):  # sized, then chunked (nginx passes it on sized)
        assert result == {"size": len(payload), "sha256": digest}


def test_websocket_echo(cluster: Cluster) -> None:
    blob = os.urandom(100_000)

    async def main() -> tuple[dict[str, Any], str, bytes, int | None]:
        async with client() as session, session.ws_connect(f"{cluster.url}/ws") as ws:
            hello = await ws.receive_json(timeout=TIMEOUT)
            await ws.send_str("hello through nginx")
            text = await ws.receive_str(timeout=TIMEOUT)
            await ws.send_bytes(blob)
            data = await ws.receive_bytes(timeout=TIMEOUT)
            await ws.close()
            return hello, text, data, ws.close_code

    hello, text, data, code = asyncio.run(main())
    assert hello["pid"] in cluster.pids and hello["remote"] == CLIENT
    assert (text, data, code) == ("hello through nginx", blob, 1000)


def test_upstream_keepalive_is_used(cluster: Cluster) -> None:
    """nginx's `keepalive` pool: many requests, few connections accepted by squall."""
    ports = [instance.port for instance in cluster.instances]
    before = sum(direct_json(port, "/peers")["connections"] for port in ports)
    tally = run_load(cluster.http_port, seconds=1.0, concurrency=4)
    opened = sum(direct_json(port, "/peers")["connections"] for port in ports) - before
    print(f"keep-alive: {tally.ok} requests through nginx, {opened} new upstream connections")
    assert tally.errors == 0 and set(tally.pids) == {str(p) for p in cluster.pids}
    # 4 requests in flight at most, so about 4 connections per instance; without the
    # keepalive line it is one per request.
    assert 1 <= opened <= 16 and tally.ok >= 50 * opened


# -- one instance stops ----------------------------------------------------------------------

REFUSED = re.compile(r"\[error\].*Connection refused\) while connecting to upstream")
BROKEN = re.compile(r"\[error\].*(?:prematurely closed|reset by peer|Broken pipe).*upstream")


def test_sigterm_one_instance_traffic_goes_on(fresh_cluster: Cluster) -> None:
    """SIGTERM to one instance in the middle of traffic: nginx moves to the other, and the
    clients see no failure (every answer is a pid, none a 502)."""
    stopping, other = fresh_cluster.instances
    tally = run_load(
        fresh_cluster.http_port,
        seconds=2.5,
        concurrency=4,
        path="/?t=0.005",  # so that requests are in flight on the instance when it stops
        actions=[(1.0, lambda: stopping.send_signal(signal.SIGTERM))],
    )
    assert stopping.wait(TIMEOUT) == 0
    pids = {str(p) for p in fresh_cluster.pids}
    failed = tally.errors + sum(n for body, n in tally.pids.items() if body not in pids)
    log = fresh_cluster.error_log()
    refused, broken = len(REFUSED.findall(log)), len(BROKEN.findall(log))
    after = run_load(fresh_cluster.http_port, seconds=0.5, concurrency=4)
    print(
        f"switch: {tally.ok} answers during the run ({dict(tally.pids)}), {failed} failed; "
        f"nginx retried {refused} refused connection(s) and {broken} broken one(s) on the other "
        f"instance; after the stop {after.ok} answers "
        f"({dict(after.pids)}), {after.errors} failed"
    )
    assert failed == 0, (tally, log)
    assert set(tally.pids) == pids  # both served before the stop
    assert after.errors == 0 and set(after.pids) == {str(other.pid)}
