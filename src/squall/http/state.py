"""The state of one HTTP/1.x connection, shared by the layers :class:`HttpProtocol` is built of.

Every attribute is declared (``__slots__``) and given its initial value here; the layers above
(flow, closing, running, parsing, protocol) hold only methods. What is written goes through
the connection's :class:`~.output.Output`, which owns the write side.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, Protocol

import httptools

from .errors import BadRequest
from .exchange import Exchange
from .output import Output

if TYPE_CHECKING:
    from .server import HttpServer


class UpgradeSink(Protocol):
    """Where the bytes of an upgraded connection go (e.g. a WebSocket channel)."""

    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> None: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def going_away(self) -> None:
        """The server is shutting down: say goodbye in the other protocol's terms."""


# Reasons reading from the socket is paused; reading resumes when none is left.
_PAUSE_PIPELINE: Final = 1  # the queue of parsed requests is full
_PAUSE_BODY: Final = 2  # the running handler has not read the body buffered so far
_PAUSE_STOP: Final = 4  # no more requests will be read on this connection
_READ_PAUSES: Final = _PAUSE_PIPELINE | _PAUSE_BODY | _PAUSE_STOP


class ConnectionState(asyncio.Protocol):
    """The attributes of one connection (see the protocol module for the layers using them)."""

    __slots__ = (
        "_active",
        "_admitted",
        "_body_seen",
        "_body_since",
        "_closing",
        "_completed",
        "_connection_field",
        "_cur",
        "_data",
        "_deadline",
        "_discarding",
        "_good_host",
        "_handler",
        "_handoff",
        "_head_bytes",
        "_head_size",
        "_headers",
        "_in_context",
        "_in_head",
        "_limits",
        "_lingering",
        "_loop",
        "_output",
        "_parser",
        "_paused",
        "_peer_done",
        "_pending_error",
        "_pipeline",
        "_server",
        "_sink",
        "_transport",
        "_upgrade_tail",
        "_url",
        "_wakeup",
        "_worker",
        "peername",
        "sockname",
    )

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._loop = server.loop
        self._limits = server.limits
        self._handler = server.handler
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._in_head = False
        self._head_bytes = 0
        self._head_size = 0
        self._connection_field = False
        self._body_seen = -1
        self._body_since = 0.0
        self._completed = 0
        self._good_host = b""
        self._cur: Exchange | None = None
        self._data = b""
        self._output = Output(server.loop)
        self._active: Exchange | None = None
        self._worker: asyncio.Task[None] | None = None
        # The worker task's context's run(): the eager step of a handler runs in that context.
        self._in_context: Callable[..., Any] | None = None
        self._handoff: tuple[Coroutine[Any, Any, None], Any] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        # Requests parsed while one is being answered; the shared empty tuple until the first
        # one queues (most connections never pipeline: a deque each costs ~760 bytes idle).
        self._pipeline: deque[Exchange] | tuple[()] = ()
        self._pending_error: BadRequest | None = None
        self._closing = False
        self._lingering = False
        self._peer_done = False  # the client closed its side (EOF): nothing more will come
        self._discarding = False
        self._paused = 0
        self._deadline = 0.0
        self._sink: UpgradeSink | None = None
        self._upgrade_tail = b""
        self._admitted = False
        self.peername: Any = None
        self.sockname: Any = None
