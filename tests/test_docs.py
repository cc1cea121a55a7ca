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

Shell blocks (```sh) that run quickly and alone carry ``<!-- docs-test: shell -->``: bash runs
them with ``-e`` in an empty directory whose ``.venv`` is the environment running the tests, and
they must exit 0. The others (installs, builds, servers that run until stopped) are checked by
hand, or by ``make check-install``.
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
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMEOUT = 30.0

MARK = re.compile(r"^<!-- docs-test: (run|serve|pytest|fragment|shell)\b ?(.*?) ?-->$")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    mark: str | None  # run, serve, pytest, fragment
    argument: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    found = []
    lines = page.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = index + 1
        while not lines[end].startswith("```"):
            end += 1
        mark = MARK.match(lines[index - 1]) if index else None
        found.append(
            Block(
                page,
                index + 1,
                opening.group(1),
                "\n".join(lines[index + 1 : end]) + "\n",
                mark.group(1) if mark else None,
                mark.group(2) if mark else "",
            )
        )
        index = end + 1
    return found


PYTHON = [block for page in PAGES for block in blocks(page) if block.language == "python"]


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


SHELL = [
    pytest.param(block, id=block.name)
    for page in PAGES
    for block in blocks(page)
    if block.mark == "shell"
]


def test_shell_marks_are_on_shell_blocks() -> None:
    assert SHELL, "no <!-- docs-test: shell --> block"
    for param in SHELL:
        block = param.values[0]
        assert isinstance(block, Block) and block.language == "sh", block


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
