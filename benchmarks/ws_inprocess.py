"""In-process WebSocket echo timing: frames fed to HttpProtocol with a fake transport.

What remains is squall's own work per message (frame parsing, the channel, the handler's
receive/send, the loop hop that wakes the handler): no sockets, no kernel.

    taskset -c 0 .venv/bin/python benchmarks/ws_inprocess.py [messages-per-round/100] [--profile]
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys
import time
from typing import Any

import uvloop

from squall import web

sys.path.insert(0, os.path.dirname(__file__))
from inprocess import FakeTransport


class CountingTransport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.get_running_loop().create_future()

    def write(self, data: bytes) -> None:
        self.writes += 1
        if not self.written.done():
            self.written.set_result(None)


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    async for msg in ws:
        await ws.send_str(msg.data)
    return ws


def masked_text(payload: bytes) -> bytes:
    key = b"\x01\x02\x03\x04"
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + key + body


async def main(hundreds: int, profile: bool) -> None:
    app = web.Application()
    app.router.add_get("/ws", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    proto = runner.server()
    transport = CountingTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    proto.data_received(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await asyncio.sleep(0)
    frame = masked_text(b"x" * 32)
    loop = asyncio.get_running_loop()
    count = hundreds * 100
    best = float("inf")
    prof: Any = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    for _ in range(5):
        t0 = time.perf_counter()
        if prof is not None:
            prof.enable()
        for _ in range(count):
            transport.written = loop.create_future()
            loop.call_soon(proto.data_received, frame)  # as the loop calls it
            await transport.written
        if prof is not None:
            prof.disable()
        best = min(best, (time.perf_counter() - t0) / count * 1e6)
    print(f"{best:.2f} us per echoed message (best of 5 rounds of {count})")
    if prof is not None:
        import pstats

        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    proto.connection_lost(None)
    await runner.cleanup()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    uvloop.run(main(int(args[0]) if args else 200, "--profile" in sys.argv))
