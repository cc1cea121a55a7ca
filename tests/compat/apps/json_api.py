"""A small JSON API: CRUD on items, an auth middleware, an error middleware turning
HTTPExceptions and ValueErrors into JSON, and an unhandled exception left to the framework."""

from __future__ import annotations

import json
from typing import Any

from ..harness import Req, get, send


def make_app(web: Any) -> Any:
    items_key = web.AppKey("items", dict)

    @web.middleware
    async def errors(request: Any, handler: Any) -> Any:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400 and request.path.startswith("/api/"):
                return web.json_response(
                    {"error": exc.reason, "status": exc.status}, status=exc.status
                )
            raise
        except ValueError as exc:
            return web.json_response({"error": "bad value", "detail": str(exc)}, status=422)

    @web.middleware
    async def auth(request: Any, handler: Any) -> Any:
        writes = request.method in ("POST", "PUT", "DELETE") and request.path.startswith("/api/")
        if writes and request.headers.get("Authorization") != "Bearer secret":
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})
        response = await handler(request)
        response.headers["X-API-Version"] = "1"
        return response

    async def list_items(request: Any) -> Any:
        items = request.app[items_key]
        limit = int(request.query.get("limit", "100"))
        return web.json_response(sorted(items.values(), key=lambda i: i["id"])[:limit])

    async def get_item(request: Any) -> Any:
        item = request.app[items_key].get(int(request.match_info["id"]))
        if item is None:
            raise web.HTTPNotFound()
        return web.json_response(item)

    async def create_item(request: Any) -> Any:
        data = await request.json()
        if not isinstance(data, dict) or "name" not in data:
            raise web.HTTPBadRequest(text="name is required")
        items = request.app[items_key]
        new_id = max(items, default=0) + 1
        items[new_id] = {"id": new_id, "name": data["name"], "tags": data.get("tags", [])}
        return web.json_response(
            items[new_id], status=201, headers={"Location": f"/api/items/{new_id}"}
        )

    async def update_item(request: Any) -> Any:
        items = request.app[items_key]
        item_id = int(request.match_info["id"])
        if item_id not in items:
            raise web.HTTPNotFound()
        data = await request.json()
        items[item_id].update(data)
        return web.json_response(items[item_id])

    async def delete_item(request: Any) -> Any:
        if request.app[items_key].pop(int(request.match_info["id"]), None) is None:
            raise web.HTTPNotFound()
        return web.Response(status=204)

    async def boom(request: Any) -> Any:
        raise RuntimeError("unhandled")

    async def bad_value(request: Any) -> Any:
        raise ValueError("negative count")

    async def dumps(request: Any) -> Any:
        return web.json_response(
            {"b": [1, 2.5, None, True], "a": "\u00e9"},
            dumps=lambda obj: json.dumps(obj, sort_keys=True, indent=1),
        )

    async def text_json(request: Any) -> Any:
        return web.json_response(text='{"raw": true}', status=202, reason="Queued")

    app = web.Application(middlewares=[errors, auth])
    app[items_key] = {1: {"id": 1, "name": "first", "tags": []}}
    app.router.add_get("/api/items", list_items)
    app.router.add_post("/api/items", create_item)
    app.router.add_get(r"/api/items/{id:\d+}", get_item)
    app.router.add_put(r"/api/items/{id:\d+}", update_item)
    app.router.add_delete(r"/api/items/{id:\d+}", delete_item)
    app.router.add_get("/api/boom", boom)
    app.router.add_get("/boom", boom)
    app.router.add_get("/api/bad", bad_value)
    app.router.add_get("/api/dumps", dumps)
    app.router.add_get("/api/text", text_json)
    return app


AUTH = ("Authorization", "Bearer secret")
JSON = ("Content-Type", "application/json")

REQUESTS: list[Req] = [
    get("/api/items"),
    get("/api/items/1"),
    get("/api/items/2", note="missing item"),
    get("/api/items/abc", note="regex mismatch 404"),
    send("POST", "/api/items", b'{"name": "second"}', JSON, note="post without auth"),
    send("POST", "/api/items", b'{"name": "second", "tags": ["x"]}', JSON, AUTH),
    send("POST", "/api/items", b'{"name": "third"}', AUTH, note="post json no content-type"),
    send("POST", "/api/items", b"[1, 2]", JSON, AUTH, note="post json list"),
    send("POST", "/api/items", b"{not json", JSON, AUTH, note="post invalid json"),
    get("/api/items?limit=2", note="list limit"),
    get("/api/items?limit=x", note="list bad limit"),
    send("PUT", "/api/items/2", b'{"name": "renamed"}', JSON, AUTH),
    send("PUT", "/api/items/9", b'{"name": "nobody"}', JSON, AUTH, note="put missing"),
    get("/api/items/2", note="after put"),
    send("DELETE", "/api/items/2", b"", AUTH),
    send("DELETE", "/api/items/2", b"", AUTH, note="delete again"),
    get("/api/items", note="after delete"),
    send("PATCH", "/api/items/1", b"{}", JSON, AUTH, note="patch 405"),
    get("/api/boom", note="unhandled in api"),
    get("/boom", note="unhandled outside api"),
    get("/boom", ("Accept", "text/html,*/*"), note="unhandled, html accepted"),
    get("/api/bad"),
    get("/api/dumps"),
    get("/api/text"),
    get("/nowhere", note="404 outside api"),
    get("/api/nowhere", note="router 404 inside api"),
]
