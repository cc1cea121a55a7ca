"""The channel's fast path: a small frame handed straight to the receive() waiting for it.

In-process (HttpProtocol over the fake transport of wire_harness), so the moment between the
hand-over and the receiver's wake-up can be hit on purpose: a cancel, a close() from another
task, a second frame arriving in that window must all behave as when the frame was queued.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from squall import web
from squall.http import HttpProtocol

from .wire_harness import FakeTransport

HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def masked(op: int, payload: bytes, fin: bool = True) -> bytes:
    key = b"\x37\xfa\x21\x3d"
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", (0x80 if fin else 0) | op, 0x80 | len(payload)) + key + body


def frames(out: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of the small server frames in ``out`` (after the 101 head)."""
    out = out[out.index(b"\r\n\r\n") + 4 :]
    found = []
    while out:
        n = out[1]
        found.append((out[0] & 0x0F, out[2 : 2 + n]))
        out = out[2 + n :]
    return found


@asynccontextmanager
async def websocket(**options: Any) -> AsyncIterator[tuple[web.WebSocketResponse, HttpProtocol]]:
    """A prepared WebSocketResponse whose handler waits until the block ends."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[web.WebSocketResponse] = loop.create_future()
    finish: asyncio.Future[None] = loop.create_future()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, **options)
        await ws.prepare(request)
        ready.set_result(ws)
        await finish
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    proto = runner.server()
    transport = FakeTransport(loop)
    transport.protocol = proto
    proto.connection_made(transport)
    proto.data_received(HANDSHAKE)
    ws = await asyncio.wait_for(ready, 2)
    try:
        yield ws, proto
    finally:
        finish.set_result(None)
        await asyncio.sleep(0)
        proto.connection_lost(None)
        await runner.cleanup()


async def _waiting(receive: Callable[[], Awaitable[Any]]) -> asyncio.Task[Any]:
    task: asyncio.Task[Any] = asyncio.ensure_future(receive())
    await asyncio.sleep(0)
    assert not task.done()
    return task


@pytest.mark.parametrize("way", ["receive", "anext"])
def test_a_receive_cancelled_after_the_hand_over_loses_nothing(way: str) -> None:
    async def main() -> None:
        async with websocket() as (ws, proto):
            receive = ws.receive if way == "receive" else ws.__anext__
            task = await _waiting(receive)
            proto.data_received(masked(0x1, b"one"))  # handed to the waiting task...
            proto.data_received(masked(0x2, b"two"))  # (queued behind it)
            task.cancel()  # ...which is cancelled before it runs
            with pytest.raises(asyncio.CancelledError):
                await task
            proto.data_received(masked(0x1, b"three"))
            got = [await ws.receive() for _ in range(3)]
            assert [(m.type, m.data) for m in got] == [
                (web.WSMsgType.TEXT, "one"),
                (web.WSMsgType.BINARY, b"two"),
                (web.WSMsgType.TEXT, "three"),
            ]

    asyncio.run(main())


def test_close_from_another_task_after_the_hand_over_comes_first() -> None:
    """As with a queued message: the waiting receive() answers CLOSING, not the message."""

    async def main() -> None:
        async with websocket() as (ws, proto):
            task = await _waiting(ws.receive)
            # The frame is handed over first; close() then runs before the receiver wakes.
            asyncio.get_running_loop().call_soon(proto.data_received, masked(0x1, b"one"))
            closer = asyncio.ensure_future(ws.close())
            msg = await task
            assert msg.type == web.WSMsgType.CLOSING
            proto.data_received(masked(0x8, b"\x03\xe8"))
            assert await asyncio.wait_for(closer, 2)
            assert ws.close_code == 1000

    asyncio.run(main())


def test_fast_path_keeps_the_rules() -> None:
    """Small whole frames with a receiver waiting: max_msg_size, decode_text, bad UTF-8."""

    async def main() -> None:
        async with websocket(max_msg_size=4, decode_text=False) as (ws, proto):
            for op, payload in ((0x1, "é".encode()), (0x2, b""), (0x1, b""), (0x2, b"1234")):
                task = await _waiting(ws.receive)
                proto.data_received(masked(op, payload))
                msg = await task
                assert (msg.type, msg.data) == (op, payload)
            task = await _waiting(ws.receive)
            proto.data_received(masked(0x1, b"12345"))  # one byte over max_msg_size
            msg = await task
            assert msg.type == web.WSMsgType.ERROR and msg.data.code == 1009
        async with websocket() as (ws, proto):
            task = await _waiting(ws.receive)
            proto.data_received(masked(0x1, b"\xff"))
            msg = await task
            assert msg.type == web.WSMsgType.ERROR and msg.data.code == 1007

    asyncio.run(main())


def test_small_sends_match_the_general_encoder() -> None:
    async def main() -> None:
        async with websocket() as (ws, proto):
            transport = proto.transport
            assert isinstance(transport, FakeTransport)
            await ws.send_str("hé")
            await ws.send_bytes(b"\x00\x01")
            await ws.send_bytes(bytearray(b"ba"))
            await ws.send_str("")
            await ws.send_str("x" * 125)
            assert frames(bytes(transport.out)) == [
                (0x1, "hé".encode()),
                (0x2, b"\x00\x01"),
                (0x2, b"ba"),
                (0x1, b""),
                (0x1, b"x" * 125),
            ]
            with pytest.raises(TypeError):
                await ws.send_bytes("text")  # type: ignore[arg-type]
            proto.data_received(masked(0x8, b"\x03\xe8"))  # the client's close, queued
            await ws.close()
            with pytest.raises(ConnectionResetError):
                await ws.send_str("after close")
            with pytest.raises(ConnectionResetError):
                await ws.send_bytes(b"after close")

    asyncio.run(main())
