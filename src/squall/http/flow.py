"""What a connection offers the objects that use it: reading paused and resumed (a body's
backpressure), and, for an upgraded protocol, writing and waiting on the output."""

from __future__ import annotations

import asyncio

from .state import _PAUSE_BODY, _READ_PAUSES, ConnectionState


class FlowLayer(ConnectionState):
    """Read flow control, and the output's public face for upgraded protocols (WebSocket)."""

    __slots__ = ()

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._transport

    def lost(self) -> asyncio.Future[None]:
        """A future (shared: never cancel it) that completes when the connection is lost."""
        return self._output.lost()

    def write(self, data: bytes) -> None:
        """Write bytes of an upgraded protocol; raises ConnectionResetError once the client
        has gone. (HTTP responses are written by their exchange.)"""
        self._output.write(data)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        await self._output.drain()

    @property
    def write_paused(self) -> bool:
        """Whether the transport's write buffer is over its high-water mark."""
        return self._output.write_paused

    def pause_reading_body(self) -> None:
        self._pause(_PAUSE_BODY)

    def resume_reading_body(self) -> None:
        self._unpause(_PAUSE_BODY)

    def _pause(self, reason: int) -> None:
        was = self._paused & _READ_PAUSES
        self._paused |= reason
        if not was and self._transport is not None:
            self._transport.pause_reading()

    def _unpause(self, reason: int) -> None:
        if not self._paused & reason:
            return
        self._paused &= ~reason
        if not self._paused & _READ_PAUSES and self._transport is not None:
            self._transport.resume_reading()
