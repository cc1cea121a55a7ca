"""Typed state keys (AppKey/RequestKey/ResponseKey), NotAppKeyWarning and json_bytes_response,
each checked against aiohttp 3.14 itself."""

from __future__ import annotations

import json
import warnings
from typing import Any

import aiohttp.test_utils
import aiohttp.web
import pytest

from squall import web
from squall.testing import make_mocked_request

from .conftest import raw_request, serve

REF_KEYS = (aiohttp.web.AppKey, aiohttp.web.RequestKey, aiohttp.web.ResponseKey)
OUR_KEYS = (web.AppKey, web.RequestKey, web.ResponseKey)


def test_key_reprs_match_aiohttp() -> None:
    for ref, ours in zip(REF_KEYS, OUR_KEYS, strict=True):
        assert repr(ours("name", int)) == repr(ref("name", int))
        assert repr(ours("name")) == repr(ref("name"))
        assert repr(ours[list[int]]("name")) == repr(ref[list[int]]("name"))
        assert repr(ours("name", aiohttp.ClientSession)) == repr(ref("name", aiohttp.ClientSession))
        assert [k._name[-1] for k in sorted([ours("b"), ours("a")])] == ["a", "b"]
        assert (ours("a") < "z") is (ref("a") < "z") is True


def _warned(fn: Any) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [
        str(w.message).splitlines()[0] for w in caught if w.category.__name__ == "NotAppKeyWarning"
    ]


@pytest.mark.parametrize("impl", ["aiohttp", "squall"])
def test_str_keys_warn_once_per_key(impl: str) -> None:
    w, make = (
        (aiohttp.web, aiohttp.test_utils.make_mocked_request)
        if impl == "aiohttp"
        else (web, make_mocked_request)
    )
    key = f"plain-{impl}"
    req = make("GET", "/")
    resp = w.Response()
    seen = _warned(lambda: req.__setitem__(key, 1))
    seen += _warned(lambda: make("GET", "/").__setitem__(key, 2))  # same key: no second warning
    seen += _warned(lambda: req.__setitem__(w.RequestKey("typed", int), 3))
    seen += _warned(lambda: resp.__setitem__(key, 4))
    assert seen == [
        "It is recommended to use web.RequestKey instances for keys.",
        "It is recommended to use web.ResponseKey instances for keys.",
    ]
    assert req[key] == 1 and resp[key] == 4


@pytest.mark.parametrize("impl", ["aiohttp", "squall"])
def test_state_get_and_in_as_aiohttp(impl: str) -> None:
    w, make = (
        (aiohttp.web, aiohttp.test_utils.make_mocked_request)
        if impl == "aiohttp"
        else (web, make_mocked_request)
    )
    for obj, key in (
        (make("GET", "/"), w.RequestKey("k", int)),
        (w.Response(), w.ResponseKey("k")),
    ):
        # empty: get() gives the default, `in` is False
        assert obj.get(key) is None and obj.get(key, 7) == 7 and key not in obj
        obj[key] = 0
        assert obj.get(key, 7) == 0 and key in obj and obj.get("other") is None
        assert "other" not in obj and len(obj) == 1 and list(obj) == [key]
        with pytest.raises(TypeError):  # a key that cannot be hashed, once there is state
            obj.get([])
        with pytest.raises(TypeError):
            [] in obj  # noqa: B015
        del obj[key]
        assert obj.get(key) is None and key not in obj


def test_json_bytes_response() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_bytes_response({"a": [1, 2]}, dumps=lambda d: json.dumps(d).encode())

    app = web.Application()
    app.router.add_get("/", handler)
    with serve(app) as srv:
        answer = raw_request(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"\r\nContent-Type: application/json\r\n" in answer
    assert answer.endswith(b'{"a": [1, 2]}')
    with pytest.raises(ValueError):
        web.json_bytes_response({"a": 1}, dumps=bytes, body=b"{}")
