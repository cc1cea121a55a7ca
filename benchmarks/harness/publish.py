"""Write a full run's figures where readers look: the README's short tables and chart, and
docs/benchmarks.md's full tables, each between its markers. ``make bench`` calls it after a full
run; ``python benchmarks/publish.py`` does it again from results/latest.json. Nobody copies
figures by hand, and tests/test_bench_publish.py fails when the pages and the results differ.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness import report

ROOT = Path(__file__).resolve().parent.parent.parent
README = ROOT / "README.md"
BENCH_PAGE = ROOT / "docs" / "benchmarks.md"
CHART = ROOT / "docs" / "hello.svg"

README_MARKS = ("<!-- bench-summary:start -->", "<!-- bench-summary:end -->")
PAGE_MARKS = ("<!-- bench:start -->", "<!-- bench:end -->")

# (server in the results, its row in the README), in the order shown.
HELLO_ROWS = (
    ("squall", "squall, aiohttp.web app"),
    ("squall-asgi", "squall, raw ASGI app"),
    ("granian", "granian, raw ASGI app"),
    ("uvicorn", "uvicorn, raw ASGI app"),
    ("aiohttp", "aiohttp (uvloop)"),
)
H2_ROWS = (
    ("h2-squall", "squall, aiohttp.web app"),
    ("h2-squall-asgi", "squall, raw ASGI app"),
    ("h2-granian", "granian `--http 2`, raw ASGI app"),
    ("h2-uvicorn", "uvicorn `--http zttp --http2`, raw ASGI app"),
    ("h2-hypercorn", "hypercorn, raw ASGI app"),
)
WS_ROWS = (
    ("ws-squall", "squall, WebSocketResponse"),
    ("ws-squall-asgi", "squall, raw ASGI"),
    ("ws-websockets", "websockets"),
    ("ws-uvicorn", "uvicorn (websockets)"),
    ("ws-aiohttp", "aiohttp (uvloop)"),
)
WS_KEY = "ws_32b_64_rtps"
WS_DEFLATE_KEY = "ws_1k_deflate_64_rtps"  # shown when the run has it


def _median(data: dict[str, Any], server: str, key: str) -> float | None:
    entry = data["servers"].get(server)
    if entry is None or entry["skipped"]:
        return None
    value = entry["median"].get(key)
    return float(value) if value else None


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value and base else "-"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _hello(data: dict[str, Any]) -> list[str]:
    aiohttp = _median(data, "aiohttp", "hello_rps")
    floor = _median(data, "floor", "hello_rps")
    rows = []
    for server, label in HELLO_ROWS:
        value = _median(data, server, "hello_rps")
        if value is not None:
            row = [label, f"{value:,.0f}", _ratio(value, aiohttp), _ratio(value, floor)]
            rows.append(row)
    return _table(["server", "hello req/s", "to aiohttp", "to the floor"], rows)


def _h2(data: dict[str, Any]) -> list[str]:
    squall = _median(data, "h2-squall", "h2_64x10_rps")
    rows = []
    for server, label in H2_ROWS:
        value = _median(data, server, "h2_64x10_rps")
        if value is not None:
            rows.append([label, f"{value:,.0f}", _ratio(squall, value)])
    return _table(["server", "HTTP/2 req/s", "squall's seed app to it"], rows)


def _ws(data: dict[str, Any]) -> list[str]:
    keys = [WS_KEY]
    header = ["server", "echo round trips/s", "to aiohttp", "to the floor"]
    if any(_median(data, server, WS_DEFLATE_KEY) for server, _ in WS_ROWS):
        keys.append(WS_DEFLATE_KEY)
        header += ["deflate echo round trips/s", "to aiohttp", "to the floor"]
    rows = []
    for server, label in WS_ROWS:
        values = [_median(data, server, key) for key in keys]
        if values[0] is None and values[-1] is None:
            continue
        row = [label]
        for key, value in zip(keys, values, strict=True):
            aiohttp = _median(data, "ws-aiohttp", key)
            floor = _median(data, "ws-floor", key)
            cell = "-" if value is None else f"{value:,.0f}"
            row += [cell, _ratio(value, aiohttp), _ratio(value, floor)]
        rows.append(row)
    return _table(header, rows)


def chart(data: dict[str, Any]) -> str:
    """The hello figures as a horizontal bar chart (SVG, no dependencies)."""
    bars = [(label, _median(data, server, "hello_rps")) for server, label in HELLO_ROWS]
    bars.append(("floor: bare uvloop + httptools", _median(data, "floor", "hello_rps")))
    shown = [(label, value) for label, value in bars if value]
    top = max((value for _, value in shown), default=1.0)
    left, width, row, bar = 230, 360, 26, 18
    height = 34 + row * len(shown)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}"'
        ' font-family="sans-serif" font-size="13">',
        f'<text x="{left}" y="16" fill="#444">hello req/s, one core each (make bench,'
        f" {data['date'][:10]})</text>",
    ]
    for index, (label, value) in enumerate(shown):
        y = 28 + index * row
        length = round(width * value / top)
        colour = "#2b6cb0" if label.startswith("squall") else "#a0aec0"
        out += [
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{_escape(label)}</text>',
            f'<rect x="{left}" y="{y}" width="{length}" height="{bar}" fill="{colour}"/>',
            f'<text x="{left + length + 6}" y="{y + 14}">{value:,.0f}</text>',
        ]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def readme_block(data: dict[str, Any]) -> str:
    """What goes between the README's bench-summary markers."""
    commit, date = data["commit"], data["date"][:10]
    lines = [
        f"![hello requests a second, one core each](docs/{CHART.name})",
        "",
        f"From the latest full run ({date}, commit {commit}, all figures in",
        "[benchmarks/results/latest.md](benchmarks/results/latest.md)):",
        "",
        *_hello(data),
        "",
        "HTTP/2 in the same run (`h2load -c64 -m10`: 64 connections x 10 streams, cleartext",
        "prior knowledge, hello route):",
        "",
        *_h2(data),
        "",
        "WebSocket echo in the same run (32-byte messages, 64 connections, one message in",
        "flight on each; the floor is a bare uvloop Protocol echo"
        + (
            "; deflate: 1 KiB JSON texts with permessage-deflate, where the floor inflates and"
            "\ndeflates with zlib and no more):"
            if "ws_1k_deflate_64" in data["settings"].get("scenarios", ())
            else "):"
        ),
        "",
        *_ws(data),
    ]
    return "\n".join(lines) + "\n"


def page_block(data: dict[str, Any]) -> str:
    """What goes between docs/benchmarks.md's bench markers: the whole report."""
    return "Latest `make bench` (full mode), as in `benchmarks/results/latest.md`:\n\n" + (
        report.markdown(data)
    )


def replace_between(text: str, marks: tuple[str, str], block: str) -> str:
    """``text`` with what lies between the two marker lines replaced by ``block``."""
    start, end = (re.escape(mark) for mark in marks)
    pattern = re.compile(f"({start}\n)(.*?)({end})", re.DOTALL)
    if pattern.search(text) is None:
        raise ValueError(f"markers {marks} not found")
    return pattern.sub(lambda m: m.group(1) + block + m.group(3), text, count=1)


def publish(data: dict[str, Any]) -> list[Path]:
    """Write the README's summary, the chart and docs/benchmarks.md's tables from ``data``."""
    README.write_text(replace_between(README.read_text(), README_MARKS, readme_block(data)))
    BENCH_PAGE.write_text(replace_between(BENCH_PAGE.read_text(), PAGE_MARKS, page_block(data)))
    CHART.write_text(chart(data))
    return [README, BENCH_PAGE, CHART]
