"""In-process hot-path timing: the seed route and /json driven through HttpProtocol.

A fake transport, no sockets and no second core: what remains is squall's own work per request
(parse, dispatch, routing, handler, serialisation). Use it before and after a hot-path change,
beside `make bench`:

    taskset -c 0 .venv/bin/python benchmarks/inprocess.py [requests-per-round/100]
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import uvloop

from squall import web


class FakeTransport:
    """Just enough of an asyncio transport: counts writes, never blocks."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


async def handle(request: web.Request) -> web.Response:
    name = request.match_info.get("name", "Anonymous")
    return web.Response(text=f"Hello, {name}!")


# What a browser sends (wrk sends only Host): per-field costs show here.
BROWSER_GET = (
    b"GET /World HTTP/1.1\r\nHost: example.com:8080\r\nConnection: keep-alive\r\n"
    b"Cache-Control: max-age=0\r\n"
    b'sec-ch-ua: "Chromium";v="124", "Not-A.Brand";v="99"\r\nsec-ch-ua-mobile: ?0\r\n'
    b'sec-ch-ua-platform: "Linux"\r\nUpgrade-Insecure-Requests: 1\r\n'
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/124.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\n"
    b"Sec-Fetch-Dest: document\r\nAccept-Encoding: gzip, deflate, br\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n\r\n"
)


async def json_handle(request: web.Request) -> web.Response:
    return web.json_response({"message": "Hello, World!"})


async def main(hundreds: int) -> None:
    app = web.Application()
    app.add_routes([web.get("/json", json_handle), web.get("/{name}", handle)])
    runner = web.AppRunner(app)
    await runner.setup()
    assert runner.server is not None
    loop = asyncio.get_running_loop()
    count = hundreds * 100
    for label, request in (
        ("seed hello", b"GET /World HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"),
        ("json", b"GET /json HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"),
        ("seed hello, a browser's 15 fields", BROWSER_GET),
    ):
        proto = runner.server()
        transport = FakeTransport()
        proto.connection_made(transport)  # type: ignore[arg-type]
        best = float("inf")
        for _ in range(7):
            done: asyncio.Future[float] = loop.create_future()

            def run(
                fut: asyncio.Future[float] = done, data: bytes = request, conn: Any = proto
            ) -> None:
                # From a plain loop callback, as the loop calls data_received (never in a task).
                t0 = time.perf_counter()
                for _ in range(count):
                    conn.data_received(data)
                fut.set_result(time.perf_counter() - t0)

            loop.call_soon(run)
            best = min(best, await done / count * 1e6)
        print(f"{best:.2f} us per request, {label} (best of 7 rounds of {count})")
        assert transport.writes == 7 * count
    await runner.cleanup()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
