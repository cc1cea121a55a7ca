"""The README's benchmark summary, its chart and docs/benchmarks.md show the latest full run.

``make bench`` writes them from benchmarks/results/latest.json (benchmarks/harness/publish.py);
this fails when a page was edited by hand or the results changed without the pages.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import publish  # noqa: E402

DATA = json.loads((ROOT / "benchmarks" / "results" / "latest.json").read_text())


def _between(text: str, marks: tuple[str, str]) -> str:
    start, end = (re.escape(mark) for mark in marks)
    found = re.search(f"{start}\n(.*?){end}", text, re.DOTALL)
    assert found is not None, f"markers {marks} missing"
    return found.group(1)


def test_readme_summary_is_the_latest_run() -> None:
    shown = _between(publish.README.read_text(), publish.README_MARKS)
    assert shown == publish.readme_block(DATA), "run: python benchmarks/publish.py"


def test_benchmarks_page_is_the_latest_run() -> None:
    shown = _between(publish.BENCH_PAGE.read_text(), publish.PAGE_MARKS)
    assert shown == publish.page_block(DATA), "run: python benchmarks/publish.py"


def test_chart_is_the_latest_run() -> None:
    assert publish.CHART.read_text() == publish.chart(DATA), "run: python benchmarks/publish.py"


def test_latest_md_is_the_latest_json() -> None:
    shown = (ROOT / "benchmarks" / "results" / "latest.md").read_text()
    assert shown == publish.report.markdown(DATA)


def test_summary_has_the_three_tables() -> None:
    block = publish.readme_block(DATA)
    for row in ("squall, aiohttp.web app", "hypercorn, raw ASGI app", "squall, WebSocketResponse"):
        assert row in block
    assert block.count("| --- |") == 3
