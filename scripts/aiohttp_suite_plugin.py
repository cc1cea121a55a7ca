"""The pytest plugin scripts/aiohttp_suite.py adds when it runs aiohttp's tests on squall.

It installs ``squall.install_as_aiohttp()`` (then ``squall.testing.aiohttp_plugin`` loads
``aiohttp.pytest_plugin``), and gives the aliased modules a stand-in for each name that aiohttp's
test files import at module level and squall does not have (aiohttp internals such as
``web_protocol.RequestHandler``): otherwise one such import would fail a whole file. A stand-in
is the constant from aiohttp's source, the same name from ``aiohttp.helpers``, or an empty class;
the tests that use one are judged as they fall. The harness prints the stand-ins it made.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import squall.web
from squall.aiohttp_alias import AliasModule, install_as_aiohttp

install_as_aiohttp()

import aiohttp  # noqa: E402
import aiohttp.helpers  # noqa: E402

pytest_plugins = ("squall.testing.aiohttp_plugin",)


def _real_constant(module: str, name: str) -> Any:
    """The literal aiohttp's own source assigns to ``module.name`` at module level, or raise."""
    path = Path(aiohttp.__file__).parent / (module.removeprefix("aiohttp.") + ".py")
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            assert node.value is not None
            allowed = (ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)
            if not all(isinstance(n, allowed) for n in ast.walk(node.value)):
                raise ValueError(name)  # not a constant expression such as 1024**2
            return eval(compile(ast.Expression(node.value), str(path), "eval"), {})
    raise LookupError(name)


def _stand_in(module: str, name: str) -> Any:
    try:
        return _real_constant(module, name)
    except (LookupError, ValueError, SyntaxError, OSError):
        pass
    if hasattr(aiohttp.helpers, name):
        return getattr(aiohttp.helpers, name)
    doc = f"A stand-in for {module}.{name}, which squall does not have."
    return type(name, (), {"__module__": module, "__doc__": doc})


def add_stand_ins(tests: Path) -> list[str]:
    made = []
    for path in sorted(tests.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ImportFrom) or node.module is None:
                continue
            module = sys.modules.get(node.module)
            aliased = isinstance(module, AliasModule) and module.__squall_fallback__ is None
            if not (aliased or module is squall.web):
                continue  # aiohttp's own module (the client side), or aiohttp.abc
            for alias in node.names:
                try:
                    getattr(module, alias.name)
                except AttributeError:
                    setattr(module, alias.name, _stand_in(node.module, alias.name))
                    made.append(f"{node.module}.{alias.name}")
    return sorted(set(made))


STAND_INS = add_stand_ins(Path.cwd() / "tests")
# The harness runs pytest in build/aiohttp-suite/aiohttp-VERSION and reports these.
(Path.cwd().parent / "stand-ins.txt").write_text("".join(f"{name}\n" for name in STAND_INS))
