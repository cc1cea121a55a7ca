"""Medians, the ratio tables (text and markdown), machine facts and the JSON record."""

import datetime
import importlib.metadata
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import h2, multi, wrk
from harness.h2 import H2_SCENARIOS
from harness.ws import WS_SCENARIOS


@dataclass(frozen=True)
class Metric:
    key: str
    header: str
    fmt: str
    higher_is_better: bool = True
    ratio: bool = True  # shown in the ratio tables


METRICS = (
    Metric("hello_rps", "hello req/s", "{:,.0f}"),
    Metric("names_rps", "names req/s", "{:,.0f}"),
    Metric("json_rps", "json req/s", "{:,.0f}"),
    Metric("pipelined_rps", "pipelined req/s", "{:,.0f}"),
    Metric("echo_mbps", "echo MB/s", "{:,.0f}"),
    Metric("p50_ms", "p50 ms", "{:.2f}", higher_is_better=False),
    Metric("p99_ms", "p99 ms", "{:.2f}", higher_is_better=False),
    Metric("hello_user_us", "user us/req", "{:.2f}", higher_is_better=False),
    Metric("hello_kernel_us", "kernel us/req", "{:.2f}", higher_is_better=False),
    Metric("rss_mib", "RSS MiB", "{:.1f}", higher_is_better=False),
    Metric("idle_bytes_per_conn", "idle B/conn", "{:,.0f}", higher_is_better=False),
)
REFERENCES = (("aiohttp", "aiohttp"), ("floor", "floor"))  # (what the title says, server)
WS_METRICS = (
    *(Metric(f"{sc.name}_rtps", sc.header, "{:,.0f}") for sc in WS_SCENARIOS),
    Metric("rss_mib", "RSS MiB", "{:.1f}", higher_is_better=False),
    Metric("idle_bytes_per_conn", "idle B/WebSocket", "{:,.0f}", higher_is_better=False),
    Metric("ws_client_cpu", "load gen CPU", "{:.0%}", higher_is_better=False, ratio=False),
)
WS_REFERENCES = (("aiohttp", "ws-aiohttp"), ("floor", "ws-floor"))
WORKER_METRICS = (
    *(m for m in METRICS if m.key in ("hello_rps", "json_rps", "p50_ms", "p99_ms", "rss_mib")),
    Metric("server_cpu", "server CPU (cores)", "{:.2f}", ratio=False),
    Metric("wrk_cpu", "wrk CPU", "{:.0%}", higher_is_better=False, ratio=False),
    Metric("busiest_worker", "busiest worker's conns", "{:.0%}", ratio=False),
)
WORKER_REFERENCES = (("uvicorn", "uvicorn-2w"), ("granian", "granian-2w"))
# The same ASGI app on squall, uvicorn and granian: (app, (squall's, uvicorn's, granian's server)).
ASGI_APPS = (
    ("raw ASGI", ("squall-asgi", "uvicorn", "granian")),
    ("FastAPI", ("fastapi-squall", "fastapi-uvicorn", "fastapi-granian")),
)
H2_METRICS = (
    *(
        metric
        for sc in H2_SCENARIOS
        for metric in (
            Metric(f"{sc.name}_rps", f"{sc.header} req/s", "{:,.0f}"),
            Metric(f"{sc.name}_p99_ms", f"{sc.header} p99 ms", "{:.2f}", higher_is_better=False),
            Metric(f"{sc.name}_user_us", f"{sc.header} user us/req", "{:.2f}", False),
            Metric(f"{sc.name}_kernel_us", f"{sc.header} kernel us/req", "{:.2f}", False),
        )
    ),
    Metric("rss_mib", "RSS MiB", "{:.1f}", higher_is_better=False),
    Metric("h2load_cpu", "load gen CPU", "{:.0%}", higher_is_better=False, ratio=False),
)
# squall's HTTP/2 rows against the peers' (all raw ASGI), and against squall's own HTTP/1.1 row
# of the same run (wrk's hello): (what the row says, squall's HTTP/2 server, its HTTP/1.1 server).
H2_SQUALL = (("seed app", "h2-squall", "squall"), ("raw ASGI", "h2-squall-asgi", "squall-asgi"))
H2_PEERS = (("hypercorn", "h2-hypercorn"), ("granian", "h2-granian"), ("uvicorn", "h2-uvicorn"))
H2_TO_HTTP1 = (
    ("_rps", "hello_rps"),
    ("_user_us", "hello_user_us"),
    ("_kernel_us", "hello_kernel_us"),
)
PACKAGES = (
    *("squall", "aiohttp", "uvloop", "httptools", "uvicorn", "granian", "starlette", "fastapi"),
    *("websockets", "gunicorn", "hypercorn", "zttp", "h2", "httpx"),
)


@dataclass
class ServerResult:
    """Every round's figures for one server, and notes on anything that went wrong."""

    name: str
    label: str
    group: str = "http"  # or "ws" or "workers": which tables it belongs to
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
    if found.get("squall", "not installed") != "not installed":
        found["squall"] += " (compiled)" if _squall_compiled() else " (pure Python)"
    found["wrk"] = wrk.version()
    found["h2load"] = h2.version()
    return found


def _squall_compiled() -> bool:
    """Whether the squall the servers import is the mypyc-compiled build (setup.py)."""
    done = subprocess.run(
        [sys.executable, "-c", "import squall; print(squall.COMPILED)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.strip() == "True"


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
                "group": r.group,
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


Table = tuple[str, list[str], list[list[str]]]


def _group_tables(
    servers: dict[str, Any],
    metrics: tuple[Metric, ...],
    refs: tuple[tuple[str, str], ...],
    pre: str,
) -> list[Table]:
    """Figures, then each figure divided by each reference server's: title, header, rows."""
    medians = {name: s["median"] for name, s in servers.items()}
    shown = [m for m in metrics if any(m.key in med for med in medians.values())]
    out = []
    for title, ref in ((f"{pre}Medians", None), *((f"{pre}Ratio to {t}", r) for t, r in refs)):
        cols = [m for m in shown if ref is None or m.ratio]
        rows = [
            [s["label"], *(_cell(medians, n, m, ref) for m in cols)] for n, s in servers.items()
        ]
        out.append((title, ["server", *(m.header for m in cols)], rows))
    return out


def _asgi_table(servers: dict[str, Any]) -> list[Table]:
    """One ASGI app on squall, uvicorn and granian, side by side, and squall's ratios to each."""
    medians = {name: s["median"] for name, s in servers.items()}
    rows = []
    for app, names in ASGI_APPS:
        for m in METRICS:
            values = [medians.get(n, {}).get(m.key) for n in names]
            if values[0] is None:
                continue
            cells = ["-" if v is None else m.fmt.format(v) for v in values]
            ratios = [f"{values[0] / v:.2f}x" if v else "-" for v in values[1:]]
            rows.append([app, m.header, *cells, *ratios])
    header = ["app", "figure", "squall", "uvicorn", "granian", "ratio to uvicorn"]
    header.append("ratio to granian")
    return [("ASGI: squall, uvicorn and granian on the same app", header, rows)] if rows else []


def _h2_table(servers: dict[str, Any]) -> list[Table]:
    """squall's HTTP/2 figures, divided by each peer's and by squall's own HTTP/1.1 hello."""
    medians = {name: s["median"] for name, s in servers.items()}
    rows = []
    for app, name, http1 in H2_SQUALL:
        for m in H2_METRICS:
            value = medians.get(name, {}).get(m.key)
            if value is None or not m.ratio:
                continue
            peers = [medians.get(peer, {}).get(m.key) for _, peer in H2_PEERS]
            own = next(
                (
                    medians.get(http1, {}).get(key)
                    for end, key in H2_TO_HTTP1
                    if m.key.endswith(end)
                ),
                None,
            )
            cells = [f"{value / v:.2f}x" if v else "-" for v in (*peers, own)]
            rows.append([app, m.header, m.fmt.format(value), *cells])
    header = ["squall", "figure", "squall", *(f"ratio to {peer}" for peer, _ in H2_PEERS)]
    header.append("ratio to its HTTP/1.1 hello")
    return [("HTTP/2: squall against each server", header, rows)] if rows else []


def tables(data: dict[str, Any]) -> list[Table]:
    """Every table as (title, header, rows): HTTP figures and ratios, ASGI, 2 workers, WebSocket,
    HTTP/2."""
    servers = {k: v for k, v in data["servers"].items() if not v["skipped"]}
    http = {k: v for k, v in servers.items() if v.get("group", "http") == "http"}
    ws = {k: v for k, v in servers.items() if v.get("group") == "ws"}
    workers = {k: v for k, v in servers.items() if v.get("group") == "workers"}
    h2s = {k: v for k, v in servers.items() if v.get("group") == "h2"}
    out = _group_tables(http, METRICS, REFERENCES, "") if http else []
    out += _asgi_table(http)
    if workers:
        pre = f"{multi.WORKERS} workers, servers and wrk sharing cores {multi.CORES}: "
        refs = tuple(r for r in WORKER_REFERENCES if r[1] in workers)  # quick: none measured
        out += _group_tables(workers, WORKER_METRICS, refs, pre)
    if ws:
        out += _group_tables(ws, WS_METRICS, WS_REFERENCES, "WebSocket echo: ")
    if h2s:
        out += _group_tables(h2s, H2_METRICS, (), "HTTP/2 (h2load, cleartext prior knowledge): ")
        out += _h2_table({**http, **h2s})
    return out


def _notes(data: dict[str, Any]) -> list[str]:
    return [f"{name}: {note}" for name, s in data["servers"].items() for note in s["notes"]]


def _settings_line(data: dict[str, Any]) -> str:
    s, m = data["settings"], data["machine"]
    return (
        f"{data['date']} · commit {data['commit']} · {s['mode']} mode: {s['rounds']} round(s) x "
        f"{s['duration']} s, warm-up {s['warmup']} s, {s['connections']} connections, "
        f"{s['idle_connections']} idle{_ws_settings(s)}{_h2_settings(s)} · {m['machine']}, "
        f"{m['cpu']}, "
        f"Linux {m['kernel']}, Python {m['python']}"
    )


def _ws_settings(s: dict[str, Any]) -> str:
    if not s.get("ws_duration") or not {sc.name for sc in WS_SCENARIOS} & set(s["scenarios"]):
        return ""
    return (
        f"; WebSocket: {s['ws_duration']} s after {s['ws_warmup']} s warm-up, one message in "
        f"flight per connection, {_ws_compression(s)}, {s['ws_idle_connections']} idle"
    )


def _ws_compression(s: dict[str, Any]) -> str:
    deflated = [sc.name for sc in WS_SCENARIOS if sc.deflate and sc.name in s["scenarios"]]
    if not deflated:
        return "no compression"
    return f"no compression but in {', '.join(deflated)} (permessage-deflate, JSON texts)"


def _h2_settings(s: dict[str, Any]) -> str:
    loads = [
        f"{c} connection{'s' if c > 1 else ''} x {m} streams"
        for name, (c, m) in s.get("h2_loads", {}).items()
        if name in s["scenarios"]
    ]
    if not loads:
        return ""
    return f"; HTTP/2: h2load, h2c prior knowledge, {' and '.join(loads)}, same durations"


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
