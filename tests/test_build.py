"""The build under test: the modules setup.py compiles are all compiled or all Python, and CI
tests the compiled build (``SQUALL_EXPECT_COMPILED=1``) besides the sources as Python. And the
build itself: the standard build paths (``pip install .``, ``pip wheel .``, ``python -m build``)
have what mypyc needs, and a fallback to pure Python is said, or fails under
``SQUALL_EXPECT_COMPILED=1``."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import squall

from .conftest import SRC, UNDER_TEST
from .server_process import SquallProcess

ROOT = SRC.parent.parent


def compiled_paths() -> list[str]:
    """setup.py's COMPILED, read without running setup.py."""
    for node in ast.parse((ROOT / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED":
            return list(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no COMPILED")


def test_setup_compiles_existing_modules() -> None:
    paths = compiled_paths()
    assert paths and all((SRC / path).is_file() for path in paths)


def test_compiled_modules_all_or_none() -> None:
    for path in compiled_paths():
        module = importlib.import_module("squall." + path.removesuffix(".py").replace("/", "."))
        assert module.__file__ is not None
        assert (not module.__file__.endswith(".py")) == squall.COMPILED, path


def test_the_build_under_test() -> None:
    if UNDER_TEST == SRC and not any(SRC.rglob("*.so")):
        assert not squall.COMPILED  # the sources as Python: the fallback where nothing compiles
    elif os.environ.get("SQUALL_EXPECT_COMPILED"):
        assert squall.COMPILED, "CI expects the compiled build: see the pip install's warnings"


def test_build_requires_what_mypyc_type_checks_against() -> None:
    """pip builds in an isolated environment: without squall's dependencies there, mypyc's type
    check fails on their types and the build silently falls back to pure Python (py3-none-any)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requires = pyproject["build-system"]["requires"]
    assert any(requirement.startswith("mypy") for requirement in requires)
    missing = [dep for dep in pyproject["project"]["dependencies"] if dep not in requires]
    assert not missing, f"add to [build-system] requires too: {missing}"


def _run_setup_py(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """setup.py as a build without mypyc runs it, with setuptools.setup() a stand-in."""
    script = (
        "import runpy, sys, setuptools\n"
        "sys.modules['mypyc'] = sys.modules['mypyc.build'] = None  # not installed\n"
        "setuptools.setup = lambda **kw: print('ext_modules', len(kw['ext_modules']))\n"
        "runpy.run_path('setup.py', run_name='__main__')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQUALL_")} | env
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_fallback_to_python_is_said_plainly() -> None:
    result = _run_setup_py({})
    assert result.returncode == 0, result.stderr
    assert "ext_modules 0" in result.stdout
    assert "squall: mypyc (from mypy) is not installed" in result.stderr
    assert "installing pure Python" in result.stderr


def test_expect_compiled_fails_the_build_instead() -> None:
    result = _run_setup_py({"SQUALL_EXPECT_COMPILED": "1"})
    assert result.returncode != 0
    assert "SQUALL_EXPECT_COMPILED=1 is set, so the build fails" in result.stderr
    assert "ext_modules" not in result.stdout


def test_a_fallback_build_says_so_when_the_server_starts(tmp_path: Path) -> None:
    """pip hides a build's output unless run with -v, so the warning alone is easy to miss: a
    build that meant to compile and fell back leaves the reason in the package, and the server
    prints it as it starts (a pure-Python build asked for with SQUALL_NO_COMPILE leaves none)."""
    lib = tmp_path / "lib"
    script = (
        "import runpy, sys\n"
        "sys.modules['mypyc'] = sys.modules['mypyc.build'] = None  # not installed\n"
        f"sys.argv = ['setup.py', '-q', 'build', '--build-base', {str(tmp_path / 'b')!r},"
        f" '--build-lib', {str(lib)!r}]\n"
        "runpy.run_path('setup.py', run_name='__main__')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQUALL_")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    note = (lib / "squall" / "_build_fallback.txt").read_text()
    assert "mypyc (from mypy) is not installed" in note
    (tmp_path / "app.py").write_text("async def app(scope, receive, send):\n    pass\n")
    with SquallProcess(tmp_path, "app:app", "--port", "0", env={"PYTHONPATH": str(lib)}) as proc:
        proc.wait_ready()
        proc.stop()
        stderr = proc.stderr()
    assert "this squall is pure Python" in stderr
    assert "mypyc (from mypy) is not installed" in stderr
    assert "docs/install.md ('Which build you got')" in stderr

    rebuilt = subprocess.run(  # the same build directory, pure Python on purpose: no note
        [sys.executable, "-c", script.replace("sys.modules['mypyc'] = ", "_ = ")],
        cwd=ROOT,
        env=env | {"SQUALL_NO_COMPILE": "1"},
        capture_output=True,
        text=True,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert not (lib / "squall" / "_build_fallback.txt").exists()
