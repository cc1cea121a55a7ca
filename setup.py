"""squall's optional compiled build: the request path through mypyc, beside its Python source.

squall is pure Python, and every module keeps working as Python. When the build can, it also
compiles the modules below with mypyc (the compiler that comes with mypy) into C extensions that
sit beside their .py files and take precedence on import: squall's own work per request costs
15-30% less (docs/design.md, "The compiled build"). Any failure (no C compiler, no Python
headers, mypyc refusing a module) installs the pure-Python package instead, with a warning in the
build's output (``pip install -v``); ``SQUALL_NO_COMPILE=1`` asks for pure Python outright.
``squall.COMPILED`` says which build runs. Only the request path is compiled, and none of the
modules whose classes cannot be native (see docs/design.md).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = (
    "http/clock.py",
    "http/eager.py",
    "http/exchange.py",
    "http/flow.py",
    "http/head.py",
    "http/limits.py",
    "http/output.py",
    "http/protocol.py",
    "http/running.py",
    "http/server.py",
    "http/shared.py",
    "http/streams.py",
    "asgi/cycle.py",
    "asgi/handler.py",
    "web/handler.py",
    "web/jsondumps.py",
    "web/request.py",
    "web/resources.py",
    "web/routing.py",
)


class OptionalBuildExt(build_ext):
    """build_ext that leaves the pure-Python package in place when compiling fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers...
            warnings.warn(f"squall: compiling failed, installing pure Python ({exc})", stacklevel=1)

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            warnings.warn(f"squall: could not compile {ext.name} ({exc})", stacklevel=1)


def ext_modules() -> list[Any]:
    if os.environ.get("SQUALL_NO_COMPILE") or sys.implementation.name != "cpython":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        warnings.warn("squall: mypyc is not installed, installing pure Python", stacklevel=1)
        return []
    paths = [os.path.join("src", "squall", module) for module in COMPILED]
    try:
        return list(mypycify(paths, opt_level="3", group_name="squall"))
    except (Exception, SystemExit) as exc:  # mypyc reports type errors with SystemExit
        warnings.warn(f"squall: mypyc failed, installing pure Python ({exc})", stacklevel=1)
        return []


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
