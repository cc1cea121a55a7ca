"""A FastAPI app for tests/test_asgi.py.

No ``from __future__ import annotations`` here, and the models and the Request import are at
module level: FastAPI reads the annotations at runtime.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


def make_fastapi_app(events: list[Any]) -> FastAPI:
    """Routes, path and query params, a JSON body, streaming, background tasks, lifespan state."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"counter": [0]}
        events.append("fastapi shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def root(request: Request) -> dict[str, Any]:
        request.state.counter[0] += 1
        return {"hello": "world", "count": request.state.counter[0]}

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
        return {"item_id": item_id, "q": q}

    @app.post("/items")
    async def create_item(item: Item) -> Item:
        return item

    @app.get("/sync")
    def sync_route() -> dict[str, str]:
        return {"thread": "pool"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def gen() -> AsyncIterator[str]:
            for i in range(3):
                yield f"line {i}\n"
                await asyncio.sleep(0.005)

        return StreamingResponse(gen(), media_type="text/plain")

    @app.post("/notify")
    async def notify(background_tasks: BackgroundTasks) -> dict[str, str]:
        async def send_mail(to: str) -> None:
            await asyncio.sleep(0.01)
            events.append(("fastapi background", to))

        background_tasks.add_task(send_mail, "bob")
        return {"status": "queued"}

    @app.websocket("/ws/{room}")
    async def chat(websocket: WebSocket, room: str) -> None:
        await websocket.accept(
            subprotocol="chat" if "chat" in websocket.scope["subprotocols"] else None
        )
        try:
            while True:
                data = await websocket.receive_json()
                await websocket.send_json({"room": room, "echo": data})
        except WebSocketDisconnect as exc:
            events.append(("fastapi ws closed", exc.code))

    return app
