"""ReadFlow: whether a connection reads from its socket, and why not."""

from __future__ import annotations

import asyncio
from typing import Final

__all__ = ("BODY", "NO_MORE", "PIPELINE", "ReadFlow")

# Why reading is paused: any of these, as bits; reading resumes when none is left.
PIPELINE: Final = 1  # the queue of parsed requests is full
BODY: Final = 2  # the running handler has not read the body buffered so far
NO_MORE: Final = 4  # no more requests will be read on this connection


class ReadFlow:
    """Pauses and resumes reading for the reasons above; a request body's backpressure
    (``StreamReader``) calls :meth:`pause_reading_body` and :meth:`resume_reading_body`."""

    __slots__ = ("paused", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.paused = 0  # the reasons, as bits

    def pause(self, reason: int) -> None:
        was = self.paused
        self.paused = was | reason
        if not was and self.transport is not None:
            self.transport.pause_reading()

    def resume(self, reason: int) -> None:
        if not self.paused & reason:
            return
        self.paused &= ~reason
        if not self.paused and self.transport is not None:
            self.transport.resume_reading()

    def resume_all(self) -> None:
        """Read again whatever paused it (a closing connection reads and drops the rest)."""
        if self.paused:
            self.paused = 0
            if self.transport is not None:
                self.transport.resume_reading()

    def pause_reading_body(self) -> None:
        self.pause(BODY)

    def resume_reading_body(self) -> None:
        self.resume(BODY)
