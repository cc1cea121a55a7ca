"""A small JSON API written only against the aiohttp.web API, served by squall.

- /api/v1/notes         GET (list) / POST (JSON {"text": ...})      - a sub-application
- /api/v1/notes/{id}    GET / DELETE
- /api/v1/files         POST multipart upload (field "file"), GET list
- /api/v1/feed          WebSocket: every new note is pushed as JSON
- /static/...           static files (index.html, app.js)
- /                     redirects to /static/index.html

Middlewares: errors become JSON, every response carries X-Response-Time.
Run:  python examples/notes_api.py [--port 8080]
  or: squall examples.notes_api:create_app --factory
"""

import argparse
import tempfile
import time
import weakref
from pathlib import Path

from squall import web

HERE = Path(__file__).resolve().parent
NOTES = web.AppKey("notes", dict)
UPLOADS = web.AppKey("uploads", Path)
FEED = web.AppKey("feed", weakref.WeakSet)


@web.middleware
async def json_errors(request, handler):
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        return web.json_response({"error": exc.reason, "status": exc.status}, status=exc.status)


@web.middleware
async def timing(request, handler):
    start = time.perf_counter()
    response = await handler(request)
    response.headers["X-Response-Time"] = f"{(time.perf_counter() - start) * 1000:.2f}ms"
    return response


routes = web.RouteTableDef()


@routes.get("/notes")
async def list_notes(request):
    notes = request.app[NOTES]
    return web.json_response([{"id": k, **v} for k, v in sorted(notes.items())])


@routes.post("/notes")
async def create_note(request):
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(reason="Body is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise web.HTTPUnprocessableEntity(reason='Expected {"text": string}')
    notes = request.app[NOTES]
    note_id = max(notes, default=0) + 1
    notes[note_id] = {"text": data["text"]}
    for ws in set(request.app[FEED]):
        await ws.send_json({"event": "created", "id": note_id, "text": data["text"]})
    url = request.app.router["note"].url_for(id=str(note_id))
    return web.json_response(
        {"id": note_id, "text": data["text"]}, status=201, headers={"Location": str(url)}
    )


@routes.get("/notes/{id:\\d+}", name="note")
async def get_note(request):
    note = request.app[NOTES].get(int(request.match_info["id"]))
    if note is None:
        raise web.HTTPNotFound(reason="No such note")
    return web.json_response({"id": int(request.match_info["id"]), **note})


@routes.delete("/notes/{id:\\d+}")
async def delete_note(request):
    if request.app[NOTES].pop(int(request.match_info["id"]), None) is None:
        raise web.HTTPNotFound(reason="No such note")
    return web.Response(status=204)


@routes.post("/files")
async def upload(request):
    form = await request.post()
    field = form.get("file")
    if not isinstance(field, web.FileField):
        raise web.HTTPBadRequest(reason="Send a multipart form with a 'file' field")
    name = Path(field.filename or "upload.bin").name  # never a path from the client
    data = field.file.read()
    (request.app[UPLOADS] / name).write_bytes(data)
    return web.json_response(
        {"name": name, "size": len(data), "content_type": field.content_type}, status=201
    )


@routes.get("/files")
async def list_files(request):
    files = sorted(p.name for p in request.app[UPLOADS].iterdir())
    return web.json_response(files)


@routes.get("/feed")
async def feed(request):
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    request.app[FEED].add(ws)
    try:
        async for _ in ws:  # the client only listens; reading keeps the close handshake going
            pass
    finally:
        request.app[FEED].discard(ws)
    return ws


async def uploads_dir(app):
    with tempfile.TemporaryDirectory(prefix="notes-uploads-") as path:
        app[UPLOADS] = Path(path)
        yield


async def close_feeds(app):
    for ws in set(app[FEED]):
        await ws.close(code=web.WSCloseCode.GOING_AWAY, message=b"Server shutdown")


def create_api():
    api = web.Application(client_max_size=8 * 1024 * 1024)
    api[NOTES] = {}
    api[FEED] = weakref.WeakSet()
    api.cleanup_ctx.append(uploads_dir)
    api.on_shutdown.append(close_feeds)
    api.add_routes(routes)
    return api


async def index(request):
    raise web.HTTPFound("/static/index.html")


def create_app():
    app = web.Application(middlewares=[json_errors, timing])
    app.router.add_get("/", index)
    app.router.add_static("/static", HERE / "notes_static", append_version=True)
    app.add_subapp("/api/v1", create_api())
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    web.run_app(create_app(), host=args.host, port=args.port)
