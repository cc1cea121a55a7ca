"""``--access-log-format json``: every log line a JSON object, the same access fields for both
interfaces, from a real ``squall`` process (and from Python: JsonAccessLogger, ASGI serve()).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from squall import web
from squall.asgi import serve as asgi_serve
from squall.jsonlog import ACCESS_FIELDS, JsonFormatter, access_json

from .conftest import serve
from .server_process import SquallProcess

WEB_APP = """
from squall import web

async def hello(request):
    return web.Response(text="Hello, " + request.match_info["name"])

async def echo(request):
    return web.Response(body=await request.read())

async def stream(request):
    resp = web.StreamResponse()
    await resp.prepare(request)
    await resp.write(b"abc")
    await resp.write(b"defg")
    await resp.write_eof()
    return resp

async def empty(request):
    return web.Response(status=204)

app = web.Application()
app.add_routes([
    web.post("/echo", echo), web.get("/stream", stream), web.get("/empty", empty),
    web.get("/hello/{name}", hello),
])
"""

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if path == "/echo":
        chunks = [body]
    elif path == "/stream":
        chunks = [b"abc", b"defg"]
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})
        return
    elif path.startswith("/hello/"):
        chunks = [b"Hello, " + path[len("/hello/"):].encode()]
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"Not Found"})
        return
    headers = [(b"content-type", b"text/plain")]
    if path != "/stream":
        headers.append((b"content-length", str(len(chunks[0])).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for i, chunk in enumerate(chunks):
        more = i < len(chunks) - 1
        await send({"type": "http.response.body", "body": chunk, "more_body": more})
"""


def _app_dir(tmp_path: Path) -> Path:
    (tmp_path / "webapp.py").write_text(textwrap.dedent(WEB_APP))
    (tmp_path / "asgiapp.py").write_text(textwrap.dedent(ASGI_APP))
    return tmp_path


async def _requests(url: str) -> None:
    """The requests whose records the tests check, in this order, one connection each."""
    ua = {"User-Agent": "json-log-test/1.0"}
    async with aiohttp.ClientSession(headers=ua) as session:
        async with session.get(
            url + "/hello/w%C3%B6rld?x=1&y=%22", headers={"X-Request-ID": 'id "1"'}
        ) as r:
            assert await r.text() == "Hello, wörld"
        async with session.post(url + "/echo", data=b"x" * 1000) as r:
            assert len(await r.read()) == 1000
        async with session.get(url + "/stream") as r:
            assert await r.read() == b"abcdefg"
        async with session.head(url + "/hello/h") as r:
            assert r.status == 200
        async with session.get(url + "/empty") as r:
            assert r.status == 204
        async with session.get(url + "/nowhere", headers={"X-Forwarded-For": "203.0.113.9"}) as r:
            assert r.status == 404


def _check_records(records: list[dict[str, Any]]) -> None:
    assert [list(r) for r in records] == [list(ACCESS_FIELDS)] * 6, records
    for record in records:
        when = datetime.datetime.fromisoformat(record["time"])
        assert when.utcoffset() == datetime.timedelta(0)
        assert abs(datetime.datetime.now(datetime.UTC) - when) < datetime.timedelta(minutes=1)
        assert record["protocol"] == "HTTP/1.1"
        assert record["user_agent"] == "json-log-test/1.0"
        assert type(record["duration"]) is float and 0 <= record["duration"] < 5
        assert type(record["status"]) is int and type(record["bytes"]) is int
    hello, echo, stream, head, empty, missing = records
    assert hello["method"] == "GET" and hello["path"] == "/hello/wörld"
    assert hello["query"] == "x=1&y=%22" and hello["request_id"] == 'id "1"'
    assert (hello["status"], hello["bytes"], hello["client"]) == (200, 13, "127.0.0.1")
    assert (echo["method"], echo["status"], echo["bytes"]) == ("POST", 200, 1000)
    assert echo["request_id"] is None and echo["query"] == ""
    assert (stream["status"], stream["bytes"]) == (200, 7)
    assert (head["method"], head["status"], head["bytes"]) == ("HEAD", 200, 0)
    assert (empty["status"], empty["bytes"]) == (204, 0)
    # 127.0.0.1 is a trusted proxy by default: the client is the one it forwards for
    assert (missing["status"], missing["client"]) == (404, "203.0.113.9")


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` parsed as a JSON object (fails on any other line)."""
    parsed = [json.loads(line) for line in text.splitlines()]
    assert all(type(p) is dict for p in parsed)
    return parsed


@pytest.mark.parametrize("app", ["webapp:app", "asgiapp:app"])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_json_access_log_from_the_command_line(tmp_path: Path, app: str, workers: str) -> None:
    app_dir = _app_dir(tmp_path)
    args = (app, "--port", "0", "--workers", workers, "--access-log-format", "json")
    with SquallProcess(app_dir, *args) as server:
        url = server.wait_ready()
        asyncio.run(_requests(url))
        status, _ = server.stop()
        assert status == 0
        lines = _json_lines(server.stderr())
    access = [line for line in lines if "status" in line]
    _check_records(access)
    others = [line for line in lines if "status" not in line]
    if workers == "2":  # the supervisor's own lines are JSON objects too
        assert any("stopping the workers" in line["message"] for line in others), others
    for line in others:
        assert list(line)[:4] == ["time", "level", "logger", "message"]


async def _get_with_ids(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        headers = {"X-Correlation-ID": "c-7", "X-Request-ID": "not this"}
        async with session.get(url + "/hello/a", headers=headers) as r:
            assert r.status == 200


def test_request_id_header_is_configurable(tmp_path: Path) -> None:
    app_dir = _app_dir(tmp_path)
    for app in ("webapp:app", "asgiapp:app"):
        args = (app, "--port", "0", "--access-log-format", "json")
        with SquallProcess(app_dir, *args, "--request-id-header", "X-Correlation-ID") as server:
            asyncio.run(_get_with_ids(server.wait_ready()))
            server.stop()
            (record,) = _json_lines(server.stderr())
        assert record["request_id"] == "c-7", app


def test_default_format_is_unchanged(tmp_path: Path) -> None:
    with SquallProcess(_app_dir(tmp_path), "asgiapp:app", "--port", "0") as server:
        url = server.wait_ready()
        asyncio.run(_requests(url))
        server.stop()
        lines = server.stderr().splitlines()
    assert len(lines) == 6 and lines[0].startswith("INFO:squall.access: 127.0.0.1:")


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("squall.tests.jsonlog"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_logger() -> Any:
    logger = logging.getLogger("squall.tests.jsonlog")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = _Lines()
    logger.addHandler(handler)
    yield logger, handler
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)


def test_json_access_logger_class_for_app_runner(json_logger: Any) -> None:
    """From Python, the aiohttp way: ``access_log_class=web.JsonAccessLogger``."""
    logger, handler = json_logger
    namespace: dict[str, Any] = {}
    exec(compile(WEB_APP, "webapp", "exec"), namespace)
    with serve(
        namespace["app"],
        access_log=logger,
        access_log_class=web.JsonAccessLogger,
        forwarded_allow_ips="127.0.0.1",
    ) as srv:
        asyncio.run(_requests(srv.url))
    _check_records(_json_lines("\n".join(handler.lines)))


def test_asgi_serve_json_access_log(json_logger: Any) -> None:
    logger, handler = json_logger
    namespace: dict[str, Any] = {}
    exec(compile(ASGI_APP, "asgiapp", "exec"), namespace)

    async def main() -> None:
        async with asgi_serve(
            namespace["app"],
            port=0,
            lifespan=False,
            forwarded_allow_ips="127.0.0.1",
            access_log=logger,
            access_log_format="json",
        ) as server:
            await _requests(server.url)

    asyncio.run(main())
    _check_records(_json_lines("\n".join(handler.lines)))


def test_json_formatter_puts_other_records_and_tracebacks_in_one_line() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("squall.server", logging.ERROR, "f", 1, "a %s", ("b",), None)
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert (data["level"], data["logger"], data["message"]) == ("error", "squall.server", "a b")
    assert "ValueError: boom" in data["exception"]


def test_access_json_is_one_line_of_valid_json_whatever_the_strings() -> None:
    nasty = 'a"b\\c\nd\r\te\x00f\u2028g\U0001f600h'
    line = access_json(None, "GET", nasty, nasty, "HTTP/1.0", "x", 0, 1e-7, nasty, nasty)
    assert "\n" not in line and "\r" not in line and line.isascii()
    record = json.loads(line)
    assert list(record) == list(ACCESS_FIELDS)
    assert record["path"] == record["query"] == record["user_agent"] == nasty
    assert record["client"] is None and record["status"] == "x"
    assert record["duration"] == 0.0 and '"duration":0.000000' in line


WS_APPS = """
from squall import web

async def ws(request):
    sock = web.WebSocketResponse()
    await sock.prepare(request)
    async for msg in sock:
        await sock.send_str(msg.data)
    return sock

app = web.Application()
app.add_routes([web.get("/ws", ws)])

async def asgi(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message["text"]})
"""


async def _talk(url: str) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as sock:
        await sock.send_str("hi")
        assert (await sock.receive()).data == "hi"


@pytest.mark.parametrize("app", ["wsapps:app", "wsapps:asgi"])
def test_websocket_record(tmp_path: Path, app: str) -> None:
    (tmp_path / "wsapps.py").write_text(WS_APPS)
    with SquallProcess(tmp_path, app, "--port", "0", "--access-log-format", "json") as server:
        url = server.wait_ready()

        asyncio.run(_talk(url + "/ws?room=1"))
        server.stop()
        (record,) = _json_lines(server.stderr())
    assert list(record) == list(ACCESS_FIELDS)
    assert (record["method"], record["path"], record["query"]) == ("GET", "/ws", "room=1")
    assert (record["status"], record["bytes"]) == (101, 0)
    assert record["user_agent"].startswith("Python/")
