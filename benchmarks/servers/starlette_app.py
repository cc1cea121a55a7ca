"""The hello, JSON and echo routes on Starlette, served by uvicorn (httptools, uvloop).

Usage: ``python starlette_app.py PORT``.
"""

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


async def hello(request: Request) -> Response:
    return PlainTextResponse(f"Hello, {request.path_params['name']}!")


async def json(request: Request) -> Response:
    return JSONResponse({"message": "Hello, World!"})


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


app = Starlette(
    routes=[
        Route("/json", json),
        Route("/echo", echo, methods=["POST"]),
        Route("/{name}", hello),
    ]
)

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,  # as in asgi_raw.py
    )
