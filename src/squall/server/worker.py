"""A worker process under the supervisor: ``python -m squall.server.worker FD [APP]``.

FD is the worker's end of a socket pair with the supervisor (APP only names the worker in
``ps``). The supervisor first sends the :class:`WorkerSpec` as one JSON line: the
:class:`Config`, the inherited listening descriptors (or, with ``reuse_port``, the addresses to
bind). Then the worker sends one line per event: ``ready INTERFACE`` once its sockets
accept, ``recycle`` once it has taken its ``max_requests``. The supervisor closing its end (it
died) stops the worker gracefully, as SIGTERM and SIGINT do. SIGHUP is the supervisor's and is
ignored here.

With metrics on (``metrics_port``), the supervisor sends ``metrics`` when it is scraped, and the
worker answers ``metrics JSON``: its :meth:`~squall.metrics.Metrics.snapshot`. Its last line,
once it has stopped gracefully, is ``final JSON``: its counters' last values, which the
supervisor keeps adding to the sums after the worker is gone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import signal
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

from ..metrics import Metrics
from .config import Config, configure_logging
from .loading import ServerError
from .run import error, run_loop
from .serve import Hooks, StopSignals, serve
from .sockets import bind_tcp

__all__ = ("WorkerSpec", "main", "read_spec")


@dataclass(slots=True)
class WorkerSpec:
    """What the supervisor tells a worker first (one JSON line on the channel)."""

    config: Config
    fds: list[int] = field(default_factory=list)
    """Inherited listening sockets."""
    reuse_port: list[tuple[str, int]] = field(default_factory=list)
    """With ``reuse_port``: (host, port) pairs each worker binds itself with SO_REUSEPORT."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "config": dataclasses.asdict(self.config),
                "fds": self.fds,
                "reuse_port": self.reuse_port,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        data: dict[str, Any] = json.loads(text)
        return cls(
            config=Config(**data["config"]),
            fds=data["fds"],
            reuse_port=[(host, port) for host, port in data["reuse_port"]],
        )


def read_spec(sock: socket.socket, timeout: float = 30.0) -> WorkerSpec:
    """Read the first line the supervisor sends on the channel: the spec."""
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the supervisor closed the channel before the spec")
        data += chunk
    return WorkerSpec.from_json(data.decode())


class _Channel:
    """The worker's end of the socket pair with the supervisor."""

    def __init__(
        self,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        stop: asyncio.Event,
        metrics: Metrics | None = None,
    ) -> None:
        self._sock = sock
        self._sock.setblocking(False)
        self._loop = loop
        self._stop = stop
        self._metrics = metrics
        self._buffer = b""  # a line being received
        self._unsent = b""  # what the socket did not take yet (a large snapshot)
        loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            data = self._sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the supervisor is gone: stop as if told to
            self._loop.remove_reader(self._sock.fileno())
            self._stop.set()
            return
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            if line == b"metrics" and self._metrics is not None:
                self.send("metrics " + json.dumps(self._metrics.snapshot()))

    def send(self, line: str) -> None:
        data = line.encode() + b"\n"
        if self._unsent:
            self._unsent += data
            return
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._stop.set()
            return
        if sent < len(data):
            self._unsent = data[sent:]
            self._loop.add_writer(self._sock.fileno(), self._writable)

    def _writable(self) -> None:
        try:
            sent = self._sock.send(self._unsent)
        except BlockingIOError:
            return
        except OSError:
            sent = len(self._unsent)
        self._unsent = self._unsent[sent:]
        if not self._unsent:
            self._loop.remove_writer(self._sock.fileno())

    def close(self, last: str | None = None) -> None:
        """Send ``last`` (and anything unsent), waiting for the socket if need be; close."""
        if self._sock.fileno() < 0:
            return
        self._loop.remove_reader(self._sock.fileno())
        self._loop.remove_writer(self._sock.fileno())
        data = self._unsent + (last.encode() + b"\n" if last is not None else b"")
        if data:
            try:
                self._sock.settimeout(5.0)
                self._sock.sendall(data)
            except OSError:
                pass
        self._sock.close()


async def _work(spec: WorkerSpec, sock: socket.socket) -> int:
    config = spec.config
    loop = asyncio.get_running_loop()
    stop = StopSignals(loop)
    stop.install()
    metrics = Metrics() if config.metrics_port is not None else None
    channel = _Channel(sock, loop, stop.event, metrics)
    sockets: list[socket.socket] = []
    status: int | None = None
    try:
        sockets = [socket.socket(fileno=fd) for fd in spec.fds]
        for host, port in spec.reuse_port:
            try:
                sockets += bind_tcp(host, port, backlog=config.backlog, reuse_port=True)
            except OSError as exc:
                raise ServerError(f"cannot listen on {host}:{port}: {exc}") from None
        limit = 0
        if config.max_requests > 0:
            limit = config.max_requests + random.randint(0, config.max_requests_jitter)
        hooks = Hooks(
            stop.event,
            lambda interface: channel.send(f"ready {interface}"),
            request_limit=limit,
            limit_reached=lambda: channel.send("recycle"),
            metrics=metrics,
        )
        status = await serve(config, sockets, hooks)
        return status
    except ServerError as exc:
        error(str(exc))
        return exc.status
    finally:
        for sock in sockets:
            sock.close()
        last = None
        if metrics is not None and status is not None:  # stopped gracefully: the last counts
            last = "final " + json.dumps(metrics.counters())
        channel.close(last)
        stop.remove()


def main(argv: list[str] | None = None) -> int:
    """Run one worker on the channel descriptor ``argv[0]``; return its exit status."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sock = socket.socket(fileno=int(args[0]))
    spec = read_spec(sock)
    configure_logging(spec.config.log_level, spec.config.access_log_format)
    return run_loop(_work(spec, sock))


if __name__ == "__main__":
    sys.exit(main())
