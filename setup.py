"""squall's optional compiled build: the request path through mypyc, beside its Python source.

squall is pure Python, and every module keeps working as Python. When the build can, it also
compiles the modules below with mypyc (the compiler that comes with mypy) into C extensions that
sit beside their .py files and take precedence on import: squall's own work per request costs
15-30% less (docs/design.md, "The compiled build"). Any failure (no C compiler, no Python
headers, mypyc refusing a module) installs the pure-Python package instead, with a warning in the
build's output (pip shows it with ``pip install -v``) and a note in the package, FALLBACK_NOTE,
that the server prints as it starts. ``SQUALL_NO_COMPILE=1`` asks for pure Python outright (no
note); ``SQUALL_EXPECT_COMPILED=1`` turns any fallback into a failed build that says why (CI
sets it). ``squall.COMPILED`` says which build runs, and so does ``squall``'s start-up line. Only
the request path is compiled, and none of the modules whose classes cannot be native (see
docs/design.md).

mypyc type-checks the modules it compiles, with the types of squall's dependencies: pyproject.toml
lists them as build requirements, so that pip's isolated build environment has them.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

COMPILED = (
    "http/clock.py",
    "http/eager.py",
    "http/exchange.py",
    "http/flow.py",
    "http/h2.py",
    "http/h2exchange.py",
    "http/h2fields.py",
    "http/head.py",
    "http/limits.py",
    "http/output.py",
    "http/protocol.py",
    "http/running.py",
    "http/server.py",
    "http/shared.py",
    "http/streams.py",
    "http/websocket.py",
    "http/ws_channel.py",
    "asgi/cycle.py",
    "asgi/handler.py",
    "asgi/websocket.py",
    "web/handler.py",
    "web/jsondumps.py",
    "web/request.py",
    "web/resources.py",
    "web/routing.py",
    "metrics.py",
)


EXPECT_COMPILED = bool(os.environ.get("SQUALL_EXPECT_COMPILED"))

# Written into the package when the build meant to compile and fell back: the reason, which the
# server's start-up prints (squall.server.run.fallback_line), since pip hides the build's output.
FALLBACK_NOTE = "_build_fallback.txt"
FALLBACKS: list[str] = []


def write_note(build_lib: str) -> None:
    path = os.path.join(build_lib, "squall", FALLBACK_NOTE)
    if FALLBACKS:
        with open(path, "w") as note:
            note.write(FALLBACKS[-1] + "\n")
    elif os.path.exists(path):  # left in a reused build directory by an earlier build
        os.remove(path)


def fall_back(reason: str) -> None:
    """Install pure Python, saying why; or fail the build under SQUALL_EXPECT_COMPILED=1."""
    if EXPECT_COMPILED:
        raise SystemExit(
            f"squall: {reason}.\nsquall: SQUALL_EXPECT_COMPILED=1 is set, so the build fails"
            " rather than install pure Python (docs/install.md, 'Which build you got')"
        )
    message = (
        f"squall: {reason}; installing pure Python, which behaves the same but serves about 25%"
        " fewer requests a second (docs/install.md, 'Which build you got')"
    )
    warnings.warn(message, stacklevel=2)
    print(message, file=sys.stderr, flush=True)
    FALLBACKS.append(reason)


class NotingBuildPy(build_py):
    """build_py that also leaves FALLBACK_NOTE in the package when compiling was given up."""

    def run(self) -> None:
        super().run()
        write_note(self.build_lib)


class OptionalBuildExt(build_ext):
    """build_ext that leaves the pure-Python package in place when compiling fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers...
            fall_back(f"compiling failed ({exc})")
        write_note(self.build_lib)

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            fall_back(f"could not compile {ext.name} ({exc})")


def ext_modules() -> list[Any]:
    if os.environ.get("SQUALL_NO_COMPILE") or sys.implementation.name != "cpython":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        fall_back("mypyc (from mypy) is not installed in the build environment")
        return []
    paths = [os.path.join("src", "squall", module) for module in COMPILED]
    try:
        return list(mypycify(paths, opt_level="3", group_name="squall"))
    except (Exception, SystemExit) as exc:  # mypyc reports type errors with SystemExit
        fall_back(
            f"mypyc's type check failed (exit {exc}, errors above): are squall's dependencies"
            " installed where it builds? (pyproject.toml's [build-system] requires)"
        )
        return []


setup(
    ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt, "build_py": NotingBuildPy}
)
