"""The install hints in squall's error messages name a command that works.

Each optional dependency missing from the environment (hidden from the import system in a child
Python) must give an error that names it, the ``pip install`` that adds it, and squall's extra
that carries it; and that extra, in pyproject.toml, must really list it (so the hint works from a
checkout or a git URL, as docs/install.md shows).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A child Python in which the named modules cannot be imported: ``sys.modules[name] = None``
# makes ``import name`` raise ImportError, as when the package is not installed.
HIDE = "import sys\nfor _name in {names!r}:\n    sys.modules[_name] = None\n"


def run_hidden(names: list[str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HIDE.format(names=names) + code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def extras() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(project["optional-dependencies"])


def extra_lists(extra: str, package: str) -> bool:
    return any(re.match(rf"{package}\b", requirement) for requirement in extras()[extra])


def test_install_as_aiohttp_without_aiohttp_says_pip_install_aiohttp() -> None:
    result = run_hidden(["aiohttp"], "import squall\nsquall.install_as_aiohttp()")
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "needs aiohttp installed" in result.stderr
    assert "pip install aiohttp" in result.stderr


def test_testing_client_without_aiohttp_names_the_install_and_the_extra() -> None:
    result = run_hidden(["aiohttp"], "import squall.testing.client")
    assert result.returncode != 0
    assert "pip install aiohttp" in result.stderr
    assert "[testing] extra" in result.stderr
    assert extra_lists("testing", "aiohttp")


def test_reload_without_watchfiles_names_the_install_and_the_extra(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("async def app(scope, receive, send):\n    pass\n")
    argv = ["app:app", "--reload", "--port", "0", "--app-dir", str(tmp_path)]
    code = f"from squall.cli import main\nraise SystemExit(main({argv!r}))"
    result = run_hidden(["watchfiles"], code)
    assert result.returncode != 0
    assert "--reload needs watchfiles" in result.stderr
    assert "pip install watchfiles" in result.stderr
    assert "[reload] extra" in result.stderr
    assert extra_lists("reload", "watchfiles")


@pytest.mark.parametrize("package", ["brotli", "zstandard"])
def test_compression_extra_lists_what_the_guide_says(package: str) -> None:
    """docs/guide.md sends users to the [compression] extra for br and zstd."""
    assert "`[compression]` extra" in (ROOT / "docs" / "guide.md").read_text()
    assert extra_lists("compression", package)
