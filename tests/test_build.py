"""The build under test: the modules setup.py compiles are all compiled or all Python, and CI
tests the compiled build (``SQUALL_EXPECT_COMPILED=1``) besides the sources as Python."""

from __future__ import annotations

import ast
import importlib
import os

import squall

from .conftest import SRC, UNDER_TEST

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
