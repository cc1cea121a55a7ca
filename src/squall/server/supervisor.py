"""The supervisor: binds the sockets, runs the worker processes, replaces them, stops them.

One process, no event loop: a selector over the signal wake-up pipe and each worker's socket
pair (see :mod:`.worker`). It

- starts one worker, and the others once that one is ready (so an application that cannot be
  imported fails once, with its one line, and the supervisor exits with the worker's status);
- prints the ready line once all workers accept;
- restarts a worker that dies, after a growing delay when workers keep dying at once;
- on SIGHUP, for a worker that reached ``max_requests``, for one whose resident memory
  (read from /proc every ``worker_memory_interval`` seconds) exceeds ``max_worker_memory``
  MiB, and for one ready for longer than its lifetime (``max_worker_lifetime`` plus a random
  0..``max_worker_lifetime_jitter`` seconds, drawn per worker), rotates: starts a
  replacement and stops the old worker gracefully only once the replacement is ready, one
  worker at a time;
- with ``metrics_port``, serves the workers' Prometheus metrics summed (:mod:`.aggregate`);
- on SIGTERM/SIGINT stops accepting, lets every worker finish its requests in flight
  (``timeout_graceful_shutdown``, then SIGKILL a few seconds later) and exits 0; a second
  signal kills the workers at once (exit 1).

The listening sockets stay open in the supervisor for its whole life, so connections queue in the
kernel while workers come and go, and none is refused. (With ``reuse_port`` each worker binds its
own socket instead, and the supervisor's only holds the port: docs/deployment.md compares them.)
"""

from __future__ import annotations

import logging
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from .aggregate import Aggregator
from .config import EXIT_ERROR, EXIT_OK, Config
from .loading import ServerError
from .run import error, fallback_note, ready_line
from .serve import remove_uds
from .sockets import address_text, check_reuse_port, listen_sockets
from .worker import WorkerSpec

__all__ = ("Supervisor",)

log = logging.getLogger("squall.server")

QUICK_DEATH = 1.0
"""A worker dying sooner than this after it started (or before it was ready) died 'at once'."""
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 10.0
KILL_GRACE = 5.0
"""Seconds after ``timeout_graceful_shutdown`` before a stopping worker is killed."""

_SIGNALS = (signal.SIGCHLD, signal.SIGHUP, signal.SIGINT, signal.SIGTERM)
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MiB = 1024 * 1024


def resident_memory(pid: int) -> int | None:
    """The resident set size (RSS) of process ``pid`` in bytes, from /proc; None if unknown."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]
    channel: socket.socket
    started: float
    ready: bool = False
    retiring: bool = False
    """Being replaced: no longer counted among the workers wanted."""
    stopping: bool = False
    """Told to stop (SIGTERM sent)."""
    kill_at: float = float("inf")
    replacement: _Worker | None = None
    buffer: bytes = b""
    memory_exempt: bool = False
    """Already over ``max_worker_memory`` once ready: replacing it would never end."""
    closed: bool = False
    """Its channel has reached its end (it is exiting)."""
    expires: float = float("inf")
    """When it has served its ``max_worker_lifetime`` (set once ready)."""

    @property
    def pid(self) -> int:
        return self.proc.pid


class Supervisor:
    """Runs ``config.workers`` worker processes serving ``config.app``; :meth:`run` to the end."""

    def __init__(self, config: Config, out: TextIO) -> None:
        self.config = config
        self.out = out
        self.workers: list[_Worker] = []
        self._sockets: list[socket.socket] = []
        self._selector = selectors.DefaultSelector()
        self._wakeup_r = -1
        self._wakeup_w = -1
        self._old_handlers: dict[int, object] = {}
        self._booted = False
        self._announced = False
        self._interface = ""
        self._stopping = False
        self._status = EXIT_OK
        self._boot_status: int | None = None
        self._failures = 0
        self._last_failure = 0.0
        self._next_spawn = 0.0
        self._rotation: deque[_Worker] = deque()
        self._rotating: _Worker | None = None
        self._reloader: Callable[[], None] | None = None
        self._next_memory_check = 0.0
        self._metrics: Aggregator | None = None

    # -- life -------------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped; return the exit status."""
        try:
            check_reuse_port(self.config)
            self._sockets = listen_sockets(self.config)
            if self.config.metrics_port is not None:
                self._metrics = Aggregator(self.config.metrics_host, self.config.metrics_port)
                self._metrics.start()
            if self.config.reload:
                from .reload import start_reloader

                self._reloader = start_reloader(self.config, self._wake)
        except ServerError as exc:
            error(str(exc))
            self._close_sockets()
            if self._metrics is not None:
                self._metrics.stop()
            return exc.status
        self._install_signals()
        try:
            return self._main()
        finally:
            for worker in self.workers:  # only left after an unexpected error of ours
                _signal(worker, signal.SIGKILL)
                worker.proc.wait()
            if self._reloader is not None:
                self._reloader()
            if self._metrics is not None:
                self._selector.unregister(self._metrics.wakeup)
                self._metrics.stop()
            self._restore_signals()
            self._close_sockets()
            remove_uds(self.config.uds)

    def _main(self) -> int:
        while True:
            self._reap()
            self._answer_scrape()
            self._kill_overdue()
            self._check_memory()
            self._check_lifetimes()
            self._maintain()
            if self._boot_status is not None:
                return self._boot_status
            if self._stopping and not self.workers:
                return self._status
            for key, _ in self._selector.select(self._timeout()):
                key.data(key.fileobj)

    def _timeout(self) -> float:
        now = time.monotonic()
        deadline = now + 1.0
        if self._next_spawn > now:
            deadline = min(deadline, self._next_spawn)
        for worker in self.workers:
            deadline = min(deadline, worker.kill_at, worker.expires)
        if self.config.max_worker_memory > 0:
            deadline = min(deadline, self._next_memory_check)
        if self._metrics is not None:
            deadline = min(deadline, self._metrics.deadline)
        return max(0.0, deadline - now)

    # -- signals ----------------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._wakeup_r, self._wakeup_w = os.pipe()
        os.set_blocking(self._wakeup_r, False)
        os.set_blocking(self._wakeup_w, False)
        self._selector.register(self._wakeup_r, selectors.EVENT_READ, self._on_wakeup)
        signal.set_wakeup_fd(self._wakeup_w, warn_on_full_buffer=False)
        for sig in _SIGNALS:
            # The handler only has to exist: the C handler writes the number to the pipe.
            self._old_handlers[sig] = signal.signal(sig, lambda *_: None)
        if self._metrics is not None:
            self._selector.register(self._metrics.wakeup, selectors.EVENT_READ, self._on_scrape)

    def _restore_signals(self) -> None:
        signal.set_wakeup_fd(-1)
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._selector.unregister(self._wakeup_r)
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)

    def _wake(self) -> None:
        """Thread-safe: ask the loop to reload (the reloader calls this on a change)."""
        try:
            os.write(self._wakeup_w, bytes([0]))
        except OSError:
            pass

    def _on_wakeup(self, _: object) -> None:
        try:
            data = os.read(self._wakeup_r, 512)
        except BlockingIOError:
            return
        for number in data:
            if number == 0:
                self._reload()
            elif number in (signal.SIGINT, signal.SIGTERM):
                self._stop(number)
            elif number == signal.SIGHUP:
                log.info("SIGHUP: restarting the workers one by one")
                self._rotate_all("reload")

    # -- workers ----------------------------------------------------------------------------

    def _spawn(self) -> _Worker | None:
        parent, child = socket.socketpair()
        fds = [sock.fileno() for sock in self._sockets]
        reuse: list[tuple[str, int]] = []
        if self.config.reuse_port:
            reuse = [(str(s.getsockname()[0]), int(s.getsockname()[1])) for s in self._sockets]
            fds = []
        spec = WorkerSpec(self.config, fds=fds, reuse_port=reuse)
        command = [sys.executable, "-m", "squall.server.worker", str(child.fileno())]
        try:
            proc = subprocess.Popen([*command, self.config.app], pass_fds=(*fds, child.fileno()))
            parent.sendall(spec.to_json().encode() + b"\n")
        except OSError as exc:
            parent.close()
            if not self._booted:
                error(f"cannot start a worker: {exc}")
                self._boot_status = EXIT_ERROR
            else:
                log.error("Cannot start a worker: %s", exc)
                self._failed_at_once()
            return None
        finally:
            child.close()
        parent.setblocking(False)
        worker = _Worker(proc, parent, time.monotonic())
        self._selector.register(parent, selectors.EVENT_READ, self._on_message)
        self.workers.append(worker)
        log.debug("Started worker %d", worker.pid)
        return worker

    def _on_message(self, channel: object) -> None:
        worker = next((w for w in self.workers if w.channel is channel), None)
        if worker is None:  # pragma: no cover - unregistered when reaped
            return
        try:
            data = worker.channel.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the worker is exiting; reaping tells how
            self._selector.unregister(worker.channel)
            worker.closed = True
            return
        self._lines(worker, data)

    def _lines(self, worker: _Worker, data: bytes) -> None:
        *lines, worker.buffer = (worker.buffer + data).split(b"\n")
        for line in lines:
            self._on_line(worker, line.decode(errors="replace"))

    def _read_rest(self, worker: _Worker) -> None:
        """An exited worker's last lines (its final metrics), still in its channel."""
        while not worker.closed:
            try:
                data = worker.channel.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            self._lines(worker, data)

    def _on_line(self, worker: _Worker, line: str) -> None:
        if line.startswith("ready"):
            worker.ready = True
            self._memory_at_start(worker)
            lifetime = self.config.max_worker_lifetime
            if lifetime > 0:
                jitter = random.uniform(0.0, self.config.max_worker_lifetime_jitter)
                worker.expires = time.monotonic() + lifetime + jitter
            self._interface = line.partition(" ")[2]
            self._booted = True
            rotating = self._rotating
            if rotating is not None and rotating.replacement is worker:
                self._retire(rotating)
            self._announce()
        elif line == "recycle":
            log.info("Worker %d reached --max-requests: replacing it", worker.pid)
            if not worker.retiring and worker not in self._rotation:
                self._replace(worker, "max_requests")
        elif self._metrics is not None:
            kind, _, text = line.partition(" ")
            if kind == "metrics":
                self._metrics.answered(worker.pid, text)
            elif kind == "final":
                self._metrics.final(worker.pid, text)

    def _replace(self, worker: _Worker, reason: str) -> None:
        """Queue ``worker`` for rotation; ``reason`` labels ``squall_worker_restarts_total``."""
        self._rotation.append(worker)
        if self._metrics is not None:
            self._metrics.restarted(reason)

    # -- metrics (with metrics_port: aggregate.py) --------------------------------------------

    def _on_scrape(self, _: object) -> None:
        metrics = self._metrics
        if metrics is None or not metrics.woken():
            return
        asked = []
        for worker in self.workers:
            if worker.ready and not worker.closed:
                try:
                    worker.channel.send(b"metrics\n")
                except OSError:
                    continue
                asked.append(worker.pid)
        metrics.begin(asked)
        self._answer_scrape()

    def _answer_scrape(self) -> None:
        metrics = self._metrics
        if metrics is not None and metrics.due():
            metrics.finish({w.pid: resident_memory(w.pid) for w in self.workers})
            if metrics.woken():  # scrapes that came during this one: ask again
                self._on_scrape(None)

    def _memory_at_start(self, worker: _Worker) -> None:
        """A worker over ``max_worker_memory`` as soon as it is ready is exempt from it (else
        every replacement would be replaced in turn): said once, as an error."""
        bound = self.config.max_worker_memory
        if bound <= 0:
            return
        rss = resident_memory(worker.pid)
        if rss is not None and rss > bound * MiB:
            worker.memory_exempt = True
            log.error(
                "Worker %d uses %d MiB once started, over --max-worker-memory %d MiB: "
                "it will not be replaced for its memory (raise the bound)",
                worker.pid,
                rss // MiB,
                bound,
            )

    def _check_memory(self) -> None:
        """Every ``worker_memory_interval`` seconds: queue for rotation the workers whose
        resident memory exceeds ``max_worker_memory`` (replaced as for ``max_requests``)."""
        bound = self.config.max_worker_memory
        now = time.monotonic()
        if bound <= 0 or now < self._next_memory_check or self._stopping:
            return
        self._next_memory_check = now + self.config.worker_memory_interval
        for worker in self.workers:
            if (
                not worker.ready
                or worker.retiring
                or worker.stopping
                or worker.memory_exempt
                or worker in self._rotation
            ):
                continue
            rss = resident_memory(worker.pid)
            if rss is not None and rss > bound * MiB:
                log.warning(
                    "Worker %d uses %d MiB, over --max-worker-memory %d MiB: replacing it",
                    worker.pid,
                    rss // MiB,
                    bound,
                )
                self._replace(worker, "memory")

    def _check_lifetimes(self) -> None:
        """Queue for rotation the workers past their lifetime (replaced as for ``max_requests``)."""
        now = time.monotonic()
        for worker in self.workers:
            if worker.expires > now:
                continue
            worker.expires = float("inf")
            if self._stopping or worker.retiring or worker.stopping or worker in self._rotation:
                continue
            log.info("Worker %d reached --max-worker-lifetime: replacing it", worker.pid)
            self._replace(worker, "lifetime")

    def _announce(self) -> None:
        if self._announced:
            return
        ready = [w for w in self.workers if w.ready and not w.retiring]
        if len(ready) < self.config.workers:
            return
        self._announced = True
        url = address_text(self._sockets, self.config.ssl_certfile is not None)
        print(ready_line(url, self._interface, self.config.workers), file=self.out, flush=True)
        if note := fallback_note():
            log.warning(note)

    def _retire(self, worker: _Worker) -> None:
        """Stop ``worker`` gracefully (its replacement is ready)."""
        worker.retiring = True
        if not worker.stopping:
            worker.stopping = True
            worker.kill_at = time.monotonic() + self.config.timeout_graceful_shutdown + KILL_GRACE
            _signal(worker, signal.SIGTERM)
        if self._rotating is worker:
            self._rotating = None

    def _reap(self) -> None:
        for worker in [w for w in self.workers if w.proc.poll() is not None]:
            self.workers.remove(worker)
            try:
                self._selector.unregister(worker.channel)
            except (KeyError, ValueError):
                pass
            self._read_rest(worker)
            worker.channel.close()
            if self._metrics is not None:
                self._metrics.gone(worker.pid)
            self._dead(worker, worker.proc.returncode)

    def _dead(self, worker: _Worker, code: int) -> None:
        for other in self.workers:
            if other.replacement is worker:
                other.replacement = None
        if self._rotating is worker:
            self._rotating = None
        if worker in self._rotation:
            self._rotation.remove(worker)
        if self._stopping or worker.stopping:
            log.info("Worker %d stopped (%s)", worker.pid, _how(code))
            return
        if not self._booted:
            # The first worker could not start: its one line is printed; so is our status.
            self._boot_status = code if code > 0 else EXIT_ERROR
            return
        if self._metrics is not None:
            self._metrics.restarted("crash")
        lived = time.monotonic() - worker.started
        if not worker.ready or lived < QUICK_DEATH:
            delay = self._failed_at_once()
            log.warning(
                "Worker %d died at once (%s); starting another in %.2f s",
                worker.pid,
                _how(code),
                delay,
            )
        else:
            self._failures = 0
            log.warning("Worker %d died (%s); starting another", worker.pid, _how(code))

    def _failed_at_once(self) -> float:
        """Count a worker that could not start or died at once; return the delay before the next."""
        self._failures += 1
        delay = min(BACKOFF_FIRST * 2.0 ** (self._failures - 1), BACKOFF_MAX)
        self._last_failure = time.monotonic()
        self._next_spawn = self._last_failure + delay
        return delay

    def _maintain(self) -> None:
        """Start the workers that are missing and the next rotation, as far as allowed now."""
        if self._stopping:
            return
        if not self._booted:
            if not self.workers:
                self._spawn()
            return
        if self._rotating is None:
            while self._rotation:
                candidate = self._rotation.popleft()
                if candidate in self.workers and not candidate.stopping:
                    candidate.retiring = True
                    self._rotating = candidate
                    break
        active = [w for w in self.workers if not w.retiring]
        now = time.monotonic()
        if self._failures and any(
            w.ready and self._last_failure < w.started <= now - QUICK_DEATH for w in active
        ):
            self._failures = 0  # a worker started since the last death stayed up: it is over
        while len(active) < self.config.workers and now >= self._next_spawn:
            if self._failures and any(not w.ready for w in active):
                break  # after deaths at once, one starting worker at a time
            worker = self._spawn()
            if worker is None:
                break
            active.append(worker)
            rotating = self._rotating
            if rotating is not None and rotating.replacement is None:
                rotating.replacement = worker

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for worker in self.workers:
            if worker.kill_at <= now:
                log.warning("Worker %d did not stop in time: killing it", worker.pid)
                _signal(worker, signal.SIGKILL)
                worker.kill_at = float("inf")

    # -- commands ---------------------------------------------------------------------------

    def _rotate_all(self, reason: str) -> None:
        for worker in self.workers:
            if not worker.retiring and not worker.stopping and worker not in self._rotation:
                self._replace(worker, reason)

    def _reload(self) -> None:
        log.warning("Changes detected: reloading")
        self._failures = 0
        self._next_spawn = 0.0
        self._rotate_all("reload")

    def _stop(self, sig: int) -> None:
        if self._stopping:
            log.warning("Second %s: killing the workers", signal.Signals(sig).name)
            self._status = EXIT_ERROR
            for worker in self.workers:
                _signal(worker, signal.SIGKILL)
            return
        log.info("%s: stopping the workers gracefully", signal.Signals(sig).name)
        self._stopping = True
        self._close_sockets()  # the workers hold their own copies until they stop accepting
        deadline = time.monotonic() + self.config.timeout_graceful_shutdown + KILL_GRACE
        for worker in self.workers:
            worker.stopping = True
            worker.kill_at = deadline
            _signal(worker, signal.SIGTERM)

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()


def _signal(worker: _Worker, sig: int) -> None:
    try:
        os.kill(worker.pid, sig)
    except ProcessLookupError:
        pass


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
