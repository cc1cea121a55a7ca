"""docs/compat.md lists every name of aiohttp.web.__all__ with squall's current status."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp.web

import squall.web

DOC = Path(__file__).resolve().parent.parent / "docs" / "compat.md"


def test_every_aiohttp_web_name_is_listed_with_its_status() -> None:
    text = DOC.read_text()
    rows = dict(re.findall(r"^\| `([^`]+)` \| ([a-z ]+) \|", text, flags=re.M))
    for name in aiohttp.web.__all__:
        assert name in rows, f"{name} missing: run scripts/compat_table.py"
        has = hasattr(squall.web, name)
        assert (rows[name] != "not yet") == has, f"{name}: doc says {rows[name]!r}"


def test_the_counts_agree_with_the_table() -> None:
    text = DOC.read_text()
    statuses = re.findall(r"^\| `[^`]+` \| ([a-z ]+) \|", text, flags=re.M)
    line = (
        f"{statuses.count('supported')} supported, {statuses.count('differs')} supported with a"
        f" difference, {statuses.count('not yet')} not yet."
    )
    assert line in text, "run scripts/compat_table.py"
