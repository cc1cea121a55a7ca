"""The Python code blocks of README.md and docs/ do what they say.

Each ```python block carries, on the line before it, an HTML comment (invisible once rendered)
that says how it is tested:

- ``<!-- docs-test: run -->``: a complete program; run as it is, it must exit 0;
- ``<!-- docs-test: serve URL -> BODY -->``: a complete program that serves until stopped; run as
  it is (on a free port in place of the one in URL, so that tests never collide on a fixed port),
  a GET of URL must answer BODY, then it is stopped;
- ``<!-- docs-test: pytest -->``: a test file; pytest must pass it (with squall's plugin);
- ``<!-- docs-test: fragment REASON -->``: part of a program (REASON says which part, and why it
  cannot run alone); it must compile, top-level ``await`` allowed.

A block without one fails here, so a new snippet is either run or said to be a fragment.

Every block names its language (```text for output), and every ```sh block carries a mark too:

- ``<!-- docs-test: shell -->``: runs quickly and alone: bash runs it with ``-e`` in an empty
  directory whose ``.venv`` is the environment running the tests; it must exit 0;
- ``<!-- docs-test: install -->``: installs or builds squall (the package index, minutes):
  ``make check-install`` (scripts/check_install.py, run by CI after ``make test``) runs a page's
  install blocks in order in a fresh directory, ``$SQUALL_REPO`` being this checkout;
- ``<!-- docs-test: manual REASON -->``: not run; REASON says why (a server that runs until
  stopped, the reader's own application) and what test covers the same ground.

The mark kinds are those of scripts/doc_blocks.py, which parses the pages for both.
docs/design.md is left out: it has no code blocks, and quotes code only inline.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from doc_blocks import KINDS, Block, all_blocks  # noqa: E402

TIMEOUT = 30.0
BLOCKS = all_blocks()


PYTHON = [block for block in BLOCKS if block.language == "python"]


def by_mark(*marks: str) -> list[pytest.ParameterSet]:
    return [pytest.param(b, id=b.name) for b in PYTHON if b.mark in marks]


def test_the_pages_have_python_blocks() -> None:
    assert len(PYTHON) >= 10, [b.name for b in PYTHON]
    assert by_mark("run", "serve") and by_mark("pytest")


@pytest.mark.parametrize("block", [pytest.param(b, id=b.name) for b in PYTHON])
def test_every_block_says_how_it_is_tested(block: Block) -> None:
    assert block.mark is not None, (
        f"{block.name}: put <!-- docs-test: run|serve URL -> BODY|pytest|fragment REASON --> on"
        " the line before the block (tests/test_docs.py)"
    )
    if block.mark == "fragment":
        assert block.argument, f"{block.name}: say why the fragment cannot run alone"


@pytest.mark.parametrize("block", [pytest.param(b, id=b.name) for b in PYTHON])
def test_every_block_compiles(block: Block) -> None:
    compile(block.code, block.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if block.mark != "fragment":
        ast.parse(block.code)  # a whole program: no top-level await


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONDONTWRITEBYTECODE": "1"}


@pytest.mark.parametrize("block", by_mark("run"))
def test_run(block: Block, tmp_path: Path) -> None:
    (tmp_path / "snippet.py").write_text(block.code)
    result = subprocess.run(
        [sys.executable, "snippet.py"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, f"{block.name}:\n{result.stderr}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("block", by_mark("serve"))
def test_serve(block: Block, tmp_path: Path) -> None:
    url, _, body = block.argument.partition(" -> ")
    shown = re.search(r":(\d+)/", url)
    assert shown is not None and shown.group(1) in block.code, f"{block.name}: {url}"
    port = str(_free_port())
    code = block.code.replace(shown.group(1), port)
    (tmp_path / "snippet.py").write_text(code)
    process = subprocess.Popen(
        [sys.executable, "snippet.py"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        answer = _get(url.replace(shown.group(1), port), process)
    except OSError:
        process.kill()
        pytest.fail(f"{block.name}: no answer; stderr:\n{process.communicate()[1]}")
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=TIMEOUT)
    assert answer == body, block.name


@pytest.mark.parametrize("block", by_mark("pytest"))
def test_pytest(block: Block, tmp_path: Path) -> None:
    (tmp_path / "test_snippet.py").write_text(block.code)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_snippet.py"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
    )
    assert result.returncode == 0, f"{block.name}:\n{result.stdout}\n{result.stderr}"
    assert " passed" in result.stdout and "failed" not in result.stdout


SHELL = [pytest.param(block, id=block.name) for block in BLOCKS if block.mark == "shell"]
COMMANDS = [pytest.param(b, id=b.name) for b in BLOCKS if b.language in ("sh", "console")]


def test_shell_marks_are_on_shell_blocks() -> None:
    assert SHELL, "no <!-- docs-test: shell --> block"
    for block in BLOCKS:
        if block.mark in ("shell", "install", "manual"):
            assert block.language == "sh", f"{block.name}: a {block.mark} mark on a non-sh block"


@pytest.mark.parametrize("block", COMMANDS)
def test_every_shell_block_says_how_it_is_tested(block: Block) -> None:
    assert block.language == "sh", f"{block.name}: commands are ```sh blocks (output: ```text)"
    assert block.mark in ("shell", "install", "manual"), (
        f"{block.name}: put <!-- docs-test: shell|install|manual REASON --> on the line before"
        " the block (tests/test_docs.py)"
    )
    if block.mark == "manual":
        assert block.argument, f"{block.name}: say why the block is not run"


def test_every_block_names_its_language() -> None:
    bare = [b.name for b in BLOCKS if not b.language]
    assert not bare, f"blocks without a language (```sh, ```text, ...): {bare}"


def test_marks_are_known() -> None:
    unknown = [b.name for b in BLOCKS if b.mark is not None and b.mark not in KINDS]
    assert not unknown, f"unknown docs-test marks: {unknown} (known: {KINDS})"


@pytest.mark.parametrize("block", SHELL)
def test_shell(block: Block, tmp_path: Path) -> None:
    for command in re.findall(r"^(\w[\w-]*) ", block.code, re.MULTILINE):
        if shutil.which(command) is None and command not in ("cd", "export"):
            pytest.skip(f"needs {command}")
    if sys.prefix != sys.base_prefix:  # the docs' `.venv/bin/...` is this environment
        (tmp_path / ".venv").symlink_to(sys.prefix)
    result = subprocess.run(
        ["bash", "-e", "-c", block.code],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
    )
    assert result.returncode == 0, f"{block.name}:\n{result.stdout}\n{result.stderr}"
