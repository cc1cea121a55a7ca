"""The ASGI ``lifespan`` scope: startup and shutdown events, and the state shared with requests."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .types import ASGI_VERSION, ASGIApp, Message

__all__ = ("Lifespan", "LifespanFailed")

log = logging.getLogger("squall.asgi")


class LifespanFailed(RuntimeError):
    """The application reported ``lifespan.startup.failed`` / ``lifespan.shutdown.failed``."""


class Lifespan:
    """Run an application's lifespan scope in a task of its own, as the ASGI spec describes.

    An application that raises before it first calls ``receive()`` is taken not to support the
    lifespan protocol (``supported`` becomes False) and is served without it. ``state`` is the
    dict given to the application in the lifespan scope; servers copy it into each request.
    """

    __slots__ = ("_app", "_events", "_received", "_replies", "_task", "state", "supported")

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self.state: dict[str, Any] = {}
        self.supported = True
        self._events: asyncio.Queue[Message] | None = None
        self._replies: asyncio.Queue[Message] | None = None
        self._received = False
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the application's answer.

        Raises :class:`LifespanFailed` if the application reports a failure or raises after it
        received the event.
        """
        self._events = asyncio.Queue()
        self._replies = asyncio.Queue()
        self._events.put_nowait({"type": "lifespan.startup"})
        task = self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            await self._expect("startup")
        except BaseException:
            self._task = None
            await _stop(task)
            raise

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the application's answer (no-op if unused)."""
        task = self._task
        if not self.supported or task is None or self._events is None:
            return
        if task.done():
            self._task = None
            return
        self._events.put_nowait({"type": "lifespan.shutdown"})
        try:
            await self._expect("shutdown")
        finally:
            self._task = None
            await _stop(task)

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        assert self._replies is not None
        try:
            await self._app(scope, self._receive, self._send)
        except Exception as exc:
            if not self._received:
                self.supported = False
                log.info("ASGI 'lifespan' protocol appears unsupported (%r)", exc)
                self._replies.put_nowait({"type": "unsupported"})
            else:
                log.error("Exception in ASGI lifespan", exc_info=exc)
                self._replies.put_nowait({"type": "error", "message": repr(exc)})
            return
        self._replies.put_nowait({"type": "returned"})

    async def _receive(self) -> Message:
        assert self._events is not None
        message = await self._events.get()
        self._received = True
        return message

    async def _send(self, message: Message) -> None:
        assert self._replies is not None
        kind = message.get("type")
        if kind not in (
            "lifespan.startup.complete",
            "lifespan.startup.failed",
            "lifespan.shutdown.complete",
            "lifespan.shutdown.failed",
        ):
            raise RuntimeError(f"Unexpected ASGI message type {kind!r} in the lifespan scope")
        self._replies.put_nowait(dict(message))

    async def _expect(self, phase: str) -> None:
        assert self._replies is not None
        reply = await self._replies.get()
        kind = reply["type"]
        if kind == f"lifespan.{phase}.complete" or kind == "unsupported":
            return
        if kind == f"lifespan.{phase}.failed":
            message = reply.get("message", "")
            raise LifespanFailed(f"Lifespan {phase} failed: {message}" if message else phase)
        if kind == "returned":
            if phase == "startup" and not self._received:
                self.supported = False  # returned at once: nothing to run
                return
            if phase == "shutdown":
                return  # it returned instead of answering: the end it was asked for
            raise LifespanFailed(f"ASGI application returned during lifespan {phase}")
        if kind == "error":
            raise LifespanFailed(f"Exception in lifespan {phase}: {reply.get('message', '')}")
        raise LifespanFailed(f"Unexpected lifespan message {kind!r} during {phase}")


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel the lifespan task if it is still running, and wait for it to end."""
    if task.done():
        return
    task.cancel()
    await asyncio.wait([task])
