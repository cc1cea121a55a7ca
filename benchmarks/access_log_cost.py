"""What the access log costs per request, in process, for both interfaces: off, the default line,
and ``--access-log-format json``, each written (as the CLI configures it) to /dev/null.

Drives ``inprocess.py``'s hello request (with a User-Agent and an X-Request-ID) through
``HttpProtocol.data_received`` on a fake transport, as ``inprocess.py`` does:

    taskset -c 0 .venv/bin/python benchmarks/access_log_cost.py [requests-per-round/100]
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import inprocess
import uvloop

from squall import web
from squall.asgi import ASGIHandler
from squall.http.server import HttpServer
from squall.jsonlog import JsonFormatter

REQUEST = (
    b"GET /World?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench/1.0\r\n"
    b"X-Request-ID: 0f8c2b\r\n\r\n"
)


async def asgi_hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, World!"})


def _logger(fmt: str) -> logging.Logger | None:
    """A logger like the CLI's squall.access in format ``fmt``, writing to /dev/null."""
    if fmt == "off":
        return None
    logger = logging.getLogger(f"bench.access.{fmt}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    if fmt == "json":
        handler.setFormatter(JsonFormatter(logger.name))
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s: %(message)s"))
    logger.addHandler(handler)
    return logger


async def _time(factory: Callable[[], Any], count: int) -> float:
    """Best µs per request over 7 rounds of ``count``."""
    loop = asyncio.get_running_loop()
    proto = factory()
    transport = inprocess.FakeTransport()
    proto.connection_made(transport)
    best = float("inf")
    for _ in range(7):
        done: asyncio.Future[float] = loop.create_future()

        def run(fut: asyncio.Future[float] = done) -> None:
            t0 = time.perf_counter()
            for _ in range(count):
                proto.data_received(REQUEST)
            fut.set_result(time.perf_counter() - t0)

        loop.call_soon(run)
        best = min(best, await done / count * 1e6)
    assert transport.writes == 7 * count
    return best


async def main(hundreds: int) -> None:
    count = hundreds * 100
    for fmt in ("off", "default", "json"):
        logger = _logger(fmt)
        app = web.Application()
        app.add_routes([web.get("/{name}", inprocess.handle)])
        log_class = web.JsonAccessLogger if fmt == "json" else web.AccessLogger
        runner = web.AppRunner(app, access_log=logger, access_log_class=log_class)
        await runner.setup()
        assert runner.server is not None
        us = await _time(runner.server, count)
        await runner.cleanup()
        print(f"aiohttp interface, access log {fmt:7}: {us:6.2f} us per request")
    for fmt in ("off", "default", "json"):
        handler = ASGIHandler(
            asgi_hello,
            access_log=_logger(fmt),
            access_log_format=("json" if fmt == "json" else "default"),
        )
        server = HttpServer(handler, loop=asyncio.get_running_loop())
        us = await _time(server, count)
        print(f"ASGI interface,    access log {fmt:7}: {us:6.2f} us per request")


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
