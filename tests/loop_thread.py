"""LoopThread: run a server coroutine on its own event loop in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Self

import squall


class LoopThread:
    """Subclasses implement :meth:`serve`: set up, call ``self.ready()``, ``await stop.wait()``,
    tear down. ``start()`` returns once ready (or raises what setup raised)."""

    stop_timeout = 15.0

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    async def serve(self, stop: asyncio.Event) -> None:
        raise NotImplementedError

    def ready(self) -> None:
        self._ready.set()

    def _main(self) -> None:
        try:
            # squall's loop (uvloop when installed), as run_app and the command line run it
            with asyncio.Runner(loop_factory=squall.new_event_loop) as runner:
                runner.run(self._run())
        except BaseException as exc:  # surfaced by start() or stop()
            self._error = exc
            self._ready.set()

    async def _run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.serve(self._stop)

    def start(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float | None = None) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(self.stop_timeout if timeout is None else timeout)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop and return its result (for inspecting state)."""
        assert self.loop is not None
        result: list[Any] = []
        done = threading.Event()

        def run() -> None:
            result.append(fn())
            done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(5)
        return result[0]
