"""What the web layer uses of the connection a request came on.

:class:`~squall.http.protocol.HttpProtocol` is the connection; ``squall.testing``'s mocked
requests bring a stand-in. Typed as this Protocol, a connection is not type-checked at run time
by the compiled build (setup.py), which would refuse the stand-in.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .limits import Limits
    from .state import UpgradeSink


class Connection(Protocol):
    """The part of :class:`~squall.http.protocol.HttpProtocol` that requests and responses use."""

    peername: Any
    sockname: Any
    _loop: asyncio.AbstractEventLoop
    _limits: Limits

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
    def shutdown(self) -> None: ...
