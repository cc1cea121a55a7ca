"""The ``websocket`` scope of ASGI: one WebSocket session's ``receive``/``send`` pair.

The handshake is checked before the application runs (a bad one gets 400, or 426 for another
version). The application then sees ``websocket.connect`` and answers with
``websocket.accept`` (101 and the switch to frames), ``websocket.close`` (403), or a denial
response (the ``websocket.http.response`` extension). After the accept, messages travel through
the same :class:`~squall.http.ws_channel.WebSocketChannel` as aiohttp-style WebSockets.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ..http.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_TEXT,
    accept_key,
    negotiate_deflate,
    valid_key,
)
from ..http.ws_channel import EOF, WebSocketChannel
from .cycle import Cycle
from .types import Message

if TYPE_CHECKING:
    from ..http.connection import Connection
    from ..http.exchange import Exchange

__all__ = ("WebSocketSession", "handshake_refused", "is_websocket")

log = logging.getLogger("squall.asgi")

_CONNECTING = 0  # websocket.connect not yet received by the application
_HANDSHAKE = 1  # the application has seen connect and must accept, close or deny
_OPEN = 2
_DENYING = 3  # a websocket.http.response in progress
_CLOSED = 4

MAX_MESSAGE = 16 * 1024 * 1024  # uvicorn's default --ws-max-size
CLOSE_TIMEOUT = 5.0  # how long to wait for the client's close frame after ours


def is_websocket(raw: Exchange) -> bool:
    for name, value in raw.headers:
        if len(name) == 7 and name.lower() == b"upgrade":
            return value.strip().lower() == b"websocket"
    return False


def _header(raw: Exchange, wanted: bytes) -> str | None:
    for name, value in raw.headers:
        if name.lower() == wanted:
            return value.decode("latin-1")
    return None


def handshake_refused(raw: Exchange) -> bool:
    """Answer an invalid handshake (RFC 6455 4.2.1) and return True; False if it is fine."""
    if raw.method != "GET":
        raw.respond_error(400, "WebSocket handshake must be a GET")
        return True
    version = _header(raw, b"sec-websocket-version")
    if version is None or version.strip() != "13":
        raw.respond(
            426,
            None,
            "text/plain; charset=utf-8",
            ((b"Sec-WebSocket-Version", b"13"),),
            b"Unsupported WebSocket version: use 13",
            close=True,
        )
        return True
    if not valid_key(_header(raw, b"sec-websocket-key")):
        raw.respond_error(400, "Invalid Sec-WebSocket-Key")
        return True
    return False


class WebSocketSession:
    """The ``receive``/``send`` an ASGI application gets for one WebSocket."""

    __slots__ = (
        "channel",
        "close_code",
        "close_reason",
        "conn",
        "cycle",
        "outcome",
        "raw",
        "state",
    )

    def __init__(self, raw: Exchange, conn: Connection) -> None:
        self.raw = raw
        self.conn = conn
        self.state = _CONNECTING
        self.channel: WebSocketChannel | None = None
        self.cycle: Cycle | None = None
        self.close_code = 1006
        self.close_reason = ""
        self.outcome: int | str = 403  # for the access log: what the handshake became

    # -- receive --------------------------------------------------------------------------

    async def receive(self) -> Message:
        state = self.state
        if state == _OPEN:
            channel = self.channel
            assert channel is not None
            if (  # channel.receive() inlined for a message handed over: one coroutine less
                channel.handed is None
                and not channel.queue
                and not channel.ended
                and channel.waiter is None
            ):
                try:
                    await channel.wait()
                finally:
                    channel.waiter = None
            msg = channel.handed
            if msg is not None:
                channel.handed = None
                op, data, extra = msg[0], msg[1], None
            else:
                op, data, extra = await channel.receive()
            if op == OP_TEXT:
                return {"type": "websocket.receive", "text": data}
            if op == OP_BINARY:
                return {"type": "websocket.receive", "bytes": data}
            return self._ended(op, data, extra)
        if state == _CONNECTING:
            self.state = _HANDSHAKE
            return {"type": "websocket.connect"}
        if state != _CLOSED:  # waiting for the application's own answer: only a hang-up comes
            await self.conn.lost()
            self.state = _CLOSED
        return self._disconnect()

    def _ended(self, op: int, data: Any, extra: Any) -> Message:
        channel = self.channel
        assert channel is not None
        self.state = _CLOSED
        if op == OP_CLOSE:
            self.close_code = data or 1005
            self.close_reason = extra or ""
            channel.send_close(data or 1000)  # the close handshake: echo, then hang up
        elif op == EOF:
            self.close_code = 1006
        else:  # a protocol violation: its close code, to the client and to the application
            self.close_code = data.code
            channel.send_close(data.code)
        channel.close_transport()
        return self._disconnect()

    def _disconnect(self) -> Message:
        code, reason = self.close_code, self.close_reason
        return {"type": "websocket.disconnect", "code": code, "reason": reason}

    # -- send -----------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message["type"]
        state = self.state
        if state == _OPEN:
            channel = self.channel
            assert channel is not None
            if kind == "websocket.send":
                text = message.get("text")
                if text is not None:
                    paused = channel.send(OP_TEXT, text.encode())
                else:
                    data = message.get("bytes")
                    if data is None:
                        raise RuntimeError("websocket.send needs 'bytes' or 'text'")
                    paused = channel.send(OP_BINARY, data if type(data) is bytes else bytes(data))
                if paused:
                    await channel.drain()
            elif kind == "websocket.close":
                code = message.get("code") or 1000
                reason = message.get("reason") or ""
                self.state = _CLOSED
                self.close_code = code
                channel.send_close(code, reason.encode())
            else:
                raise RuntimeError(f"Unexpected ASGI message {kind!r} on an open WebSocket")
        elif state in (_CONNECTING, _HANDSHAKE):
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self.state = _CLOSED
                self._deny(403)
            elif kind == "websocket.http.response.start":
                self.state = _DENYING
                self.cycle = Cycle(self.raw, self.conn)
                await self.cycle.send({**message, "type": "http.response.start"})
                self.outcome = self.cycle.status
            else:
                raise RuntimeError(f"Unexpected ASGI message {kind!r} before websocket.accept")
        elif state == _DENYING:
            assert self.cycle is not None
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Unexpected ASGI message {kind!r} in a denial response")
            await self.cycle.send({**message, "type": "http.response.body"})
        else:
            raise ConnectionResetError(f"Cannot send {kind!r}: the WebSocket is closed")

    def _accept(self, message: Message) -> None:
        raw, conn = self.raw, self.conn
        if conn.transport is None:
            raise ConnectionResetError("Connection lost")
        key = _header(raw, b"sec-websocket-key")
        assert key is not None  # checked by handshake_error before the application ran
        headers = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", accept_key(key.strip()).encode("latin-1")),
        ]
        deflate = negotiate_deflate(_header(raw, b"sec-websocket-extensions"))
        if deflate is not None:
            headers.append((b"Sec-WebSocket-Extensions", deflate.response_header().encode()))
        subprotocol = message.get("subprotocol")
        if subprotocol:
            headers.append((b"Sec-WebSocket-Protocol", subprotocol.encode("latin-1")))
        try:
            raw.start(101, None, None, [*headers, *(message.get("headers") or ())], -1)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        raw.end()
        channel = self.channel = WebSocketChannel(conn, max_size=MAX_MESSAGE, deflate=deflate)
        self.state = _OPEN
        self.outcome = "[accepted]"
        conn.upgrade(channel)

    def _deny(self, status: int) -> None:
        self.outcome = status
        if self.raw.fail():
            self.raw.respond_error(status, "Forbidden" if status == 403 else "Error")

    # -- the end --------------------------------------------------------------------------

    async def finish(self) -> None:
        """The application returned: complete whatever it left open."""
        state = self.state
        if state in (_CONNECTING, _HANDSHAKE):
            self._deny(403)  # ASGI: an application that never accepts refuses with 403
        elif state == _DENYING:
            assert self.cycle is not None
            if not self.raw.complete:
                self.cycle.unfinished()
        elif state == _OPEN:
            assert self.channel is not None
            self.state = _CLOSED
            self.channel.send_close(1000)
            await self._await_close()
        else:
            await self._await_close()
        self.state = _CLOSED

    async def _await_close(self) -> None:
        channel = self.channel
        if channel is None or self.conn.transport is None:
            return
        if channel.close_sent and channel.close_received is None and not channel.ended:
            try:  # give the client its turn in the close handshake, then hang up anyway
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    while True:
                        op, _, _ = await channel.receive()
                        if op == OP_CLOSE or op < 0:
                            break
            except TimeoutError:
                pass
        channel.close_transport()

    def crashed(self, exc: Exception) -> None:
        """The application raised: 500 before the accept, close 1011 after it."""
        if self.conn.transport is None:
            log.debug("ASGI application raised after the client left", exc_info=exc)
        else:
            log.error("Exception in ASGI application", exc_info=exc)
        state = self.state
        if state == _DENYING and self.cycle is not None:
            if not self.raw.started:
                self.outcome = 500
            self.cycle.crashed(exc)
        elif state in (_CONNECTING, _HANDSHAKE):
            self._deny(500)
        elif self.channel is not None:
            self.channel.send_close(1011)
            self.channel.close_transport()
        self.state = _CLOSED
