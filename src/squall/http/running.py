"""Runner: a connection's handlers, run one request at a time and in order.

Each handler coroutine is stepped eagerly (http/eager.py), right in ``data_received``; one that
suspends is handed to the connection's worker task, which carries it on and then answers the
requests that queued behind it (the pipeline). The runner decides nothing about the connection:
what happens once a response is complete (keep it open, close it) is its host's to say.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, Protocol

from .eager import EAGER, NEXT, NOT_STARTED, SELF_AWAITING, Resume, enter_task, leave_task
from .flow import PIPELINE
from .streams import EMPTY_PAYLOAD

if TYPE_CHECKING:
    from .exchange import Exchange
    from .flow import ReadFlow
    from .output import Output
    from .shared import Shared

__all__ = ("BUSY", "IDLE", "STOPPED", "Runner", "RunnerHost")

log = logging.getLogger("squall.server")

# What Runner.start() and Runner.resume() leave behind.
IDLE: Final = 0  # every request answered, the connection open for the next
BUSY: Final = 1  # a handler suspended (the worker goes on), or the client stopped reading
STOPPED: Final = 2  # a response closed the connection (its host said so)

# Resume.step unbound: run_parked() passes it and the Resume to Context.run, so that a WebSocket
# message makes no bound method.
_STEP: Final = Resume.step


class RunnerHost(Protocol):
    """What a runner asks of its connection when a response is complete."""

    def finished(self, req: Exchange) -> bool:
        """``req``'s response is complete (and not simply kept alive): True if the connection
        stays open for the next request."""

    def idle(self) -> None:
        """Every request is answered (after a handler that suspended)."""

    def handler_cancelled(self) -> None:
        """A handler was cancelled: no response can follow; the connection must close."""


class Runner:
    """Runs the handlers of one connection's requests, in order; the rest wait in the pipeline."""

    __slots__ = (
        "_cancel_first",
        "_handoff",
        "_in_context",
        "_resume",
        "_running",
        "_wakeup",
        "active",
        "conn",
        "flow",
        "handler",
        "host",
        "limits",
        "loop",
        "output",
        "pipeline",
        "stopped",
        "worker",
    )

    def __init__(
        self, shared: Shared, host: RunnerHost, conn: Any, output: Output, flow: ReadFlow
    ) -> None:
        self.handler: Callable[..., Coroutine[Any, Any, None]] = shared.handler
        self.loop = shared.loop
        self.limits = shared.limits
        self.host = host
        self.conn = conn  # what handlers are given beside the exchange (the HttpProtocol)
        self.output = output
        self.flow = flow
        self.active: Exchange | None = None  # the request being answered
        # Requests parsed while one is being answered; the shared empty tuple until the first
        # one queues (most connections never pipeline: a deque each costs ~760 bytes idle).
        self.pipeline: deque[Exchange] | tuple[()] = ()
        self.stopped = False  # the connection is closing: nothing more is started
        self.worker: asyncio.Task[None] | None = None
        # The worker task's context's run(): the eager step of a handler runs in that context.
        self._in_context: Callable[..., Any] | None = None
        self._handoff: tuple[Coroutine[Any, Any, None], Any] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        # How the worker carries on the suspended handler in progress (run_parked()).
        self._resume: Resume | None = None
        self._running = False  # the worker task has taken its first step
        self._cancel_first = False  # cancel() came before it did

    @property
    def busy(self) -> bool:
        """Whether a request is being answered or waits to be."""
        return self.active is not None or bool(self.pipeline)

    def dispatch(self, req: Exchange) -> int:
        """Answer ``req`` now if nothing is ahead of it, else queue it; returns IDLE, BUSY or
        STOPPED (see :meth:`start`)."""
        if self.active is None and not self.pipeline and not self.output.write_paused:
            return self.start(req)
        # Behind another request, or the client is not reading its answers: queue it (past
        # max_pipeline, reading pauses, so a client that never reads costs bounded memory).
        pipeline = self.pipeline
        if not isinstance(pipeline, deque):
            pipeline = self.pipeline = deque()
        pipeline.append(req)
        if len(pipeline) >= self.limits.max_pipeline:
            self.flow.pause(PIPELINE)
        return BUSY

    def start(self, req: Exchange) -> int:
        """Run ``req`` and then whatever is queued behind it, until one suspends.

        Each handler is stepped eagerly; one that suspends is handed to the worker task, which
        carries on with it and the queue. (The hot path: kept in one function on purpose.)
        """
        loop = self.loop
        while True:
            self.active = req
            worker = self.worker
            if worker is None:
                worker = self._start_worker()
            coro = self.handler(req, self.conn)
            if not EAGER:
                self._hand_off(coro, NOT_STARTED)
                return BUSY
            try:
                enter_task(loop, worker)
            except RuntimeError:  # driven from inside another task (a test harness): no eager step
                self._hand_off(coro, NOT_STARTED)
                return BUSY
            waiting: Any = NOT_STARTED
            try:
                # next(), not coro.send(None): a finished handler ends the step without raising
                # StopIteration, which is costly (compiled: a traceback entry each time).
                if type(coro) in SELF_AWAITING:
                    step: Any = coro
                else:
                    step = coro.__await__()
                    if step is coro and len(SELF_AWAITING) < 64:
                        SELF_AWAITING.add(type(coro))
                waiting = self._in_context(NEXT, step, NOT_STARTED)  # type: ignore[misc]
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                self.handler_crashed(exc)
            finally:
                leave_task(loop, worker)
            if waiting is not NOT_STARTED:  # suspended
                self._hand_off(coro, waiting)
                return BUSY
            if req.keep_alive and req.body is EMPTY_PAYLOAD and not self.stopped:
                self.active = None  # the common case of host.finished(), without the call
            else:
                self.active = None
                if not self.host.finished(req):
                    return STOPPED
            if not self.pipeline:
                return IDLE
            if self.output.write_paused:
                return BUSY  # the client is not reading: resume() goes on with the queue
            req = self._next_queued()

    @property
    def held_back(self) -> bool:
        """Whether requests wait with none being answered (the client stopped reading)."""
        return self.active is None and bool(self.pipeline) and not self.stopped

    def resume(self) -> int:
        """The client reads again: go on with the requests held back (see held_back)."""
        return self.start(self._next_queued())

    def _next_queued(self) -> Exchange:
        """Take the next queued request; reading resumes once the queue is short again."""
        pipeline = self.pipeline
        assert isinstance(pipeline, deque)  # only called when a request is queued
        req = pipeline.popleft()
        # One read may queue many more than max_pipeline: resume only below the mark.
        if len(pipeline) < self.limits.max_pipeline:
            self.flow.resume(PIPELINE)
        return req

    def drop_queued(self) -> list[Exchange]:
        """Forget the requests waiting in the pipeline (the connection closes); returns them."""
        dropped = list(self.pipeline)
        self.pipeline = ()
        return dropped

    # -- the worker task ------------------------------------------------------------------

    def _start_worker(self) -> asyncio.Task[None]:
        ctx = contextvars.copy_context()
        self._in_context = ctx.run
        worker = self.worker = self.loop.create_task(self._work(), context=ctx)
        return worker

    def _hand_off(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        self._handoff = (coro, waiting)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def cancel(self) -> None:
        """Cancel the handler in progress (or end the idle worker)."""
        worker = self.worker
        if worker is None:
            return
        if not self._running:
            # Its first step is still to come: a task cancelled now would end before running a
            # line of _work(), and drop the handler handed to it without cancelling it.
            self._cancel_first = True
            return
        worker.cancel()

    async def _work(self) -> None:
        """The connection's task: continues suspended handlers and answers what queued behind.

        A cancellation ends it (loop teardown, shutdown, or the client gone with
        handler_cancellation): it is delivered to the handler in progress, never swallowed.
        """
        self._running = True
        try:
            while True:
                handoff = self._handoff
                throw: BaseException | None = None
                if self._cancel_first:  # cancel() came before this first step
                    self._cancel_first = False
                    throw = asyncio.CancelledError()
                    if handoff is None:
                        raise throw
                elif handoff is None:
                    if self.output.transport is None:
                        return
                    self._wakeup = self.loop.create_future()
                    try:
                        await self._wakeup
                    except asyncio.CancelledError as exc:
                        if self._handoff is None:
                            raise  # cancelled while idle
                        throw = exc  # ... or just as a handler was handed over: it gets it
                    finally:
                        self._wakeup = None
                    handoff = self._handoff
                    if handoff is None:
                        continue
                self._handoff = None
                req = self.active
                coro, waiting = handoff
                if waiting is NOT_STARTED and throw is not None:  # cancelled before it began
                    coro.close()
                    self.active = None
                    self.host.handler_cancelled()
                    raise throw
                awaitable: Any = Resume(coro, waiting, throw)
                self._resume = awaitable
                while True:
                    await self._await_handler(awaitable)
                    self._resume = None
                    if req is None or self.output.transport is None:
                        self.active = None
                        break
                    self.active = None
                    if not self.host.finished(req) or not self.pipeline:
                        if not self.stopped:
                            self.host.idle()
                        break
                    if self.output.write_paused:
                        break  # resume() goes on with the queue
                    req = self._next_queued()
                    self.active = req
                    awaitable = self.handler(req, self.conn)
        finally:
            self.worker = None  # a later request starts a new one
            self._resume = None
            self._running = False

    def run_parked(self, parked: asyncio.Future[None]) -> bool:
        """Run the handler on here and now if the worker waits for it on ``parked`` (the
        pending future of an :class:`~.eager.Park`): a WebSocket message is handed to its
        ``receive()`` without a future completed, a callback scheduled and a task step per
        message. As the eager step, it runs with the worker entered as the current task and
        in its context. False if the handler is not parked there (the caller then completes
        ``parked``, and the worker wakes as usual)."""
        resume = self._resume
        if resume is None or resume.waiting is not parked or not EAGER:
            return False
        loop = self.loop
        worker = self.worker
        try:
            enter_task(loop, worker)
        except RuntimeError:  # called from inside a task: leave it to the worker
            return False
        try:
            self._in_context(_STEP, resume)  # type: ignore[misc]
        finally:
            leave_task(loop, worker)
        return True

    async def _await_handler(self, awaitable: Any) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            # No response can follow a cancelled handler: close, and let the task end.
            self.active = None
            self.host.handler_cancelled()
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self.handler_crashed(exc)

    def handler_crashed(self, exc: BaseException) -> None:
        """Last line of defence: the application layer let an exception out."""
        log.error("Unhandled exception in request handler", exc_info=exc)
        req = self.active
        if req is not None and req.fail() and self.output.transport is not None:
            req.respond_error(500, "Internal Server Error")
