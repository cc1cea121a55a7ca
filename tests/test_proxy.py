"""Behind a reverse proxy: Forwarded / X-Forwarded-* honoured only from trusted peers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from squall import web
from squall.http.proxy import TrustedProxies, forwarding

from .apps import make_app
from .conftest import ServerThread, raw_request, serve
from .test_asgi import ASGIThread


def H(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


LOCAL = ("127.0.0.1", 50000)


@pytest.mark.parametrize(
    ("trusted", "peer", "headers", "expected"),
    [
        ("127.0.0.1", LOCAL, H(X_Forwarded_For="203.0.113.7"), ("203.0.113.7", None, None)),
        ("10.0.0.1", LOCAL, H(X_Forwarded_For="203.0.113.7"), None),  # peer not trusted
        ("*", LOCAL, H(X_Forwarded_Proto="HTTPS"), (None, "https", None)),
        ("127.0.0.1", LOCAL, H(X_Forwarded_Proto="wss"), (None, "https", None)),
        ("127.0.0.1", LOCAL, H(X_Forwarded_Proto="javascript"), (None, None, None)),
        (
            "127.0.0.1",
            LOCAL,
            H(X_Forwarded_Host="api.example:8443"),
            (None, None, "api.example:8443"),
        ),
        ("127.0.0.1", LOCAL, H(X_Forwarded_Host="bad host\r"), (None, None, None)),
        # a client's own X-Forwarded-For is kept by the proxy, which appends the real peer
        (
            "127.0.0.1",
            LOCAL,
            H(X_Forwarded_For="1.2.3.4, 198.51.100.9"),
            ("198.51.100.9", None, None),
        ),
        # two trusted proxies in a row are walked past
        (
            "127.0.0.1, 10.0.0.0/8",
            LOCAL,
            H(X_Forwarded_For="198.51.100.1, 10.1.2.3", X_Forwarded_Proto="https, http"),
            ("198.51.100.1", "https", None),
        ),
        ("127.0.0.1", LOCAL, H(X_Forwarded_For="10.0.0.1, 127.0.0.1"), ("10.0.0.1", None, None)),
        ("127.0.0.1", LOCAL, H(), None),
        (
            "127.0.0.1",
            LOCAL,
            H(Forwarded='for="[2001:db8::1]:4711";proto=https;host=api.example'),
            ("2001:db8::1", "https", "api.example"),
        ),
        (
            "127.0.0.1",
            LOCAL,
            H(Forwarded="for=198.51.100.3, for=127.0.0.1;proto=http", X_Forwarded_For="6.6.6.6"),
            ("198.51.100.3", None, None),  # Forwarded wins; the trusted hop is walked past
        ),
        ("127.0.0.1", None, H(X_Forwarded_For="203.0.113.9"), ("203.0.113.9", None, None)),  # UDS
        ("::1", ("::1", 1, 0, 0), H(X_Forwarded_For="[2001:db8::2]"), ("2001:db8::2", None, None)),
    ],
)
def test_forwarding(trusted: str, peer: Any, headers: Any, expected: Any) -> None:
    assert forwarding(TrustedProxies(trusted), peer, headers) == expected


def test_trusted_proxies() -> None:
    trusted = TrustedProxies("127.0.0.1, 10.0.0.0/8, ::1")
    assert "127.0.0.1" in trusted and "10.9.9.9" in trusted and "::1" in trusted
    assert "11.0.0.1" not in trusted and "localhost" not in trusted and None not in trusted
    assert "anything" in TrustedProxies("*")


# -- on the aiohttp-style server -------------------------------------------------------------


@pytest.fixture(scope="module")
def behind() -> Iterator[ServerThread]:
    with serve(make_app(), forwarded_allow_ips="127.0.0.1") as srv:
        yield srv


@pytest.fixture(scope="module")
def exposed() -> Iterator[ServerThread]:
    with serve(make_app()) as srv:  # the default: headers never believed (as aiohttp)
        yield srv


def info(port: int, *headers: bytes) -> dict[str, Any]:
    request = b"GET /info/x?a=1 HTTP/1.1\r\nHost: internal:8080\r\nConnection: close\r\n"
    answer = raw_request(port, request + b"".join(h + b"\r\n" for h in headers) + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    return dict(json.loads(answer.split(b"\r\n\r\n", 1)[1]))


def test_request_reflects_trusted_headers(behind: ServerThread) -> None:
    d = info(
        behind.port,
        b"X-Forwarded-For: 203.0.113.7",
        b"X-Forwarded-Proto: https",
        b"X-Forwarded-Host: shop.example",
    )
    assert (d["remote"], d["scheme"], d["host"]) == ("203.0.113.7", "https", "shop.example")
    assert d["url"] == "https://shop.example/info/x?a=1"


def test_request_reflects_forwarded(behind: ServerThread) -> None:
    d = info(behind.port, b'Forwarded: for="[2001:db8::1]:4711";proto=https;host=api.example')
    assert (d["remote"], d["scheme"], d["host"]) == ("2001:db8::1", "https", "api.example")


def test_without_headers_the_socket_speaks(behind: ServerThread) -> None:
    d = info(behind.port)
    assert (d["remote"], d["scheme"], d["host"]) == ("127.0.0.1", "http", "internal:8080")


def test_untrusted_by_default(exposed: ServerThread) -> None:
    d = info(exposed.port, b"X-Forwarded-For: 203.0.113.7", b"X-Forwarded-Proto: https")
    assert (d["remote"], d["scheme"], d["host"]) == ("127.0.0.1", "http", "internal:8080")


def test_clone_overrides_like_aiohttp() -> None:
    import aiohttp.test_utils

    from squall.testing import make_mocked_request

    seen = []
    for make in (aiohttp.test_utils.make_mocked_request, make_mocked_request):
        req = make("GET", "/p?q=1", headers={"Host": "a.example"})
        clone = req.clone(scheme="https", host="b.example", remote="192.0.2.1")
        again = clone.clone(host="c.example")
        seen.append(
            [(r.scheme, r.secure, r.host, r.remote, str(r.url)) for r in (req, clone, again)]
        )
    assert seen[0][1] == ("https", True, "b.example", "192.0.2.1", "https://b.example/p?q=1")
    assert seen[1] == seen[0]


# -- on the ASGI server ----------------------------------------------------------------------


async def scope_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps({"client": scope["client"], "scheme": scope["scheme"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_asgi_scope_reflects_trusted_headers() -> None:
    srv = ASGIThread(scope_app, forwarded_allow_ips="127.0.0.1").start()
    try:
        answer = raw_request(
            srv.port,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"X-Forwarded-For: 203.0.113.8\r\nX-Forwarded-Proto: https\r\n\r\n",
        )
        d = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert d == {"client": ["203.0.113.8", 0], "scheme": "https"}
    finally:
        srv.stop()


def test_web_app_runner_kwarg_is_validated_early() -> None:
    with pytest.raises(ValueError):
        TrustedProxies("10.0.0.0/33")
    assert web.AppRunner  # the kwarg is forwarded_allow_ips= (see AppRunner's docstring)
