"""The hello, JSON and echo routes on FastAPI; the benchmark measures ``GET /json``.

``python fastapi_app.py PORT`` serves it on uvicorn (httptools, uvloop, one process, no access
log); the harness serves the same ``fastapi_app:app`` on squall (``python -m squall ...
--interface asgi``) and on granian.
"""

import sys

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

app = FastAPI()


@app.get("/json")
async def json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


@app.get("/{name}", response_class=PlainTextResponse)
async def hello(name: str) -> str:
    return f"Hello, {name}!"


if __name__ == "__main__":
    import uvicorn

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
