"""``python -m squall ...`` as a test's subprocess, and a load client that tracks every request.

The process runs in its own session so that ``kill()`` (always called, by the context manager)
takes the supervisor and all its workers with it; stderr goes to a file so it never blocks.
"""

from __future__ import annotations

import asyncio
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

READY = re.compile(
    r"^squall: serving (\S+) \((aiohttp|asgi) interface(?:, (\d+) workers)?,"
    r" (?:compiled|pure Python)\), Ctrl-C to stop$"
)
TIMEOUT = 15.0


class SquallProcess:
    """``python -m squall ARGS`` (or ``launcher + ARGS``) in ``cwd``."""

    def __init__(
        self,
        cwd: Path,
        *args: str,
        env: dict[str, str] | None = None,
        pass_fds: Sequence[int] = (),
        launcher: Sequence[str] | None = None,
    ) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by kill())
        command = [*(launcher or [sys.executable, "-m", "squall"]), *args]
        self.proc = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, **(env or {})},
            pass_fds=tuple(pass_fds),
            start_new_session=True,
        )
        self.url = ""
        self.interface = ""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def wait_ready(self, timeout: float = TIMEOUT) -> str:
        """Wait for the ready line; return the URL. Fails with stderr if the process exits."""
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise AssertionError(f"no ready line in {timeout} s; stderr: {self.stderr()}")
        line = self.proc.stdout.readline().rstrip("\n")
        match = READY.match(line)
        if match is None:
            self.proc.wait(TIMEOUT)
            raise AssertionError(f"no ready line: {line!r}; stderr: {self.stderr()}")
        self.url, self.interface = match.group(1), match.group(2)
        return self.url

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = TIMEOUT) -> int:
        return self.proc.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = TIMEOUT) -> tuple[int, float]:
        """Send ``sig``; return the exit status and how long the process took to exit."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        return self.proc.wait(timeout), time.monotonic() - started

    def workers(self) -> list[int]:
        """The pids of the live (not zombie) child processes."""
        return children(self.pid)

    def wait_workers(
        self, n: int, exclude: Sequence[int] = (), timeout: float = TIMEOUT
    ) -> list[int]:
        """Wait until there are ``n`` children, none of them in ``exclude``."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.workers()
            if len(pids) == n and not set(pids) & set(exclude):
                return pids
            if time.monotonic() > deadline:
                raise AssertionError(f"workers {pids}, wanted {n} not in {exclude}")
            time.sleep(0.05)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def children(pid: int) -> list[int]:
    """Live children of ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


@dataclass
class Tally:
    """What happened to every request the load client sent."""

    ok: int = 0
    refused: int = 0
    """Connection refused: nothing listens any more."""
    unanswered_fresh: int = 0
    """A new connection closed or reset before any byte of the response."""
    unanswered_reused: int = 0
    """A reused keep-alive connection closed before any byte of the response (a client may
    retry these: RFC 9110 9.2.2)."""
    broken: int = 0
    """Part of a response, then the connection ended: a request lost in flight."""
    completed_ids: set[int] = field(default_factory=set, repr=False)
    pids: Counter[str] = field(default_factory=Counter)

    @property
    def errors(self) -> int:
        return self.unanswered_fresh + self.unanswered_reused + self.broken


class _Broken(Exception):
    """The connection ended in the middle of a response."""


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[bytes, bool] | None:
    """Send ``request``; return (body, keep-alive) of the response, or None if the connection
    ended before any byte of it. Raises :class:`_Broken` if it ended mid-response."""
    buf = b""
    try:
        writer.write(request)
        while b"\r\n\r\n" not in buf:
            chunk = await reader.read(65536)
            if not chunk:
                raise EOFError
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        length = 0
        alive = True
        for line in head.decode("latin-1").lower().split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name == "content-length":
                length = int(value)
            elif name == "connection" and "close" in value:
                alive = False
        while len(body) < length:
            chunk = await reader.read(65536)
            if not chunk:
                raise EOFError
            body += chunk
        return body[:length], alive
    except (EOFError, ConnectionResetError, BrokenPipeError):
        if not buf:
            return None
        raise _Broken from None


async def load(
    port: int,
    *,
    seconds: float,
    concurrency: int,
    path: str = "/",
    keep_alive: bool = True,
    actions: Sequence[tuple[float, Callable[[], Any]]] = (),
    until_refused: bool = False,
    host: str = "127.0.0.1",
) -> Tally:
    """Send requests from ``concurrency`` loops for ``seconds`` (or, with ``until_refused``,
    until every loop meets a refused connection), running each action at its time.

    Each request carries a unique ``id`` query parameter; the body of a response is the pid
    of the worker that answered. Every outcome is counted in the returned :class:`Tally`.
    """
    tally = Tally()
    started = time.monotonic()
    counter = iter(range(1, 1 << 30))
    sep = "&" if "?" in path else "?"

    async def one_loop() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while time.monotonic() - started < seconds or until_refused:
            if time.monotonic() - started > TIMEOUT:
                raise AssertionError("the load did not end")
            reused = writer is not None
            if writer is None:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), TIMEOUT
                    )
                except ConnectionRefusedError:
                    tally.refused += 1
                    if until_refused:
                        return
                    await asyncio.sleep(0.05)
                    continue
            assert reader is not None
            n = next(counter)
            close = "" if keep_alive else "Connection: close\r\n"
            request = f"GET {path}{sep}id={n} HTTP/1.1\r\nHost: test\r\n{close}\r\n"
            try:
                response = await asyncio.wait_for(
                    _exchange(reader, writer, request.encode()), TIMEOUT
                )
            except _Broken:
                tally.broken += 1
                response = None
            else:
                if response is None and reused:
                    tally.unanswered_reused += 1
                elif response is None:
                    tally.unanswered_fresh += 1
            if response is None:
                writer.close()
                writer = None
                continue
            body, alive = response
            tally.ok += 1
            tally.completed_ids.add(n)
            tally.pids[body.decode()] += 1
            if not alive or not keep_alive:
                writer.close()
                writer = None
        if writer is not None:
            writer.close()

    async def act() -> None:
        for at, action in sorted(actions, key=lambda a: a[0]):
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            action()

    await asyncio.gather(act(), *(one_loop() for _ in range(concurrency)))
    return tally


def run_load(port: int, **kwargs: Any) -> Tally:
    """:func:`load` from synchronous code."""
    return asyncio.run(load(port, **kwargs))


def started_ids(log: Path) -> set[int]:
    """The request ids the application logged as started (one per line)."""
    if not log.exists():
        return set()
    return {int(line) for line in log.read_text().split()}
