"""Response bytes out (write, gathering, flush, drain, 100 Continue) and read flow control."""

from __future__ import annotations

import asyncio
from typing import Final

from .state import _PAUSE_BODY, _PAUSE_WRITE, _READ_PAUSES, ConnectionState

_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_OUT_LIMIT: Final = 65536  # bytes gathered during one data_received before writing anyway


class OutputLayer(ConnectionState):
    """What handlers call to write, wait for the client, and pause reading a body."""

    __slots__ = ()

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._transport

    def lost(self) -> asyncio.Future[None]:
        """A future (shared: never cancel it) that completes when the connection is lost."""
        fut = self._lost
        if fut is None:
            fut = self._lost = self._loop.create_future()
            if self._transport is None:
                fut.set_result(None)
        return fut

    @property
    def response_started(self) -> bool:
        """Whether any byte of the current request's response has been written."""
        return self._wrote

    def write(self, data: bytes) -> None:
        """Write response bytes; raises ConnectionResetError once the client has gone."""
        transport = self._transport
        if transport is None:
            raise ConnectionResetError("Cannot write to closing transport")
        self._wrote = True
        if self._gathering:  # _send's gathering case, inline: the hot path
            self._out.append(data)
            self._out_size += len(data)
            if self._out_size > _OUT_LIMIT:
                self._flush()
        else:
            transport.write(data)

    def _send(self, data: bytes) -> None:
        """Every byte goes out through here, in order.

        While ``data_received`` runs, responses answered on the spot are gathered and sent in
        one write when it returns: a pipelined batch costs one syscall, not one per response.
        """
        if not self._gathering:
            transport = self._transport
            if transport is not None:
                transport.write(data)
            return
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size > _OUT_LIMIT:  # a big body written eagerly: let backpressure see it
            self._flush()

    def _flush(self) -> None:
        out = self._out
        if out:
            transport = self._transport
            if transport is not None:
                transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
            self._out_size = 0

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self._transport is None:
            raise ConnectionResetError("Connection lost")
        if not self._paused & _PAUSE_WRITE:
            return
        fut = self._loop.create_future()
        self._drain_waiters.append(fut)
        await fut

    def _send_continue(self) -> None:
        if not self._wrote:
            self._send(_CONTINUE)

    @property
    def write_paused(self) -> bool:
        """Whether the transport's write buffer is over its high-water mark."""
        return bool(self._paused & _PAUSE_WRITE)

    # -- flow control ---------------------------------------------------------------------

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
