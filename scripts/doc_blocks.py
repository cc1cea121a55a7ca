"""The fenced code blocks of README.md and docs/, with the mark that says how each is tested.

A mark is an HTML comment (invisible once rendered) on the line before the block's opening fence:
``<!-- docs-test: KIND ARGUMENT -->``. tests/test_docs.py runs the ``python`` blocks and the
``shell`` ones; scripts/check_install.py runs the ``install`` ones (they need the package index and
minutes); ``manual`` blocks say why they are not run. No dependencies beyond the standard
library: check_install runs on a bare Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

KINDS = ("run", "serve", "pytest", "fragment", "shell", "install", "manual")
MARK = re.compile(r"^<!-- docs-test: (\w+)\b ?(.*?) ?-->$")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    """One fenced block: where it is, its language, its text and its mark (None: unmarked)."""

    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    mark: str | None
    argument: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of one page, in order."""
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


def all_blocks() -> list[Block]:
    """Every page's blocks, README first."""
    return [block for page in PAGES for block in blocks(page)]
