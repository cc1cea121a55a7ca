"""What the application layers use of the connection a request came on, and what an upgraded
protocol (a WebSocket) gives it.

:class:`~squall.http.protocol.HttpProtocol` is the connection; ``squall.testing``'s mocked
requests bring a stand-in. Typed as this Protocol, a connection is not type-checked at run time
by the compiled build (setup.py), which would refuse the stand-in.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .limits import Limits


class UpgradeSink(Protocol):
    """Where the bytes of an upgraded connection go (e.g. a WebSocket channel)."""

    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> None: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def going_away(self) -> None:
        """The server is shutting down: say goodbye in the other protocol's terms."""


class Connection(Protocol):
    """The part of :class:`~squall.http.protocol.HttpProtocol` that requests and responses use."""

    peername: Any
    sockname: Any
    loop: asyncio.AbstractEventLoop
    limits: Limits

    @property
    def transport(self) -> asyncio.Transport | None: ...
    @property
    def write_paused(self) -> bool: ...
    # An upgraded protocol's bytes (HTTP responses go through their Exchange):
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def lost(self) -> asyncio.Future[None]: ...
    def pause_reading_body(self) -> None: ...
    def resume_reading_body(self) -> None: ...
    def upgrade(self, sink: UpgradeSink) -> None: ...
    # The handler waits on ``parked`` (an eager.Park's future) in the connection's task: run it
    # on here and now, True; or False, and the caller completes ``parked`` instead.
    def run_parked(self, parked: asyncio.Future[None]) -> bool: ...
    def close(self) -> None: ...
    def shutdown(self) -> None: ...
