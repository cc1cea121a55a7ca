"""web.WebSocketResponse with real clients (aiohttp's, the websockets package), each scenario run
against aiohttp's server and squall's with the same app (tests/ws_apps.py): same observations."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import websockets

from .compat.harness import AppServer, serve_both
from .conftest import raw_request
from .ws_apps import make_ws_app


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, AppServer]]:
    with serve_both(make_ws_app) as (ref, got):
        yield {"aiohttp": ref, "squall": got}


BOTH = pytest.mark.parametrize("impl", ["aiohttp", "squall"])


def run(coro: Any, timeout: float = 15.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def session_ws(port: int, path: str, **kwargs: Any) -> tuple[Any, Any]:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(f"http://127.0.0.1:{port}{path}", **kwargs)
    return session, ws


def state(port: int) -> dict[str, Any]:
    body = raw_request(port, b"GET /state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return dict(json.loads(body.split(b"\r\n\r\n", 1)[1]))


@BOTH
def test_echo_text_binary_and_large(servers: dict[str, AppServer], impl: str) -> None:
    async def go() -> list[Any]:
        session, ws = await session_ws(servers[impl].port, "/ws")
        async with session, ws:
            out = []
            await ws.send_str("héllo")
            out.append(await ws.receive_str())
            await ws.send_bytes(b"\x00\xff" * 10)
            out.append(await ws.receive_bytes())
            big = bytes(range(256)) * 4096  # 1 MiB
            await ws.send_bytes(big)
            out.append(await ws.receive_bytes() == big)
            text = "ü" * 70000  # 16-bit and 64-bit length forms
            await ws.send_str(text)
            out.append(await ws.receive_str() == text)
            await ws.send_str("")
            out.append(await ws.receive_str())
            return out

    assert run(go()) == ["héllo", b"\x00\xff" * 10, True, True, ""]


@BOTH
def test_message_type_is_the_enum_member(servers: dict[str, AppServer], impl: str) -> None:
    """async for's messages carry WSMsgType members (their repr and name) and extra "", as
    aiohttp's: the compiled channel must not turn the members into plain ints."""

    async def go() -> list[Any]:
        session, ws = await session_ws(servers[impl].port, "/ws")
        async with session:
            await ws.send_str("type")
            text = (await ws.receive()).data
            await ws.send_bytes(b"type")
            binary = (await ws.receive()).data
            await ws.close()
        return [text, binary]

    assert run(go()) == [
        "<WSMsgType.TEXT: 1> TEXT WSMessage(type=<WSMsgType.TEXT: 1>, data='type', extra='')",
        "<WSMsgType.BINARY: 2> BINARY "
        "WSMessage(type=<WSMsgType.BINARY: 2>, data=b'type', extra='')",
    ]


@BOTH
def test_subclass_overrides_receive_and_send(servers: dict[str, AppServer], impl: str) -> None:
    """A subclass of WebSocketResponse: async for goes through its receive(), echo through its
    send_str(); what it inherits (send_bytes, close) works as is."""

    async def go() -> list[Any]:
        session, ws = await session_ws(servers[impl].port, "/subclassed")
        got = []
        async with session:
            await ws.send_str("hello")
            got.append((await ws.receive()).data)
            await ws.send_bytes(b"\x00raw")
            got.append((await ws.receive()).data)
            await ws.close()
            got.append(ws.close_code)
        return got

    assert run(go()) == ["<HELLO>", b"\x00raw", 1000]


@BOTH
@pytest.mark.parametrize(
    ("offered", "chosen"),
    [(("superchat",), "superchat"), (("x", "chat"), "chat"), (("nope",), None), ((), None)],
)
def test_subprotocol_negotiation(
    servers: dict[str, AppServer], impl: str, offered: tuple[str, ...], chosen: str | None
) -> None:
    async def go() -> tuple[Any, Any]:
        session, ws = await session_ws(servers[impl].port, "/chat", protocols=offered)
        async with session, ws:
            await ws.send_str("info")
            info = await ws.receive_json()
            return ws.protocol, info["protocol"]

    assert run(go()) == (chosen, chosen)


@BOTH
@pytest.mark.parametrize(("path", "compress"), [("/ws", 15), ("/nodeflate", 0)])
def test_permessage_deflate_negotiation(
    servers: dict[str, AppServer], impl: str, path: str, compress: int
) -> None:
    async def go() -> tuple[Any, ...]:
        session, ws = await session_ws(servers[impl].port, path, compress=15)
        async with session, ws:
            payload = json.dumps({"rows": [{"id": i, "name": "squall"} for i in range(500)]})
            await ws.send_str(payload)
            echoed = await ws.receive_str()
            await ws.send_str("info")
            info = await ws.receive_json()
            return ws.compress, info["compress"], echoed == payload

    assert run(go()) == (compress, compress, True)


def test_compressed_frames_really_are_compressed(servers: dict[str, AppServer]) -> None:
    """The wire carries less than the message when deflate is on (seen with a raw socket)."""
    from .test_websocket_frames import handshake, masked, read_frame

    sock = handshake(
        servers["squall"].port, "/ws", b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
    )
    with sock:
        sock.sendall(masked(0x1, b"a" * 10000))
        b0, payload = read_frame(sock)
        assert b0 == 0x80 | 0x40 | 0x1  # FIN, RSV1 (compressed), TEXT
        assert len(payload) < 200


@pytest.mark.parametrize("offer", ["", "; server_no_context_takeover"])
def test_compressed_frames_are_aiohttps(servers: dict[str, AppServer], offer: str) -> None:
    """Deflated as aiohttp deflates (its level, its flushes): the same messages come back as
    the same bytes from both servers, with and without context takeover."""
    from .test_websocket_frames import handshake, masked, read_frame

    ext = f"Sec-WebSocket-Extensions: permessage-deflate{offer}\r\n".encode()
    texts = [
        json.dumps({"seq": i, "rows": [{"id": i * j, "name": "squall"} for j in range(20)]})
        for i in range(5)
    ]
    frames: dict[str, list[tuple[int, bytes]]] = {}
    for impl in ("aiohttp", "squall"):
        with handshake(servers[impl].port, "/ws", ext) as sock:
            for text in texts:
                sock.sendall(masked(0x1, text.encode()))
            frames[impl] = [read_frame(sock) for _ in texts]
    assert frames["squall"] == frames["aiohttp"]
    assert all(b0 == 0xC1 for b0, _ in frames["squall"])


@BOTH
def test_server_closes_with_code_and_reason(servers: dict[str, AppServer], impl: str) -> None:
    async def go() -> tuple[Any, ...]:
        session, ws = await session_ws(servers[impl].port, "/ws")
        async with session, ws:
            await ws.send_str("close:4001")
            msg = await ws.receive()
            return msg.type, msg.data, msg.extra, ws.close_code

    assert run(go()) == (aiohttp.WSMsgType.CLOSE, 4001, "server bye", 4001)


@BOTH
@pytest.mark.parametrize("code", [1000, 1001, 4002])
def test_client_close_is_answered(servers: dict[str, AppServer], impl: str, code: int) -> None:
    async def go() -> Any:
        session, ws = await session_ws(servers[impl].port, "/ws")
        async with session:
            await ws.send_str("x")
            await ws.receive()
            await ws.close(code=code, message=b"client bye")
            return ws.close_code

    # The client's close_code is what the server answered with.
    answered = run(go())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not state(servers[impl].port)["closed"]:
        time.sleep(0.02)
    server_side = state(servers[impl].port)["closed"][-1]
    assert server_side == [code, "NoneType"]
    # aiohttp answers 1000 whatever came; squall echoes the code (RFC 6455 5.5.1).
    assert answered == (1000 if impl == "aiohttp" else code)


@BOTH
def test_server_speaks_first_then_closes(servers: dict[str, AppServer], impl: str) -> None:
    async def go() -> list[Any]:
        session, ws = await session_ws(servers[impl].port, "/greet")
        async with session, ws:
            return [(m.type, m.data) for m in [await ws.receive() for _ in range(4)]]

    assert run(go()) == [
        (aiohttp.WSMsgType.TEXT, "hello"),
        (aiohttp.WSMsgType.BINARY, b"\x00\x01"),
        (aiohttp.WSMsgType.TEXT, '{"n": 1}'),
        (aiohttp.WSMsgType.CLOSE, 4000),
    ]


@BOTH
def test_without_autoping_the_handler_sees_pings(servers: dict[str, AppServer], impl: str) -> None:
    async def go() -> Any:
        session, ws = await session_ws(servers[impl].port, "/noautoping")
        async with session, ws:
            await ws.ping(b"abc")
            return await ws.receive_str()

    assert run(go()) == "ping:abc"


@BOTH
def test_receive_timeout(servers: dict[str, AppServer], impl: str) -> None:
    async def go() -> Any:
        session, ws = await session_ws(servers[impl].port, "/timeout")
        async with session, ws:
            return await ws.receive_str()

    assert run(go()) == "timed out"


@BOTH
def test_can_prepare(servers: dict[str, AppServer], impl: str) -> None:
    port = servers[impl].port
    plain = raw_request(port, b"GET /maybe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert plain.startswith(b"HTTP/1.1 418 ")

    async def go() -> Any:
        session, ws = await session_ws(port, "/maybe", protocols=("v1",))
        async with session, ws:
            return await ws.receive_str()

    assert run(go()) == "ready:v1"


@BOTH
def test_receive_json_and_type_errors(servers: dict[str, AppServer], impl: str) -> None:
    async def go() -> list[Any]:
        session, ws = await session_ws(servers[impl].port, "/json")
        async with session, ws:
            await ws.send_json({"a": [1, 2]})
            first = await ws.receive_json()
            await ws.send_str("not bytes")
            return [first, await ws.receive_str()]

    assert run(go()) == [{"got": {"a": [1, 2]}}, "type error: WSMessageTypeError"]


@BOTH
def test_refused_handshake_is_an_http_answer(servers: dict[str, AppServer], impl: str) -> None:
    async def go() -> int:
        try:
            await session_ws(servers[impl].port, "/forbidden")
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        return 0

    assert run(go()) == 403


@BOTH
def test_message_over_max_size_closes_1009(servers: dict[str, AppServer], impl: str) -> None:
    async def go() -> tuple[Any, ...]:
        session, ws = await session_ws(servers[impl].port, "/small")
        async with session, ws:
            await ws.send_str("ok")
            first = await ws.receive_str()
            await ws.send_str("x" * 2000)
            msg = await ws.receive()
            return first, msg.type, msg.data

    assert run(go()) == ("ok", aiohttp.WSMsgType.CLOSE, 1009)


@BOTH
def test_heartbeat_keeps_a_live_client(servers: dict[str, AppServer], impl: str) -> None:
    from .test_websocket_frames import handshake, masked, read_frame

    with handshake(servers[impl].port, "/heartbeat") as sock:
        pings = 0
        deadline = time.monotonic() + 1.5
        sock.settimeout(0.2)
        while time.monotonic() < deadline:  # answer every ping, as a browser does
            try:
                b0, payload = read_frame(sock)
            except TimeoutError:
                continue
            assert b0 == 0x89
            pings += 1
            sock.sendall(masked(0xA, payload))
        sock.settimeout(5)
        sock.sendall(masked(0x1, b"still here"))
        assert read_frame(sock) == (0x81, b"still here")
    assert pings >= 1


@BOTH
def test_heartbeat_drops_a_silent_client(servers: dict[str, AppServer], impl: str) -> None:
    from .test_websocket_frames import handshake, read_frame

    port = servers[impl].port
    sock = handshake(port, "/heartbeat")
    start = time.monotonic()
    with sock:
        sock.settimeout(5)
        b0, _ = read_frame(sock)
        assert b0 == 0x89  # a ping, which this client never answers
        while sock.recv(65536):  # then the server gives up and closes
            pass
    assert time.monotonic() - start < 3
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not state(port)["closed"]:
        time.sleep(0.02)
    assert state(port)["closed"][-1] == [1006, "TimeoutError"]


def test_websockets_package_client(servers: dict[str, AppServer]) -> None:
    async def go() -> list[Any]:
        url = f"ws://127.0.0.1:{servers['squall'].port}/chat"
        async with websockets.connect(url, subprotocols=["chat"]) as ws:  # deflate by default
            out: list[Any] = [ws.subprotocol]
            await ws.send("x" * 5000)
            out.append(len(await ws.recv()))
            await ws.send(b"\x01\x02")
            out.append(await ws.recv())
            await ws.send("close:3000")
            try:
                await ws.recv()
            except websockets.ConnectionClosed as exc:
                out.append((exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else None)
            return out

    assert run(go()) == ["chat", 5000, b"\x01\x02", (3000, "server bye")]


def test_websockets_package_fragmented_send(servers: dict[str, AppServer]) -> None:
    async def go() -> Any:
        url = f"ws://127.0.0.1:{servers['squall'].port}/ws"
        async with websockets.connect(url, compression=None) as ws:
            await ws.send(iter(["frag", "men", "ted"]))  # sent as three frames
            return await ws.recv()

    assert run(go()) == "fragmented"


# -- handshake answers: where squall follows RFC 6455 over aiohttp ---------------------------

_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def _handshake_bytes(*lines: bytes) -> bytes:
    return b"GET /ws HTTP/1.1\r\nHost: x\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


_GOOD = (b"Upgrade: websocket", b"Connection: Upgrade", b"Sec-WebSocket-Key: " + _KEY)


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        (
            (b"Connection: Upgrade", b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Key: " + _KEY),
            400,
        ),
        ((b"Upgrade: h2c", b"Connection: Upgrade", b"Sec-WebSocket-Version: 13"), 400),
        ((b"Upgrade: websocket", b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Key: " + _KEY), 400),
        ((*_GOOD[:2], b"Sec-WebSocket-Version: 13"), 400),  # no key
        ((*_GOOD[:2], b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Key: c2hvcnQ="), 400),
        ((*_GOOD[:2], b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Key: !!!!"), 400),
        ((*_GOOD, b"Sec-WebSocket-Version: 8"), 426),
        ((*_GOOD, b"Sec-WebSocket-Version: 14"), 426),
        (_GOOD, 426),  # no version at all
    ],
)
def test_bad_handshakes(
    servers: dict[str, AppServer], lines: tuple[bytes, ...], status: int
) -> None:
    answer = _answer_head(servers["squall"].port, _handshake_bytes(*lines))
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:200]
    if status == 426:
        assert b"\r\nSec-WebSocket-Version: 13\r\n" in answer


def _answer_head(port: int, request: bytes) -> bytes:
    """The response head only: some refusals keep the connection open (no upgrade happened)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return head


def test_good_handshake_answer(servers: dict[str, AppServer]) -> None:
    sock = socket.create_connection(("127.0.0.1", servers["squall"].port), timeout=5)
    with sock:
        sock.sendall(_handshake_bytes(*_GOOD, b"Sec-WebSocket-Version: 13"))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 101 Switching Protocols"
    headers = {k.lower(): v for k, v in (line.split(b": ", 1) for line in lines[1:] if line)}
    assert headers[b"upgrade"] == b"websocket"
    assert headers[b"connection"].lower() == b"upgrade"
    assert headers[b"sec-websocket-accept"] == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3
    assert b"content-length" not in headers and b"transfer-encoding" not in headers


def test_upgrade_request_to_a_plain_route_gets_http_then_the_rest_is_http(
    servers: dict[str, AppServer],
) -> None:
    """A declined upgrade is answered over HTTP and the connection speaks HTTP/1.1 on, as in
    aiohttp 3.14: a WebSocket frame sent behind it is a bad request (400, then close), never
    taken for the other protocol's."""
    answer = raw_request(
        servers["squall"].port,
        b"GET /state HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        b"\x81\x80abcd",  # a frame nobody will read as HTTP
    )
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 400 Bad Request" in answer
