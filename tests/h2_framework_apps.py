"""A Starlette app and a FastAPI app with the same routes, for the HTTP/2 tests.

No ``from __future__ import annotations``: FastAPI reads the annotations at runtime.
"""

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

BIG = 3 * 1024 * 1024 + 7  # past a stream's window (64 KiB) and the connection's


class Probe:
    """What the apps saw, read by the tests (written from the server's thread)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.release: asyncio.Event | None = None  # made on the server's loop, on first use

    def released(self) -> asyncio.Event:
        if self.release is None:
            self.release = asyncio.Event()
        return self.release


class Item(BaseModel):
    name: str
    price: float


async def trailers_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A raw ASGI app mounted in the framework: a body, then trailers (gRPC's shape)."""
    assert "http.response.trailers" in scope.get("extensions", {})
    await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
    await send({"type": "http.response.body", "body": b"payload", "more_body": False})
    await send(
        {
            "type": "http.response.trailers",
            "headers": [(b"grpc-status", b"0"), (b"x-digest", b"abc")],
            "more_trailers": False,
        }
    )


def routes(probe: Probe, static_dir: Path) -> list[Any]:
    """Starlette routes, shared by both apps."""

    async def hello(request: Request) -> Response:
        probe.seen.append(request.scope["http_version"])
        return PlainTextResponse("Hello, World!")

    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/octet-stream")

    async def digest(request: Request) -> Response:
        """Read the body as it arrives (never whole): its size and sha256."""
        h, size = hashlib.sha256(), 0
        async for chunk in request.stream():
            h.update(chunk)
            size += len(chunk)
        return PlainTextResponse(f"{size} {h.hexdigest()}")

    async def big(request: Request) -> Response:
        return Response(b"x" * BIG)

    async def sleepy(request: Request) -> Response:
        await asyncio.sleep(0.2)
        return PlainTextResponse(request.query_params.get("n", ""))

    async def empty(request: Request) -> Response:
        return Response(status_code=204)

    async def sse(request: Request) -> Response:
        """Event 0, then the rest once /release is asked for (on another stream)."""

        async def events() -> AsyncIterator[bytes]:
            yield b"data: 0\n\n"
            await probe.released().wait()
            for i in range(1, 4):
                yield b"data: %d\n\n" % i

        return StreamingResponse(events(), media_type="text/event-stream")

    async def release(request: Request) -> Response:
        probe.released().set()
        return PlainTextResponse("released")

    async def forever(request: Request) -> Response:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            probe.seen.append("forever cancelled")
            raise
        return PlainTextResponse("late")

    async def stream_forever(request: Request) -> Response:
        async def events() -> AsyncIterator[bytes]:
            try:
                yield b"data: first\n\n"
                await asyncio.sleep(30)
                yield b"data: late\n\n"
            finally:
                probe.seen.append("stream closed")

        return StreamingResponse(events(), media_type="text/event-stream")

    async def slow_stream(request: Request) -> Response:
        async def parts() -> AsyncIterator[bytes]:
            yield b"first\n"
            await asyncio.sleep(0.3)
            yield b"last\n"

        return StreamingResponse(parts(), media_type="text/plain")

    async def wait_disconnect(request: Request) -> Response:
        """Waits on receive() until the client goes: http.disconnect, or cancelled."""
        try:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            probe.seen.append("http.disconnect")
        except asyncio.CancelledError:
            probe.seen.append("receive cancelled")
            raise
        return PlainTextResponse("gone")

    async def file(request: Request) -> Response:
        return FileResponse(static_dir / "big.bin")

    return [
        Route("/", hello),
        Route("/echo", echo, methods=["POST"]),
        Route("/digest", digest, methods=["POST"]),
        Route("/big", big),
        Route("/sleepy", sleepy),
        Route("/empty", empty),
        Route("/sse", sse),
        Route("/release", release),
        Route("/forever", forever),
        Route("/stream-forever", stream_forever),
        Route("/slow-stream", slow_stream),
        Route("/wait-disconnect", wait_disconnect),
        Route("/file", file),
        Mount("/static", StaticFiles(directory=static_dir)),
        Mount("/trailers", trailers_app),
    ]


def make_starlette_app(probe: Probe, static_dir: Path) -> Starlette:
    return Starlette(routes=routes(probe, static_dir))


def make_fastapi_app(probe: Probe, static_dir: Path) -> FastAPI:
    """FastAPI's own routes (a validated JSON body, a streaming generator) plus the shared ones."""
    app = FastAPI()

    @app.post("/items")
    async def create_item(item: Item) -> Item:
        return item

    @app.get("/lines")
    async def lines() -> StreamingResponse:
        async def gen() -> AsyncIterator[str]:
            for i in range(3):
                yield f"line {i}\n"

        return StreamingResponse(gen(), media_type="text/plain")

    for route in routes(probe, static_dir):
        app.router.routes.append(route)
    return app
