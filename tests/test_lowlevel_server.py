"""web.Server / web.ServerRunner (aiohttp's low-level server): the same program on aiohttp and
on squall gives the same answers."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp.web
import pytest

from squall import web


def _program(w: Any) -> Any:
    async def handler(request: Any) -> Any:
        if request.path == "/missing":
            raise w.HTTPNotFound(text="nope")
        if request.path == "/crash":
            raise RuntimeError("boom")
        if request.path == "/stream":
            resp = w.StreamResponse()
            resp.content_type = "text/plain"
            await resp.prepare(request)
            await resp.write(b"part1,")
            await resp.write(b"part2")
            return resp
        body = await request.read()
        return w.Response(text=f"{request.method} {request.path_qs} {len(body)}")

    return handler


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def _norm(answer: bytes) -> tuple[bytes, list[bytes], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = sorted(
        line.lower() for line in lines[1:] if not line.lower().startswith((b"date:", b"server:"))
    )
    return lines[0], headers, body


REQUESTS = [
    b"GET /hello?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /crash HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", REQUESTS, ids=lambda r: r.split(b" ")[1].decode())
def test_same_answers_as_aiohttp(request_bytes: bytes) -> None:
    async def run(w: Any) -> tuple[bytes, int]:
        server = w.Server(_program(w))
        runner = w.ServerRunner(server)
        await runner.setup()
        site = w.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            return await _exchange(port, request_bytes), server.requests_count
        finally:
            await runner.cleanup()

    ours, our_count = asyncio.run(run(web))
    theirs, their_count = asyncio.run(run(aiohttp.web))
    assert _norm(ours) == _norm(theirs)
    assert our_count == their_count == 1


def test_unknown_keyword_and_request_factory_are_refused() -> None:
    async def make(**kwargs: Any) -> None:
        web.Server(_program(web), **kwargs)

    with pytest.raises(TypeError):
        asyncio.run(make(request_factory=object()))
    with pytest.raises(TypeError):
        asyncio.run(make(no_such_option=1))
    assert socket  # the module under test needs a real socket only in the test above
