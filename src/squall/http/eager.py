"""Running a handler coroutine eagerly, inside its connection's task.

A handler that finishes without suspending costs no Task and no loop iteration: its coroutine is
stepped right in ``data_received``. So that ``asyncio.current_task()``, ``asyncio.timeout()`` and
context variables behave as they do in aiohttp (where a connection's requests run in one task),
that first step runs with the connection's worker task entered as the current task and in the
worker's context. If the handler suspends, the worker task carries the coroutine on from there
(:class:`Resume`), so the task that was current before the suspension is still current after it.
"""

from __future__ import annotations

import asyncio.tasks
from collections.abc import Callable, Coroutine, Generator
from types import CoroutineType
from typing import Any, Final, cast

__all__ = (
    "EAGER",
    "NEXT",
    "NOT_STARTED",
    "SELF_AWAITING",
    "Awaiting",
    "Park",
    "Resume",
    "enter_task",
    "leave_task",
)

# Final: the compiled build reads these as C statics, not by name from a module dict.

# CPython's task bookkeeping: the same calls the event loop makes around each Task step
# (None in an asyncio without them: then handlers are never run eagerly).
_TaskStep = Callable[[Any, Any], None]
enter_task: Final = cast(_TaskStep, getattr(asyncio.tasks, "_enter_task", None))
leave_task: Final = cast(_TaskStep, getattr(asyncio.tasks, "_leave_task", None))

EAGER: Final = enter_task is not None and leave_task is not None

NEXT: Final = next
"""The builtin, for stepping a coroutine without StopIteration at its end (running.py)."""

SELF_AWAITING: Final[set[type]] = set()
"""Coroutine types whose ``__await__()`` returns the coroutine itself (compiled ones do): such a
coroutine is stepped with ``next()`` as it is, without the call (a measurable saving).
Learnt from the first coroutine of each type (running.py)."""

NOT_STARTED: Final = object()
"""Handed over in place of the awaited object when the coroutine has not been stepped yet."""

_COROUTINE: Final = CoroutineType


class Awaiting:
    """``shim.awaited = handler(request); result = await shim``: awaits the coroutine itself.

    For compiled code only (the interpreter refuses an ``__await__`` that returns a coroutine,
    and needs none: it awaits a coroutine itself). mypyc awaits an object through its
    ``__await__()``, which for a Python coroutine is a wrapper that ends by raising
    StopIteration with the result; the coroutine itself hands its result over without an
    exception (far fewer instructions per await). ``__await__`` takes the awaitable out as it
    is called, right after it was stored, with no code between, so one shim serves every
    request of one event loop.
    """

    __slots__ = ("awaited",)

    def __init__(self) -> None:
        self.awaited: Any = None

    def __await__(self) -> Generator[Any, None, Any]:
        awaited = self.awaited
        self.awaited = None
        if type(awaited) is _COROUTINE:
            return cast(Generator[Any, None, Any], awaited)
        await_ = getattr(awaited, "__await__", None)
        if await_ is None:
            raise TypeError(f"object {type(awaited).__name__} can't be used in 'await' expression")
        return cast(Generator[Any, None, Any], await_())


class Resume:
    """Await a coroutine that was started elsewhere and is suspended on ``waiting``, or not
    started yet (``waiting`` NOT_STARTED).

    ``throw`` delivers an exception (a cancellation that arrived before the hand-over) first.
    While the task waits on a :class:`Park`'s future, :meth:`step` may run the coroutine on in
    place of the task (``Runner.run_parked()``); ``waiting`` is always what it waits on now.
    """

    __slots__ = ("coro", "ended", "error", "stepped", "throw", "waiting")

    def __init__(
        self,
        coro: Coroutine[Any, Any, None],
        waiting: Any,
        throw: BaseException | None = None,
    ) -> None:
        self.coro = coro
        self.waiting = waiting
        self.throw = throw
        self.stepped = False  # step() ran the coroutine on while the task waited
        self.ended = False  # ... and it ended there (with ``error``, if it raised)
        self.error: BaseException | None = None

    def __await__(self) -> Generator[Any, None, None]:
        coro = self.coro
        pending = self.throw
        self.throw = None
        if self.waiting is NOT_STARTED and pending is None:
            try:
                self.waiting = coro.send(None)
            except StopIteration:
                return
        while True:
            if pending is None:
                try:
                    yield self.waiting
                except BaseException as exc:  # cancellation or a throw(): forward it
                    pending = exc
                if self.stepped:  # step() took the coroutine on meanwhile
                    self.stepped = False
                    if self.ended:
                        error, self.error = self.error, None
                        if pending is not None:  # (a cancellation is never swallowed)
                            raise pending
                        if error is not None:
                            raise error
                        return
                    if pending is None:
                        continue  # it waits on something else now: so does the task
                if pending is None:
                    try:
                        self.waiting = coro.send(None)
                    except StopIteration:
                        return
                    continue
            error, pending = pending, None
            try:
                self.waiting = coro.throw(error)
            except StopIteration:
                return

    def step(self) -> None:
        """Run the coroutine on now, while the task still waits on the pending future it is
        parked on (:class:`Park`). If it parks on that future again, the task goes on waiting
        on it, none the wiser; otherwise the future is completed, and the task then waits on
        what the coroutine waits on now (or ends as the coroutine did)."""
        parked = self.waiting
        try:
            waiting = self.coro.send(None)
        except StopIteration:
            waiting = None
            self.ended = True
        except BaseException as exc:  # (the task raises it, as if it had stepped itself)
            waiting = None
            self.ended = True
            self.error = exc
        if waiting is parked:
            return
        self.waiting = waiting
        self.stepped = True
        if not parked.done():  # (a cancel() in the step may have cancelled it)
            parked.set_result(None)


class Park:
    """``await park``: wait until ``future`` is done, or until the coroutine is run on in place
    by :meth:`Resume.step` (the future then stays pending, for the next wait to reuse).

    Made once, awaited many times: each ``await`` waits on ``future`` as it is then. Its result
    is not read (it only ever gets None); a cancellation comes from the task, as always.
    """

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: Any = None

    def __await__(self) -> Generator[Any, None, None]:
        future = self.future
        future._asyncio_future_blocking = True  # as Future.__await__ does: the task checks it
        yield future
