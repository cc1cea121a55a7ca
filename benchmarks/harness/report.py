"""Medians, the ratio tables (text and markdown), machine facts and the JSON record."""

import datetime
import importlib.metadata
import platform
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import wrk


@dataclass(frozen=True)
class Metric:
    key: str
    header: str
    fmt: str
    higher_is_better: bool = True


METRICS = (
    Metric("hello_rps", "hello req/s", "{:,.0f}"),
    Metric("json_rps", "json req/s", "{:,.0f}"),
    Metric("pipelined_rps", "pipelined req/s", "{:,.0f}"),
    Metric("echo_mbps", "echo MB/s", "{:,.0f}"),
    Metric("p50_ms", "p50 ms", "{:.2f}", higher_is_better=False),
    Metric("p99_ms", "p99 ms", "{:.2f}", higher_is_better=False),
    Metric("rss_mib", "RSS MiB", "{:.1f}", higher_is_better=False),
    Metric("idle_bytes_per_conn", "idle B/conn", "{:,.0f}", higher_is_better=False),
)
REFERENCES = ("aiohttp", "floor")
PACKAGES = ("squall", "aiohttp", "uvloop", "httptools", "uvicorn", "granian", "starlette")


@dataclass
class ServerResult:
    """Every round's figures for one server, and notes on anything that went wrong."""

    name: str
    label: str
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: bool = False

    def add(self, key: str, value: float | None) -> None:
        if value is not None:
            self.samples.setdefault(key, []).append(value)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def medians(self) -> dict[str, float]:
        return {key: statistics.median(values) for key, values in self.samples.items() if values}


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "machine": platform.machine(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["wrk"] = wrk.version()
    return found


def git_commit(repo: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def record(results: list[ServerResult], settings: dict[str, Any], repo: Path) -> dict[str, Any]:
    """Everything a run measured, as JSON-ready data."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(repo),
        "settings": settings,
        "machine": machine(),
        "versions": versions(),
        "servers": {
            r.name: {
                "label": r.label,
                "skipped": r.skipped,
                "median": r.medians(),
                "rounds": r.samples,
                "notes": r.notes,
            }
            for r in results
        },
    }


def _cell(medians: dict[str, dict[str, float]], name: str, metric: Metric, ref: str | None) -> str:
    value = medians[name].get(metric.key)
    if value is None:
        return "-"
    if ref is None:
        return metric.fmt.format(value)
    base = medians.get(ref, {}).get(metric.key)
    return f"{value / base:.2f}x" if base else "-"


def tables(data: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The three tables (figures, ratio to aiohttp, ratio to floor) as title, header, rows."""
    servers = {k: v for k, v in data["servers"].items() if not v["skipped"]}
    medians = {name: s["median"] for name, s in servers.items()}
    metrics = [m for m in METRICS if any(m.key in med for med in medians.values())]
    header = ["server", *(m.header for m in metrics)]
    out = []
    for title, ref in (("Medians", None), *((f"Ratio to {r}", r) for r in REFERENCES)):
        rows = [
            [s["label"], *(_cell(medians, n, m, ref) for m in metrics)] for n, s in servers.items()
        ]
        out.append((title, header, rows))
    return out


def _notes(data: dict[str, Any]) -> list[str]:
    return [f"{name}: {note}" for name, s in data["servers"].items() for note in s["notes"]]


def _settings_line(data: dict[str, Any]) -> str:
    s, m = data["settings"], data["machine"]
    return (
        f"{data['date']} · commit {data['commit']} · {s['mode']} mode: {s['rounds']} round(s) x "
        f"{s['duration']} s, warm-up {s['warmup']} s, {s['connections']} connections, "
        f"{s['idle_connections']} idle · {m['machine']}, {m['cpu']}, Linux {m['kernel']}, "
        f"Python {m['python']}"
    )


def _versions_line(data: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in data["versions"].items())


def text(data: dict[str, Any]) -> str:
    """The report for the terminal: aligned tables."""
    lines = [_settings_line(data), _versions_line(data), ""]
    for title, header, rows in tables(data):
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines.append(title)
        for row in [header, *rows]:
            cells = [row[0].ljust(widths[0])]
            cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells))
        lines.append("")
    lines += [f"note: {n}" for n in _notes(data)]
    return "\n".join(lines).rstrip() + "\n"


def markdown(data: dict[str, Any]) -> str:
    """The report as markdown, for the README to include."""
    lines = [_settings_line(data) + ".", "", f"Versions: {_versions_line(data)}.", ""]
    for title, header, rows in tables(data):
        lines += [f"**{title}**", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "---|" + "---:|" * (len(header) - 1))
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    notes = _notes(data)
    if notes:
        lines += ["Notes:", "", *(f"- {n}" for n in notes), ""]
    return "\n".join(lines)
