"""squall.web.jsondumps.dumps is json.dumps (same text, same errors), only cheaper."""

from __future__ import annotations

import json
import threading
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from squall import web
from squall.web import jsondumps
from squall.web.jsondumps import dumps

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=25,
)


def test_the_fast_encoder_is_in_use() -> None:
    assert dumps is jsondumps._dumps  # CPython has the C encoder: the fallback is not taken


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_same_text_as_json_dumps(value: Any) -> None:
    assert dumps(value) == json.dumps(value)


flat_values = (
    st.none() | st.booleans() | st.integers() | st.text() | st.floats() | st.lists(st.none())
)
flat_keys = st.text() | st.integers() | st.none()


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(flat_keys, flat_values, max_size=5))
def test_small_flat_dicts_same_text_as_json_dumps(value: dict[Any, Any]) -> None:
    """Small dicts of str keys and str/int/bool/None values are encoded by hand (_flat)."""
    assert dumps(value) == json.dumps(value)


def test_small_flat_dicts_go_the_short_way() -> None:
    assert jsondumps._flat({"message": "Hello, World!"}) == '{"message": "Hello, World!"}'
    assert jsondumps._flat({"a": True, "b": None, "c": -(10**30), "é": "\u2603"}) == json.dumps(
        {"a": True, "b": None, "c": -(10**30), "é": "\u2603"}
    )
    for other in ({1: "x"}, {"a": 1.5}, {"a": []}, {"a": {}}):
        assert jsondumps._flat(other) is None  # the C encoder's


def test_same_errors_and_no_stale_marks_after_them() -> None:
    loop: list[Any] = []
    loop.append(loop)
    cases: list[Any] = [{"a": [object()]}, loop, {"k": {1j: 2}}]
    for value in cases:
        errors = []
        for encode in (dumps, json.dumps):
            try:
                encode(value)
            except (TypeError, ValueError) as exc:
                errors.append((type(exc), str(exc)))
        assert len(errors) == 2 and errors[0] == errors[1], errors
        # a failure mid-way must not leave marks that look like a cycle next time
        shared = {"x": [1, 2]}
        assert dumps([shared, shared]) == json.dumps([shared, shared])


def test_reentered_on_one_thread() -> None:
    class Encodes(dict[str, Any]):
        def items(self) -> Any:  # the C encoder calls back into Python for dict subclasses
            return [("inner", dumps({"deep": [1]}))]

    value = {"outer": Encodes(a=1)}
    assert dumps(value) == json.dumps(value)


def test_threads_each_get_right_answers() -> None:
    failures: list[str] = []

    def work(n: int) -> None:
        for i in range(2000):
            value = {"thread": n, "i": i, "list": [n] * (i % 7)}
            if dumps(value) != json.dumps(value):
                failures.append(f"{n}/{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_json_response_uses_it_and_custom_dumps_still_wins() -> None:
    resp = web.json_response({"message": "Hello, World!"})
    assert resp.body == b'{"message": "Hello, World!"}'
    assert resp.content_type == "application/json" and resp.charset == "utf-8"
    custom = web.json_response({"a": 1}, dumps=lambda v: json.dumps(v, separators=(",", ":")))
    assert custom.body == b'{"a":1}'
