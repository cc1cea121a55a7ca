"""In-process HTTP/2 timing: a request's cost through squall's HTTP/2 layer, and the h2 library's.

Frames for N GET streams are made beforehand by h2's client side (as h2load sends them: ten
streams a read, and a WINDOW_UPDATE giving back what the answers used), then fed to
``H2Protocol.data_received`` over a fake transport, for the seed app (aiohttp.web) and a raw
ASGI hello. The same frames through a bare ``h2`` server connection (receive, answer HEADERS +
DATA, nothing else) give the pure-Python library's own cost, for comparison: what HTTP/2 cost
per request when squall was built on it.

    taskset -c 0 .venv/bin/python benchmarks/h2_inprocess.py [streams]
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import h2.config
import h2.connection
import h2.events
import uvloop

from squall import web
from squall.asgi.handler import ASGIHandler
from squall.http import HttpServer
from squall.http.h2 import H2Protocol

BATCH = 10  # streams per read (h2load -m 10)


class FakeTransport:
    """Just enough of an asyncio transport: takes writes, never blocks."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name in ("peername", "sockname") else default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def client_reads(count: int) -> tuple[bytes, list[bytes]]:
    """The client's preface and SETTINGS, then ``count`` GET streams, BATCH to a read."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2**20})
    client.remote_settings.max_concurrent_streams = 2**31 - 1
    client.remote_settings.acknowledge()
    preface = client.data_to_send()
    headers = [
        (":method", "GET"),
        (":path", "/World"),
        (":scheme", "http"),
        (":authority", "127.0.0.1:8080"),
        ("user-agent", "h2load nghttp2/1.52.0"),
    ]
    reads = []
    for first in range(0, count, BATCH):
        for i in range(first, min(first + BATCH, count)):
            client.send_headers(1 + 2 * i, headers, end_stream=True)
            # (closed at once on the client's side, as if answered: no window bookkeeping)
            client.streams.pop(1 + 2 * i)
        client.increment_flow_control_window(13 * BATCH)  # (the answers' DATA, given back)
        reads.append(client.data_to_send())
    return preface, reads


def h2_alone(preface: bytes, reads: list[bytes]) -> float:
    """Seconds a bare h2 server connection spends on ``reads``."""
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
    )
    server.local_settings.max_concurrent_streams = 2**31 - 1
    server.initiate_connection()
    server.receive_data(preface)
    fields = [
        (b":status", b"200"),
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"13"),
        (b"date", b"Mon, 07 Dec 2026 13:58:05 GMT"),
        (b"server", b"Python/3.11 squall/0.1.0"),
    ]
    start = time.perf_counter()
    for data in reads:
        for event in server.receive_data(data):
            if type(event) is h2.events.RequestReceived:
                server.send_headers(event.stream_id, fields)
                server.send_data(event.stream_id, b"Hello, World!", end_stream=True)
                server.acknowledge_received_data(0, event.stream_id)
        server.data_to_send()
        # (the peer's window is never used up: give it back as a client would)
        server.outbound_flow_control_window = 2**30
    return time.perf_counter() - start


async def through_squall(handler: Any, preface: bytes, reads: list[bytes]) -> float:
    http = HttpServer(handler, loop=asyncio.get_running_loop())
    proto = H2Protocol(http.shared)
    proto.connection_made(FakeTransport())  # type: ignore[arg-type]
    proto.data_received(preface)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[float] = loop.create_future()

    def run() -> None:  # from a plain loop callback, as the loop calls data_received
        start = time.perf_counter()
        for data in reads:
            proto.data_received(data)
        done.set_result(time.perf_counter() - start)

    loop.call_soon(run)
    took = await done
    assert not proto.streams, "streams left unanswered"
    return took


async def asgi_hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, World!"})


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=f"Hello, {request.match_info['name']}!")


async def main(count: int) -> None:
    app = web.Application()
    app.add_routes([web.get("/{name}", hello)])
    runner = web.AppRunner(app)
    await runner.setup()
    assert runner.server is not None
    preface, reads = client_reads(count)
    h2_alone(*client_reads(1000))  # warm-up
    alone = min(h2_alone(preface, reads) for _ in range(3)) / count * 1e6
    print(f"h2 library alone:      {alone:6.1f} us/request  ({1e6 / alone:8,.0f} req/s ceiling)")
    print("(squall's own frame layer below, not the h2 library)")
    for label, handler in (("seed app (web)", runner.server.handler), ("raw ASGI hello", None)):
        handler = handler or ASGIHandler(asgi_hello)
        await through_squall(handler, *client_reads(1000))  # warm-up
        total = min([await through_squall(handler, preface, reads) for _ in range(3)])
        per = total / count * 1e6
        print(f"{label + ':':22s} {per:6.1f} us/request  ({1e6 / per:8,.0f} req/s)")
    await runner.cleanup()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000))
