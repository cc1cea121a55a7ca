"""Running wrk (pinned to core 1 unless told otherwise) and parsing its report."""

import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.procs import pinned

WRK = shutil.which("wrk")
CONNECTIONS = 64
TIMEOUT = "5s"  # per request; a 1 MiB echo at 64 connections takes well under that

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # to milliseconds
_TIME = r"([\d.]+)(us|ms|s|m|h)"


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    requests: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    socket_errors: int
    non_2xx: int


def parse(output: str) -> WrkResult | None:
    """Parse wrk's text report; None when it has no request count."""
    total = re.search(r"^\s*(\d+) requests in", output, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not total or not rps:
        return None
    latency = {
        pct: float(value) * _UNITS[unit]
        for pct, value, unit in re.findall(rf"^\s+(50|99)%\s+{_TIME}\s*$", output, re.M)
    }
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
        output,
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(total[1]),
        rps=float(rps[1]),
        p50_ms=latency.get("50"),
        p99_ms=latency.get("99"),
        socket_errors=sum(map(int, errors.groups())) if errors else 0,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
    )


def command(
    url: str, seconds: int, script: Path | None, args: tuple[str, ...], cores: int | str = 1
) -> list[str]:
    argv = [WRK or "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", TIMEOUT]
    argv += ["--latency", *(["-s", str(script)] if script else []), url]
    return pinned(cores, argv + (["--", *args] if args else []))


def run(
    url: str,
    seconds: int,
    script: Path | None = None,
    args: tuple[str, ...] = (),
    cores: int | str = 1,
) -> str:
    """Run wrk for ``seconds`` on ``cores`` and return its report."""
    argv = command(url, seconds, script, args, cores)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
    return done.stdout + done.stderr


def warm_up(
    url: str, seconds: float, script: Path | None, args: tuple[str, ...], cores: int | str = 1
) -> None:
    """Load the server for ``seconds`` (wrk's -d is whole seconds, so cut it short)."""
    if seconds <= 0:
        return
    argv = command(url, math.ceil(seconds) + 1, script, args, cores)
    try:
        subprocess.run(argv, capture_output=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        pass  # subprocess.run killed wrk, as intended


def version() -> str:
    if not WRK:
        return "missing"
    done = subprocess.run([WRK, "-v"], capture_output=True, text=True, timeout=10, check=False)
    return (done.stdout + done.stderr).split("Copyright")[0].strip().removeprefix("wrk ")
