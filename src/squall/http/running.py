"""Running handlers: the eager step, the connection's worker task, and the pipeline queue."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .closing import ClosingLayer
from .eager import EAGER, NEXT, NOT_STARTED, SELF_AWAITING, Resume, enter_task, leave_task
from .exchange import Exchange
from .limits import TICK
from .state import _PAUSE_BODY, _PAUSE_PIPELINE
from .streams import EMPTY_PAYLOAD

if TYPE_CHECKING:
    from .protocol import HttpProtocol

log = logging.getLogger("squall.server")


class HandlerLayer(ClosingLayer):
    """One request answered at a time, in order; the rest wait in the pipeline queue."""

    __slots__ = ()

    # -- the connection limit -------------------------------------------------------------

    def _admit(self) -> bool:
        """Count this connection against max_connections if there is room."""
        server = self._server
        if server.admitted >= self._limits.max_connections:
            return False
        server.admitted += 1
        self._admitted = True
        self._handler = server.handler
        return True

    async def _unavailable(self, req: Exchange, conn: HttpProtocol) -> None:
        """The handler of a connection accepted past max_connections."""
        if self._admit():  # another connection closed meanwhile: serve this one after all
            await self._handler(req, conn)
            return
        log.warning("Exceeded the connection limit (%d): 503", self._limits.max_connections)
        req.respond_error(503, "Too many connections")

    # -- running handlers -----------------------------------------------------------------

    def _dispatch(self, req: Exchange) -> None:
        if self._closing:
            return
        if self._active is None and not self._pipeline and not self._output.write_paused:
            self._start(req)
            return
        # Behind another request, or the client is not reading its answers: queue it (past
        # max_pipeline, reading pauses, so a client that never reads costs bounded memory).
        pipeline = self._pipeline
        if not isinstance(pipeline, deque):
            pipeline = self._pipeline = deque()
        pipeline.append(req)
        if len(self._pipeline) >= self._limits.max_pipeline:
            self._pause(_PAUSE_PIPELINE)

    def _start(self, req: Exchange) -> None:
        """Run ``req`` and then whatever is queued behind it, until one suspends.

        Each handler is stepped eagerly; one that suspends is handed to the worker task, which
        carries on with it and the queue. (The hot path: kept in one function on purpose.)
        """
        loop = self._loop
        while True:
            self._active = req
            worker = self._worker
            if worker is None:
                worker = self._start_worker()
            coro = self._handler(req, self)  # type: ignore[arg-type]  # self: the HttpProtocol
            if not EAGER:
                self._hand_off(coro, NOT_STARTED)
                return
            try:
                enter_task(loop, worker)
            except RuntimeError:  # driven from inside another task (a test harness): no eager step
                self._hand_off(coro, NOT_STARTED)
                return
            waiting: Any = NOT_STARTED
            try:
                # next(), not coro.send(None): a finished handler ends the step without raising
                # StopIteration, which costs ~7% of a request (compiled: a traceback entry).
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
                self._handler_crashed(exc)
            finally:
                leave_task(loop, worker)
            if waiting is not NOT_STARTED:  # suspended
                self._hand_off(coro, waiting)
                return
            if req.keep_alive and req.body is EMPTY_PAYLOAD and not self._closing:
                self._active = None  # _finish's common case
            elif not self._finish(req):
                return
            if not self._pipeline:
                if self._pending_error is None and not self._in_head:  # _idle's common case
                    # (from the tick's clock: the deadline is checked at ticks anyway, and a
                    # clock read is ~1% of a request)
                    self._deadline = self._server.now + self._limits.keepalive_timeout + TICK
                else:
                    self._idle()
                return
            if self._output.write_paused:
                return  # the client is not reading: resume_writing() goes on with the queue
            req = self._next_queued()

    def _next_queued(self) -> Exchange:
        """Take the next queued request; reading resumes once the queue is short again."""
        pipeline = self._pipeline
        assert isinstance(pipeline, deque)  # only called when a request is queued
        req = pipeline.popleft()
        # One read may queue many more than max_pipeline: resume only below the mark.
        if self._paused & _PAUSE_PIPELINE and len(self._pipeline) < self._limits.max_pipeline:
            self._unpause(_PAUSE_PIPELINE)
        return req

    def _start_worker(self) -> asyncio.Task[None]:
        ctx = contextvars.copy_context()
        self._in_context = ctx.run
        worker = self._worker = self._loop.create_task(self._work(), context=ctx)
        return worker

    def _hand_off(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        self._handoff = (coro, waiting)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _work(self) -> None:
        """The connection's task: continues suspended handlers and answers what queued behind.

        A cancellation ends it (loop teardown, shutdown, or the client gone with
        handler_cancellation): it is delivered to the handler in progress, never swallowed.
        """
        try:
            while True:
                handoff = self._handoff
                throw: BaseException | None = None
                if handoff is None:
                    if self._transport is None:
                        return
                    self._wakeup = self._loop.create_future()
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
                req = self._active
                coro, waiting = handoff
                awaitable: Any = coro
                if waiting is not NOT_STARTED:
                    awaitable = Resume(coro, waiting, throw)
                elif throw is not None:
                    coro.close()
                    raise throw
                while True:
                    await self._await_handler(awaitable)
                    if req is None or self._transport is None:
                        self._active = None
                        break
                    if not self._finish(req) or not self._pipeline:
                        if not self._closing:
                            self._idle()
                        break
                    if self._output.write_paused:
                        break  # resume_writing() goes on with the queue
                    req = self._next_queued()
                    self._active = req
                    awaitable = self._handler(req, self)  # type: ignore[arg-type]  # (the same)
        finally:
            self._worker = None  # a later request starts a new one

    async def _await_handler(self, awaitable: Any) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            # No response can follow a cancelled handler: close, and let the task end.
            self._active = None
            self._close()
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._handler_crashed(exc)

    def _handler_crashed(self, exc: BaseException) -> None:
        """Last line of defence: the application layer let an exception out."""
        log.error("Unhandled exception in request handler", exc_info=exc)
        req = self._active
        if req is not None and req.fail() and self._transport is not None:
            req.respond_error(500, "Internal Server Error")

    def _finish(self, req: Exchange) -> bool:
        """The response to ``req`` is complete; True if the connection stays open."""
        self._active = None
        if self._closing:
            return False
        if not req.keep_alive:
            self._close()
            return False
        body = req.body
        if body is EMPTY_PAYLOAD:
            return True
        if not body.is_eof():
            if body.take_continue():
                # The client is waiting for 100 Continue that will never come: don't read on.
                self._close()
                return False
            # The handler did not read the whole body: drop the rest as it arrives.
            self._discarding = True
            body.feed_eof()
        if body.drop_unread():  # this body stopped the socket: nobody will read it now
            self._unpause(_PAUSE_BODY)
        return True

    def _idle(self) -> None:
        if self._pending_error is not None:
            self._answer_error(self._pending_error)
        elif not self._in_head:  # a head in progress keeps its own (header) deadline
            # Idle keep-alive, or still dropping an unread body: either way, bounded.
            self._deadline = self._loop.time() + self._limits.keepalive_timeout
