"""The PROXY protocol (v1 text, v2 binary) in front of squall: the parser alone, then raw
sockets against a real server (both interfaces, HTTP/2 too), then HAProxy with send-proxy-v2."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from squall import web
from squall.cli import parse_config
from squall.http.proxy_protocol import (
    V1_MAX,
    V2_MAX,
    V2_SIGNATURE,
    ProxyHeaderError,
    parse,
)

from .apps import make_app
from .conftest import ServerThread, is_closed, raw_request, read_until_close, serve
from .test_asgi import ASGIThread

GET_INFO = b"GET /info/x HTTP/1.1\r\nHost: x\r\n\r\n"
GET_INFO_CLOSE = b"GET /info/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def v1(family: bytes, src: str, dst: str, sport: int, dport: int) -> bytes:
    return b"PROXY %s %s %s %d %d\r\n" % (family, src.encode(), dst.encode(), sport, dport)


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


def v2(
    src: str = "203.0.113.7",
    dst: str = "10.0.0.1",
    sport: int = 51234,
    dport: int = 443,
    *,
    command: int = 1,
    tlvs: bytes = b"",
    family: int | None = None,
) -> bytes:
    if ":" in src:
        af, fam = socket.AF_INET6, 0x21
    else:
        af, fam = socket.AF_INET, 0x11
    addresses = socket.inet_pton(af, src) + socket.inet_pton(af, dst)
    block = addresses + struct.pack("!HH", sport, dport) + tlvs
    fam = fam if family is None else family
    return V2_SIGNATURE + struct.pack("!BBH", 0x20 | command, fam, len(block)) + block


TLVS = tlv(0x01, b"h2") + tlv(0x04, b"") + tlv(0x20, b"\x01" + b"\x00" * 4) + tlv(0xEA, b"vpce-1")


# -- the parser alone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "client"),
    [
        (v1(b"TCP4", "198.51.100.22", "10.0.0.1", 35646, 80), ("198.51.100.22", 35646)),
        (v1(b"TCP6", "2001:db8::0:1", "2001:db8::2", 4711, 443), ("2001:db8::1", 4711)),
        (b"PROXY UNKNOWN\r\n", None),
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None),
        (v2(), ("203.0.113.7", 51234)),
        (v2(tlvs=TLVS), ("203.0.113.7", 51234)),
        (v2("2001:db8::7", "2001:db8::1", 1000, 80, tlvs=TLVS), ("2001:db8::7", 1000)),
        (v2(command=0), None),  # LOCAL: the proxy's own connection
        (v2(family=0x00), None),  # UNSPEC
    ],
)
def test_parse(header: bytes, client: tuple[str, int] | None) -> None:
    assert parse(header + b"GET / HTTP/1.1\r\n") == (len(header), client)
    for end in range(len(header)):  # every beginning of it asks for more
        assert parse(header[:end]) is None


def test_longest_v1_header() -> None:
    addresses = b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff " * 2
    longest = b"PROXY UNKNOWN " + addresses + b"65535 65535\r\n"  # the specification's worst
    assert len(longest) == V1_MAX
    assert parse(longest) == (V1_MAX, None)
    with pytest.raises(ProxyHeaderError):
        parse(longest[:-2] + b" \r\n")


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"POST / HTTP/1.1\r\n",  # starts with P, but not "PROXY "
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",  # the family's address
        b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 " + b"1" * 100,  # no CRLF within the bound
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        V2_SIGNATURE[:11] + b"X",
        V2_SIGNATURE + b"\x11\x11\x00\x0c" + b"\x00" * 12,  # version 1 in a v2 header
        V2_SIGNATURE + b"\x22\x11\x00\x0c" + b"\x00" * 12,  # command 2
        V2_SIGNATURE + b"\x21\x12\x00\x0c" + b"\x00" * 12,  # UDP
        V2_SIGNATURE + b"\x21\x11\x00\x08" + b"\x00" * 8,  # address block too short
        V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", V2_MAX),  # too long
        b"\x16\x03\x01\x02\x00",  # a TLS ClientHello
    ],
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(data)


# -- a real server: the aiohttp interface -------------------------------------------------------


@pytest.fixture(scope="module")
def proxied() -> Iterator[ServerThread]:
    with serve(
        make_app(),
        proxy_protocol=True,
        forwarded_allow_ips="127.0.0.1",
        header_timeout=1.0,
        shutdown_timeout=2.0,
    ) as srv:
        yield srv


def answers(data: bytes) -> list[dict[str, Any]]:
    """The JSON bodies of the (Content-Length framed) responses in ``data``."""
    found = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        length = int(
            next(
                line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
            ).split(b":")[1]
        )
        found.append(json.loads(rest[:length]))
        data = rest[length:]
    return found


def remote_of(port: int, data: bytes | list[bytes]) -> str:
    (answer,) = answers(raw_request(port, data))
    return str(answer["remote"])


@pytest.mark.parametrize(
    ("header", "remote"),
    [
        (v1(b"TCP4", "198.51.100.22", "10.0.0.1", 35646, 80), "198.51.100.22"),
        (v1(b"TCP6", "2001:db8::1", "2001:db8::2", 4711, 443), "2001:db8::1"),
        (b"PROXY UNKNOWN\r\n", "127.0.0.1"),
        (v2(tlvs=TLVS), "203.0.113.7"),
        (v2("2001:db8::7", "2001:db8::1", 1000, 80, tlvs=TLVS), "2001:db8::7"),
        (v2(command=0, tlvs=TLVS), "127.0.0.1"),
    ],
)
def test_client_address(proxied: ServerThread, header: bytes, remote: str) -> None:
    assert remote_of(proxied.port, header + GET_INFO_CLOSE) == remote


@pytest.mark.parametrize("header", [v1(b"TCP4", "198.51.100.22", "10.0.0.1", 1, 80), v2(tlvs=TLVS)])
def test_byte_by_byte(proxied: ServerThread, header: bytes) -> None:
    data = header + GET_INFO_CLOSE
    pieces = [data[i : i + 1] for i in range(len(data))]
    assert remote_of(proxied.port, pieces) in ("198.51.100.22", "203.0.113.7")


def test_header_and_pipelined_requests_in_one_packet(proxied: ServerThread) -> None:
    data = v2(tlvs=TLVS) + GET_INFO + GET_INFO + GET_INFO_CLOSE
    assert [a["remote"] for a in answers(raw_request(proxied.port, data))] == ["203.0.113.7"] * 3


def test_keep_alive_keeps_the_client(proxied: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", proxied.port), timeout=5) as sock:
        sock.sendall(v1(b"TCP4", "192.0.2.9", "10.0.0.1", 1, 80) + GET_INFO)
        time.sleep(0.1)
        sock.sendall(GET_INFO_CLOSE)
        seen = answers(read_until_close(sock))
    assert [a["remote"] for a in seen] == ["192.0.2.9", "192.0.2.9"]


@pytest.mark.parametrize(
    "data",
    [
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n" + GET_INFO,  # malformed
        b"PROXY TCP4 " + b"1" * 120,  # oversized
        V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", 60000),  # oversized v2
        GET_INFO,  # a trusted peer must send the header first
        b"",  # nothing, then EOF
    ],
)
def test_bad_header_closes_without_an_answer(
    proxied: ServerThread, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, "squall.server"),
        socket.create_connection(("127.0.0.1", proxied.port), timeout=5) as sock,
    ):
        sock.sendall(data)
        if not data:
            sock.shutdown(socket.SHUT_WR)
        assert read_until_close(sock, 3.0) == b""
    if data:
        assert any("PROXY protocol header" in r.getMessage() for r in caplog.records)
    assert remote_of(proxied.port, v2() + GET_INFO_CLOSE) == "203.0.113.7"  # still serving


def test_slow_header_is_timed_out(proxied: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", proxied.port), timeout=5) as sock:
        sock.sendall(b"PROXY TCP4 1.2.3.4")
        started = time.monotonic()
        assert is_closed(sock, 4.0)
        assert read_until_close(sock, 0.1) == b""
        assert time.monotonic() - started < 3.5  # header_timeout 1 s, the tick a second later


def test_untrusted_peer_speaks_plain_http() -> None:
    with serve(make_app(), proxy_protocol="192.0.2.1", header_timeout=1.0) as srv:
        assert remote_of(srv.port, GET_INFO_CLOSE) == "127.0.0.1"
        for header, status in REFUSED:  # its header is not believed: a bad request
            answer = raw_request(srv.port, header + GET_INFO_CLOSE)
            assert answer.startswith(b"HTTP/1.1 %d " % status), answer


# Without the option (or from another peer), a header is refused as any bad request is: "PROXY"
# is a method the server does not implement; v2's signature is not a request line.
REFUSED = [(v1(b"TCP4", "6.6.6.6", "10.0.0.1", 1, 80), 501), (v2(), 400)]


def test_off_a_proxy_header_is_a_bad_request() -> None:
    with serve(make_app()) as srv:
        for header, status in REFUSED:
            answer = raw_request(srv.port, header + GET_INFO_CLOSE)
            assert answer.startswith(b"HTTP/1.1 %d " % status), answer


def test_access_log_shows_the_client(
    proxied: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "squall.access"):
        remote_of(proxied.port, v1(b"TCP4", "198.51.100.77", "10.0.0.1", 1, 80) + GET_INFO_CLOSE)
    assert any(r.getMessage().startswith("198.51.100.77 ") for r in caplog.records)


def test_not_with_tls_on_the_same_site() -> None:
    import ssl

    async def check() -> None:
        runner = web.AppRunner(web.Application(), proxy_protocol=True)
        await runner.setup()
        try:
            with pytest.raises(ValueError, match="TLS"):
                web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl.create_default_context())
        finally:
            await runner.cleanup()

    import asyncio

    asyncio.run(check())


# -- HTTP/2 prior knowledge after the header ---------------------------------------------------


def test_http2_after_the_header() -> None:
    with serve(make_app(), proxy_protocol=True, http2=True) as srv:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.send_headers(
            1,
            [(":method", "GET"), (":path", "/info/x"), (":scheme", "http"), (":authority", "x")],
            end_stream=True,
        )
        body = b""
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            sock.sendall(v2("2001:db8::9", "2001:db8::1", 7, 80, tlvs=TLVS) + conn.data_to_send())
            ended = False
            while not ended:
                data = sock.recv(65536)
                assert data, "closed before the response ended"
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        body += event.data
                        conn.acknowledge_received_data(len(event.data), event.stream_id)
                    ended = ended or isinstance(event, h2.events.StreamEnded)
                sock.sendall(conn.data_to_send())
        assert json.loads(body)["remote"] == "2001:db8::9"


# -- the ASGI interface --------------------------------------------------------------------------


async def scope_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps({"client": scope["client"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_asgi_scope_client() -> None:
    srv = ASGIThread(scope_app, lifespan=False, proxy_protocol=True).start()
    try:
        for header, client in [
            (v2("2001:db8::7", "2001:db8::1", 1000, 80, tlvs=TLVS), ["2001:db8::7", 1000]),
            (v1(b"TCP4", "198.51.100.22", "10.0.0.1", 35646, 80), ["198.51.100.22", 35646]),
        ]:
            answer = raw_request(srv.port, header + GET_INFO_CLOSE)
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {"client": client}
        assert raw_request(srv.port, GET_INFO_CLOSE) == b""
    finally:
        srv.stop()


# -- the command line --------------------------------------------------------------------------


def test_command_line() -> None:
    config = parse_config(["app:app", "--proxy-protocol", "--forwarded-allow-ips", "10.0.0.0/8"])
    assert config.proxy_protocol == "10.0.0.0/8"
    assert config.forwarded_allow_ips == "10.0.0.0/8"
    config = parse_config(["app:app", "--proxy-protocol", "--no-proxy-headers"])
    assert (config.proxy_protocol, config.forwarded_allow_ips) == ("127.0.0.1", None)
    assert parse_config(["app:app"]).proxy_protocol is None
    with pytest.raises(SystemExit):
        parse_config(["app:app", "--proxy-protocol", "--ssl-certfile", "c.pem"])


# -- HAProxy in front ----------------------------------------------------------------------------

SQUALL = [sys.executable, "-m", "squall"]
HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
def test_haproxy_send_proxy_v2(tmp_path: Path) -> None:
    """HAProxy (TCP mode, ``send-proxy-v2``) in front of the command-line server: the address
    the application sees is the client's (connecting from 127.0.0.2), not HAProxy's."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "remote_app.py").write_text(
        "from squall import web\n"
        "async def remote(request):\n"
        "    return web.Response(text=request.remote)\n"
        "app = web.Application()\n"
        "app.router.add_get('/', remote)\n"
    )
    backend, front = free_port(), free_port()
    server = subprocess.Popen(
        [
            *SQUALL,
            "remote_app:app",
            "--app-dir",
            str(app_dir),
            "--port",
            str(backend),
            "--proxy-protocol",
            "--no-access-log",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"""global
    maxconn 100
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend front
    bind 127.0.0.1:{front}
    default_backend squall
backend squall
    server s1 127.0.0.1:{backend} send-proxy-v2
"""
    )
    assert subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True).returncode == 0
    proxy = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert server.stdout is not None
        assert b"serving" in server.stdout.readline()
        answer = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(
                    ("127.0.0.1", front), timeout=5, source_address=("127.0.0.2", 0)
                ) as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    answer = read_until_close(sock)
            except OSError:
                answer = b""
            if answer:
                break
            time.sleep(0.1)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert answer.endswith(b"\r\n\r\n127.0.0.2"), answer
        # squall's port itself, from HAProxy's address (trusted) without a header: closed
        assert raw_request(backend, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3) == b""
    finally:
        proxy.terminate()
        server.terminate()
        proxy.wait(10)
        server.wait(10)
