"""``on_response_prepare`` receivers on responses a handler returns whole (what aiohttp-cors does).

The request handler sends a returned ``Response`` after the signal's receivers, as plainly as it
would without them while no receiver changed its head. Each test reads the answer with aiohttp's
client over keep-alive HTTP/1.1, several requests a connection; ``SQUALL_REFERENCE=aiohttp`` runs
the same applications on aiohttp.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from .test_web_api import REFERENCE, serve_any, web

BODY = "Hello, signalled world!"


async def hello(request: Any) -> Any:
    return web.Response(text=BODY)


async def status(request: Any) -> Any:
    return web.Response(text=BODY, status=201)


async def sleepy_hello(request: Any) -> Any:
    await asyncio.sleep(0)  # answered from the connection's task, not in data_received
    return web.Response(text=BODY)


def make_app(*receivers: Any) -> Any:
    app = web.Application()
    for receiver in receivers:
        app.on_response_prepare.append(receiver)
    app.router.add_get("/hello", hello)
    app.router.add_get("/status", status)
    app.router.add_get("/sleepy", sleepy_hello)
    return app


async def _get_many(port: int, paths: list[str]) -> list[tuple[int, Any, bytes]]:
    answers = []
    async with aiohttp.ClientSession() as session:  # one keep-alive connection
        for path in paths:
            async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                answers.append((resp.status, resp.headers, await resp.read()))
    return answers


def get_many(port: int, paths: list[str]) -> list[tuple[int, Any, bytes]]:
    return asyncio.run(_get_many(port, paths))


PATHS = ["/hello", "/status", "/sleepy", "/hello", "/hello"]


def test_a_receiver_that_changes_nothing_sees_every_response() -> None:
    seen: list[tuple[str, int]] = []

    async def watch(request: Any, response: Any) -> None:
        seen.append((request.path, response.status))

    with serve_any(make_app(watch)) as srv:
        answers = get_many(srv.port, PATHS)
    assert seen == [(path, 201 if path == "/status" else 200) for path in PATHS]
    for path, (code, headers, body) in zip(PATHS, answers, strict=True):
        assert code == (201 if path == "/status" else 200)
        assert body == BODY.encode()
        assert headers["Content-Length"] == str(len(BODY))
        assert headers["Content-Type"] == "text/plain; charset=utf-8"


def test_a_header_set_by_receivers_is_sent() -> None:
    async def first(request: Any, response: Any) -> None:
        response.headers["X-Order"] = "first"

    async def second(request: Any, response: Any) -> None:
        await asyncio.sleep(0)  # a receiver that suspends
        response.headers["X-Order"] += ",second"

    with serve_any(make_app(first, second)) as srv:
        answers = get_many(srv.port, PATHS)
    for path, (code, headers, body) in zip(PATHS, answers, strict=True):
        assert code == (201 if path == "/status" else 200)
        assert headers["X-Order"] == "first,second"
        assert body == BODY.encode()
        assert headers["Content-Length"] == str(len(BODY))


def test_a_receiver_only_for_some_requests() -> None:
    async def cors_like(request: Any, response: Any) -> None:
        if request.headers.get("Origin") == "https://app.example.com":
            response.headers["Access-Control-Allow-Origin"] = "https://app.example.com"

    async def run(port: int) -> list[Any]:
        headers = []
        async with aiohttp.ClientSession() as session:
            for origin in (None, "https://app.example.com", None):
                extra = {"Origin": origin} if origin else {}
                async with session.get(f"http://127.0.0.1:{port}/hello", headers=extra) as resp:
                    assert await resp.read() == BODY.encode()
                    headers.append(resp.headers.get("Access-Control-Allow-Origin"))
        return headers

    with serve_any(make_app(cors_like)) as srv:
        assert asyncio.run(run(srv.port)) == [None, "https://app.example.com", None]


def test_a_receiver_that_is_an_async_callable_object() -> None:
    class Stamp:
        async def __call__(self, request: Any, response: Any) -> None:
            response.headers["X-Stamp"] = "object"

    with serve_any(make_app(Stamp())) as srv:
        ((code, headers, body),) = get_many(srv.port, ["/hello"])
    assert (code, headers["X-Stamp"], body) == (200, "object", BODY.encode())


@pytest.mark.parametrize("path", ["/hello", "/sleepy"])
def test_a_receiver_that_raises_gives_a_500(path: str) -> None:
    async def broken(request: Any, response: Any) -> None:
        raise RuntimeError("receiver failed")

    with serve_any(make_app(broken)) as srv:
        if REFERENCE:  # aiohttp prepares its 500 through the same receiver, and hangs up
            with pytest.raises(aiohttp.ServerDisconnectedError):
                get_many(srv.port, [path])
            return
        ((code, _, _),) = get_many(srv.port, [path])
    assert code == 500  # nothing was sent: squall answers the error


def test_receivers_of_the_root_and_of_a_sub_application() -> None:
    def stamp(label: str) -> Any:
        async def receiver(request: Any, response: Any) -> None:
            response.headers.add("X-Prepared-By", label)

        return receiver

    sub = web.Application()
    sub.on_response_prepare.append(stamp("sub"))
    sub.router.add_get("/hello", hello)
    root = make_app(stamp("root"))
    root.add_subapp("/sub", sub)
    with serve_any(root) as srv:
        answers = get_many(srv.port, ["/sub/hello", "/hello", "/sub/hello"])
    assert [headers.getall("X-Prepared-By") for _, headers, _ in answers] == [
        ["root", "sub"],
        ["root"],
        ["root", "sub"],
    ]
    assert all(body == BODY.encode() for _, _, body in answers)
