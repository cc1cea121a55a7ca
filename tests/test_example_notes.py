"""examples/notes_api.py runs as written and does what its docstring says."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_up(base: str) -> None:
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"{base}/api/v1/notes") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("notes_api did not start")
            await asyncio.sleep(0.1)


async def _exercise(base: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/", allow_redirects=False) as r:
            out["index"] = (r.status, r.headers["Location"])
        async with s.get(f"{base}/static/index.html") as r:
            out["static"] = (r.status, r.content_type, "<h1>notes</h1>" in await r.text())
        ws = await s.ws_connect(f"{base}/api/v1/feed")
        async with s.post(f"{base}/api/v1/notes", json={"text": "buy milk"}) as r:
            out["created"] = (r.status, await r.json(), r.headers["Location"])
            out["timed"] = r.headers["X-Response-Time"].endswith("ms")
        out["pushed"] = await ws.receive_json(timeout=5)
        async with s.get(f"{base}{out['created'][2]}") as r:
            out["fetched"] = await r.json()
        async with s.post(f"{base}/api/v1/notes", data=b"not json") as r:
            out["bad json"] = (r.status, await r.json())
        async with s.get(f"{base}/api/v1/notes/99") as r:
            out["missing"] = (r.status, await r.json())
        form = aiohttp.FormData()
        form.add_field("file", b"hello file", filename="../../etc/x.txt", content_type="text/plain")
        async with s.post(f"{base}/api/v1/files", data=form) as r:
            out["upload"] = (r.status, await r.json())
        async with s.get(f"{base}/api/v1/files") as r:
            out["files"] = await r.json()
        async with s.delete(f"{base}/api/v1/notes/1") as r:
            out["deleted"] = r.status
        async with s.get(f"{base}/api/v1/notes") as r:
            out["left"] = await r.json()
        await ws.close()
    return out


def test_notes_api_example_runs_as_written() -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "notes_api.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:

        async def run() -> dict[str, Any]:
            await _wait_up(base)
            return await _exercise(base)

        out = asyncio.run(asyncio.wait_for(run(), 30))
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
    assert out["index"] == (302, "/static/index.html")
    assert out["static"] == (200, "text/html", True)
    assert out["created"] == (201, {"id": 1, "text": "buy milk"}, "/api/v1/notes/1")
    assert out["timed"]
    assert out["pushed"] == {"event": "created", "id": 1, "text": "buy milk"}
    assert out["fetched"] == {"id": 1, "text": "buy milk"}
    assert out["bad json"] == (400, {"error": "Body is not JSON", "status": 400})
    assert out["missing"] == (404, {"error": "No such note", "status": 404})
    # aiohttp's client sends the name percent-encoded (as aiohttp's server, squall keeps it so);
    # either way the example stores one plain file name, never a path.
    name = "..%2F..%2Fetc%2Fx.txt"
    assert out["upload"] == (201, {"name": name, "size": 10, "content_type": "text/plain"})
    assert out["files"] == [name]
    assert out["deleted"] == 204
    assert out["left"] == []
    assert proc.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr, stderr.decode()
    assert json.dumps(out)  # everything observed is plain data
