"""The supervisor's Prometheus metrics: one ``/metrics`` for all its workers.

Each worker keeps its own counts (squall/metrics.py's :class:`~squall.metrics.Metrics`, as one
process does) and is asked for them only when the supervisor is scraped, over the channel it
already has (server/worker.py): the supervisor sends ``metrics``, the worker answers ``metrics
JSON``. A worker that stops gracefully sends its last counters (``final JSON``), which stay in
the sums after it is gone (``retired``); one that dies keeps in them what it reported last, so
a counter never goes back when workers are replaced (only what a crashed worker counted since
the last scrape is lost).

The supervisor has no event loop: the listener (a squall :class:`~squall.http.HttpServer`, so
its bytes are framed by http/ as every other) runs on a small asyncio loop in a thread of its
own. A scrape there wakes the supervisor's loop through a socket pair; the supervisor asks its
workers, gathers their answers as they arrive (or gives up on those that did not answer within
:data:`ANSWER_WAIT`), renders the text, and hands it back to the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import socket
import threading
import time
from typing import Any, Final

from ..metrics import Counts, MetricsListener, family, label, render
from .loading import ServerError

__all__ = ("ANSWER_WAIT", "REASONS", "Aggregator")

log = logging.getLogger("squall.server")

ANSWER_WAIT: Final = 1.0
"""Seconds a scrape waits for the workers' answers; a worker that has not answered by then is
left out of the gauges (``squall_scrape_missing_workers``) and counted with its last report."""

REASONS: Final = ("max_requests", "memory", "lifetime", "reload", "crash")
"""The ``reason`` label of ``squall_worker_restarts_total``."""

_GAUGE_NAMES: Final = (
    ("in_flight", "squall_worker_requests_in_flight", "Requests being answered or queued."),
    ("connections", "squall_worker_connections_open", "Open client connections."),
    ("websockets", "squall_worker_websockets_open", "Open WebSocket connections."),
)


class Aggregator:
    """The workers' metrics summed, served at ``http://host:port/metrics`` from a thread.

    The listener's thread only calls :meth:`start`'s loop; every other method is the
    supervisor's, called from its own loop.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._retired = Counts()  # the last counters of workers gone
        self._last: dict[int, dict[str, Any]] = {}  # pid: the counters it reported last
        self._restarts = dict.fromkeys(REASONS, 0)
        self._lock = threading.Lock()
        self._waiting: list[concurrent.futures.Future[str]] = []  # scrapes, from the thread
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # The scrape being answered: pid -> its gauges (None: not answered yet).
        self._round: dict[int, dict[str, int] | None] | None = None
        self._round_scrapes: list[concurrent.futures.Future[str]] = []
        self._round_deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None

    # -- the listener, in its thread ----------------------------------------------------------

    def start(self) -> None:
        """Start the listener's thread; raises :class:`ServerError` if it cannot listen."""
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name="squall-metrics", daemon=True
        )
        self._thread.start()
        try:
            self.port = started.result(timeout=30.0)
        except OSError as exc:
            self._thread.join(5.0)
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ServerError(
                f"cannot serve metrics on {self.host}:{self.port}: {reason}"
            ) from None

    def _serve(self, started: concurrent.futures.Future[int]) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._listen(started))
        finally:
            loop.close()

    async def _listen(self, started: concurrent.futures.Future[int]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        listener = MetricsListener(None, self.host, self.port, collect=self._collect)
        try:
            await listener.start()
        except OSError as exc:
            started.set_exception(exc)
            return
        started.set_result(listener.port)
        try:
            await self._stopped.wait()
        finally:
            await listener.stop()

    async def _collect(self) -> str:
        scrape: concurrent.futures.Future[str] = concurrent.futures.Future()
        with self._lock:
            self._waiting.append(scrape)
        try:
            self._wake_w.send(b"s")
        except OSError:  # (full: a wake-up is already pending)
            pass
        return await asyncio.wait_for(asyncio.wrap_future(scrape), 10.0)

    def stop(self) -> None:
        """Stop the listener and its thread."""
        loop, stopped, thread = self._loop, self._stopped, self._thread
        if loop is not None and stopped is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopped.set)
            except RuntimeError:  # (closed meanwhile)
                pass
        if thread is not None:
            thread.join(5.0)
        with self._lock:
            scrapes, self._waiting = self._waiting + self._round_scrapes, []
        for scrape in scrapes:
            scrape.cancel()
        self._wake_r.close()
        self._wake_w.close()

    # -- the supervisor's side ----------------------------------------------------------------

    @property
    def wakeup(self) -> socket.socket:
        """Readable when a scrape waits (for the supervisor's selector)."""
        return self._wake_r

    def woken(self) -> bool:
        """Take the wake-up; True if scrapes wait and no round is asking the workers."""
        try:
            self._wake_r.recv(4096)
        except OSError:
            pass
        with self._lock:
            waiting = bool(self._waiting)
        return waiting and self._round is None

    def begin(self, pids: list[int]) -> None:
        """The workers ``pids`` were asked (``metrics``): the scrapes waiting get their answers."""
        with self._lock:
            self._round_scrapes, self._waiting = self._waiting, []
        self._round = dict.fromkeys(pids)
        self._round_deadline = time.monotonic() + ANSWER_WAIT

    def answered(self, pid: int, text: str) -> None:
        """Worker ``pid`` answered ``metrics JSON`` (``text``: the JSON)."""
        try:
            snapshot = json.loads(text)
            counters, gauges = snapshot["counters"], snapshot["gauges"]
        except (ValueError, KeyError, TypeError):
            log.warning("Worker %d sent unreadable metrics", pid)
            return
        self._last[pid] = counters
        if self._round is not None and pid in self._round:
            self._round[pid] = {name: int(gauges.get(name, 0)) for name, _, _ in _GAUGE_NAMES}

    def final(self, pid: int, text: str) -> None:
        """Worker ``pid`` stopped gracefully and sent its last counters."""
        try:
            counters = json.loads(text)
            self._retired.add(counters)
        except (ValueError, KeyError, TypeError):
            log.warning("Worker %d sent unreadable final metrics", pid)
            return
        self._last.pop(pid, None)
        if self._round is not None:
            self._round.pop(pid, None)

    def gone(self, pid: int) -> None:
        """Worker ``pid`` has exited: what it reported last stays in the sums."""
        last = self._last.pop(pid, None)
        if last is not None:
            self._retired.add(last)
        if self._round is not None:
            self._round.pop(pid, None)

    def restarted(self, reason: str) -> None:
        """A worker is replaced, for ``reason`` (one of :data:`REASONS`)."""
        self._restarts[reason] = self._restarts.get(reason, 0) + 1

    @property
    def deadline(self) -> float:
        """When the round in progress gives up on the workers that have not answered."""
        return self._round_deadline if self._round is not None else float("inf")

    def due(self) -> bool:
        """Whether the round in progress is complete, or past its deadline."""
        round_ = self._round
        if round_ is None:
            return False
        return time.monotonic() >= self._round_deadline or all(
            gauges is not None for gauges in round_.values()
        )

    def finish(self, memory: dict[int, int | None]) -> None:
        """Answer the scrapes of the round: ``memory`` holds each live worker's resident
        memory (pid: bytes, None if unknown)."""
        round_ = self._round or {}
        self._round = None
        self._round_deadline = float("inf")
        counts = self._retired.copy()
        for counters in self._last.values():
            try:
                counts.add(counters)
            except (ValueError, KeyError, TypeError):  # pragma: no cover - checked on arrival
                continue
        answers = {pid: gauges for pid, gauges in round_.items() if gauges is not None}
        totals = {name: sum(g[name] for g in answers.values()) for name, _, _ in _GAUGE_NAMES}
        more: list[str] = []
        family(more, "squall_workers", "gauge", "Worker processes running.")
        more.append(f"squall_workers {len(memory)}")
        family(
            more,
            "squall_scrape_missing_workers",
            "gauge",
            "Workers that did not answer this scrape in time (their counters as last reported).",
        )
        more.append(f"squall_scrape_missing_workers {len(round_) - len(answers)}")
        for name, metric, text in _GAUGE_NAMES:
            family(more, metric, "gauge", text + " Per worker process.")
            for pid, gauges in sorted(answers.items()):
                more.append(f"{metric}{{{label('worker', pid)}}} {gauges[name]}")
        family(
            more,
            "squall_worker_resident_memory_bytes",
            "gauge",
            "Resident memory (RSS) of each worker process.",
        )
        for pid, rss in sorted(memory.items()):
            if rss is not None:
                more.append(f"squall_worker_resident_memory_bytes{{{label('worker', pid)}}} {rss}")
        family(more, "squall_worker_restarts_total", "counter", "Workers replaced, by reason.")
        for reason, count in sorted(self._restarts.items()):
            more.append(f"squall_worker_restarts_total{{{label('reason', reason)}}} {count}")
        text = render(counts, totals, more)
        scrapes, self._round_scrapes = self._round_scrapes, []
        for scrape in scrapes:
            try:
                scrape.set_result(text)
            except concurrent.futures.InvalidStateError:  # (its scrape gave up waiting)
                pass
