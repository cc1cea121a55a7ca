"""Process control: CPU pinning, free ports, starting and stopping servers, reading their RSS."""

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

TASKSET = shutil.which("taskset")
PINNING = TASKSET is not None and (os.cpu_count() or 1) >= 2


def pinned(cores: int | str, argv: list[str]) -> list[str]:
    """``argv`` run on ``cores`` (one core, or a taskset list such as ``"0,1"``) with taskset,
    or unpinned when that is impossible."""
    return [TASKSET, "-c", str(cores), *argv] if PINNING and TASKSET else argv


def raise_nofile(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE (children inherit it); return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def cpu_busy(seconds: float = 0.3) -> float:
    """Fraction of all cores' time spent busy over ``seconds`` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields[:8]), fields[3] + fields[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def cpu_times(root: int) -> tuple[float, float]:
    """User and kernel CPU seconds used so far by the live processes of ``root``'s tree."""
    user = kernel = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])  # utime
        kernel += int(fields[12])  # stime
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, kernel / tick


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, ()))
    return pids


def rss_bytes(root: int) -> int:
    """VmRSS summed over ``root``'s process tree (granian runs a supervisor and a worker)."""
    total = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


class Server:
    """A server process in its own process group, pinned to ``cores`` (core 0 unless told),
    logging to ``log``."""

    def __init__(
        self, argv: list[str], cwd: Path, port: int, log: Path, cores: int | str = 0
    ) -> None:
        self.port = port
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                pinned(cores, argv),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 30.0) -> str | None:
        """Poll the port until it accepts; return None, or why the server is not up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with {self.proc.returncode}: {self.log_tail()}"
            if port_open(self.port):
                return None
            time.sleep(0.05)
        return f"not listening after {timeout:.0f} s: {self.log_tail()}"

    def log_tail(self, lines: int = 3) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM the process group; SIGKILL whatever of it is left after 5 s."""
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and not group_alive(pgid):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # the group still exists, so its id is still ours
        self.proc.wait(timeout=5.0)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
