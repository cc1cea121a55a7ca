"""The differential suite: every app in tests/compat/apps, under aiohttp and under squall.

Each app module gives ``make_app(web)`` and ``REQUESTS``; both servers get each request as the
same raw bytes on a fresh connection, in order (apps with state see the same history), and the
answers must match up to the documented differences in ``harness.RULES``.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType

import pytest

from . import apps
from .harness import AppServer, Req, compare, exchange, serve_both

APP_MODULES: list[ModuleType] = [
    importlib.import_module(f"{apps.__name__}.{info.name}")
    for info in pkgutil.iter_modules(apps.__path__)
]

CASES: list[tuple[ModuleType, Req]] = [
    (module, req) for module in APP_MODULES for req in module.REQUESTS
]

Servers = dict[str, tuple[AppServer, AppServer]]


def _case_id(case: tuple[ModuleType, Req]) -> str:
    module, req = case
    return f"{module.__name__.rsplit('.', 1)[-1]}:{req.id}"


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with contextlib.ExitStack() as stack:
        yield {
            module.__name__: stack.enter_context(serve_both(module.make_app))
            for module in APP_MODULES
        }


def test_enough_apps_and_requests() -> None:
    assert len(APP_MODULES) >= 6
    assert len(CASES) >= 120


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_same_answer(servers: Servers, case: tuple[ModuleType, Req]) -> None:
    module, req = case
    reference, candidate = servers[module.__name__]
    ref = exchange(reference.port, req)
    got = exchange(candidate.port, req)
    compare(req, ref, got)
