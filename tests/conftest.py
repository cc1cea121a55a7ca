"""Shared fixtures: a real squall server on 127.0.0.1, run in a thread with its own loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import squall
from squall import web

from .apps import make_app
from .loop_thread import LoopThread

SRC = Path(__file__).resolve().parent.parent / "src" / "squall"
UNDER_TEST = Path(squall.__file__).resolve().parent  # src/, or an installed copy


# `PYTHONPATH=src pytest` (make test's first run): the servers the tests start as subprocesses, in
# other working directories, must import the same squall, so the path is made absolute for them.
if os.environ.get("PYTHONPATH"):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        str(Path(entry).resolve()) if entry else entry
        for entry in os.environ["PYTHONPATH"].split(os.pathsep)
    )


def _stale_install() -> list[str]:
    """The sources that differ between src/ and the installed squall under test (if it is one).

    `make test` runs the suite on src/ (PYTHONPATH=src) and on the installed, compiled package,
    which it reinstalls when a source changes; a plain `pytest` after an edit would otherwise
    test the old installed code without a word.
    """
    if UNDER_TEST == SRC:
        return []
    stale = []
    for path in SRC.rglob("*.py"):
        copy = UNDER_TEST / path.relative_to(SRC)
        if not copy.is_file() or copy.read_bytes() != path.read_bytes():
            stale.append(str(path.relative_to(SRC)))
    return stale


def pytest_configure(config: pytest.Config) -> None:
    stale = _stale_install()
    if stale:
        pytest.exit(
            f"the installed squall differs from src/ ({', '.join(stale[:3])}...): run `make test`,"
            " or `PYTHONPATH=src pytest` to test the sources as Python",
            returncode=4,
        )


def pytest_report_header(config: pytest.Config) -> str:
    where = "src/" if UNDER_TEST == SRC else "installed"
    build = "compiled (mypyc)" if squall.COMPILED else "pure Python"
    return f"squall: {where}, {build}"


class ServerThread(LoopThread):
    """Serve an Application on an ephemeral loopback port from a background thread."""

    def __init__(self, app: web.Application, **runner_kwargs: Any) -> None:
        super().__init__()
        self.app = app
        self.runner_kwargs = runner_kwargs
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def serve(self, stop: asyncio.Event) -> None:
        self.runner = web.AppRunner(self.app, **self.runner_kwargs)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site.port
        self.ready()
        await stop.wait()
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        assert self.runner is not None and self.runner.server is not None
        server = self.runner.server
        return int(self.call(lambda: len(server.connections)))


@contextlib.contextmanager
def serve(app: web.Application, **runner_kwargs: Any) -> Iterator[ServerThread]:
    server = ServerThread(app, **runner_kwargs).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    """The shared test app (tests/apps.py) with short timeouts so slow-client tests finish."""
    with serve(make_app(), keepalive_timeout=5.0, header_timeout=2.0, shutdown_timeout=2.0) as srv:
        yield srv


def raw_request(
    port: int, data: bytes | list[bytes], timeout: float = 5.0, pause: float = 0.0
) -> bytes:
    """Send raw bytes (a list is sent piece by piece), read until the server closes or timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for piece in [data] if isinstance(data, bytes) else data:
            sock.sendall(piece)
            if pause:
                time.sleep(pause)
        return read_until_close(sock, timeout)


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def is_closed(sock: socket.socket, timeout: float = 3.0) -> bool:
    """True if the peer closed (EOF or reset) within ``timeout``, after draining any data."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        if not chunk:
            return True
    return False
