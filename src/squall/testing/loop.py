"""Event loops for tests: ``loop_context`` and its halves, as in ``aiohttp.test_utils``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Callable, Iterator

from .._loop import new_event_loop

__all__ = ("loop_context", "setup_test_loop", "teardown_test_loop")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

_OPEN: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def open_test_loops() -> list[asyncio.AbstractEventLoop]:
    """The loops :func:`setup_test_loop` made that :func:`teardown_test_loop` has not closed."""
    return list(_OPEN)


def setup_test_loop(loop_factory: LoopFactory = new_event_loop) -> asyncio.AbstractEventLoop:
    """A new loop (squall's choice: uvloop when installed), set as the current one."""
    loop = loop_factory()
    asyncio.set_event_loop(loop)
    _OPEN.add(loop)
    return loop


def teardown_test_loop(loop: asyncio.AbstractEventLoop, fast: bool = False) -> None:
    """Cancel what is left on ``loop``, close it and unset it; ``fast`` skips the gc pass."""
    _OPEN.discard(loop)
    if not loop.is_closed():
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    if not fast:
        gc.collect()
    asyncio.set_event_loop(None)


@contextlib.contextmanager
def loop_context(
    loop_factory: LoopFactory = new_event_loop, fast: bool = False
) -> Iterator[asyncio.AbstractEventLoop]:
    """``with loop_context() as loop:`` a fresh current loop, closed on exit."""
    loop = setup_test_loop(loop_factory)
    try:
        yield loop
    finally:
        teardown_test_loop(loop, fast=fast)
