"""web.WebSocketResponse: aiohttp's WebSocket API over squall's WebSocketChannel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from ..http.exchange import encode_fields
from ..http.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Deflate,
    accept_key,
    negotiate_deflate,
    valid_key,
)
from ..http.ws_channel import EOF, ERROR, MessageIterator, WebSocketChannel
from .exceptions import HTTPBadRequest, HTTPException, HTTPUpgradeRequired
from .jsondumps import dumps as fast_dumps
from .response import StreamResponse

if TYPE_CHECKING:
    from ..http.connection import Connection
    from .request import BaseRequest

__all__ = (
    "WSCloseCode",
    "WSMessage",
    "WSMessageTypeError",
    "WSMsgType",
    "WebSocketReady",
    "WebSocketResponse",
)

THRESHOLD_CONNLOST_ACCESS = 5  # receive() calls after closing before it raises, as aiohttp

# Our own codes in the channel's queue (it keeps -1 and -2).
_CLOSING = -3  # close() was called while another task waited in receive()
_HEARTBEAT_LOST = -4  # no pong came back in time


class WSMsgType(IntEnum):
    """Message types; the first six are RFC 6455 opcodes, the rest aiohttp's own."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    PING = 0x9
    PONG = 0xA
    CLOSE = 0x8
    CLOSING = 0x100
    CLOSED = 0x101
    ERROR = 0x102

    text = TEXT
    binary = BINARY
    ping = PING
    pong = PONG
    close = CLOSE
    closing = CLOSING
    closed = CLOSED
    error = ERROR


class WSCloseCode(IntEnum):
    """Close codes (RFC 6455 7.4.1 and the IANA registry)."""

    OK = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    ABNORMAL_CLOSURE = 1006
    INVALID_TEXT = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014


class WSMessage(NamedTuple):
    """What receive() returns: ``type``, ``data`` and ``extra`` (the close reason)."""

    type: WSMsgType
    data: Any
    extra: str | None

    def json(self, *, loads: Callable[[Any], Any] = json.loads) -> Any:
        return loads(self.data)


class WSMessageTypeError(TypeError):
    """receive_str/bytes/json got a message of another type."""


class WebSocketReady(NamedTuple):
    """What can_prepare() answers: true if the request is a WebSocket handshake we accept."""

    ok: bool
    protocol: str | None

    def __bool__(self) -> bool:
        return self.ok


WS_CLOSED_MESSAGE = WSMessage(WSMsgType.CLOSED, None, None)
WS_CLOSING_MESSAGE = WSMessage(WSMsgType.CLOSING, None, None)
_TYPES = {int(t): t for t in WSMsgType}
_new = tuple.__new__


class WebSocketResponse(StreamResponse):
    """The server side of a WebSocket, as aiohttp's: ``await ws.prepare(request)``, then
    ``async for msg in ws``, ``send_str``/``send_bytes``/``send_json``, ``close()``."""

    _channel: WebSocketChannel | None = None
    _ws_protocol: str | None = None
    _close_code: int | None = None
    _exception: BaseException | None = None
    _conn: Connection | None = None  # the connection, once switched to WebSocket
    _conn_lost = 0
    _hb_handle: asyncio.TimerHandle | None = None

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        receive_timeout: float | None = None,
        autoclose: bool = True,
        autoping: bool = True,
        heartbeat: float | None = None,
        protocols: Iterable[str] = (),
        compress: bool | int = True,
        max_msg_size: int = 4 * 1024 * 1024,
        writer_limit: int = 65536,
        decode_text: bool = True,
    ) -> None:
        super().__init__(status=101)
        self._protocols = tuple(protocols)
        self._timeout = timeout
        self._receive_timeout = receive_timeout
        self._autoclose = autoclose
        self._autoping = autoping
        self._heartbeat = heartbeat
        self._compress: bool | int = compress
        self._max_msg_size = max_msg_size
        self._writer_limit = writer_limit  # accepted for aiohttp; the transport's marks rule
        self._decode_text = decode_text
        # Read on every message: set here, as instance attributes are found faster than
        # class defaults.
        self._closed = False
        self._closing = False
        self._close_wait: asyncio.Future[None] | None = None

    # -- handshake ------------------------------------------------------------------------

    def _handshake(self, request: BaseRequest) -> tuple[dict[str, str], str | None, Deflate | None]:
        headers = request.headers
        upgrade = headers.get("Upgrade", "")
        if upgrade.lower().strip() != "websocket":
            raise HTTPBadRequest(
                text=f'No WebSocket UPGRADE hdr: {upgrade or None}\n Can "Upgrade" only to '
                '"WebSocket".'
            )
        if not request._raw.upgrade:
            raise HTTPBadRequest(text=f"No CONNECTION upgrade hdr: {headers.get('Connection')}")
        protocol = None
        offered = headers.get("Sec-WebSocket-Protocol")
        if offered is not None:
            for proto in (p.strip() for p in offered.split(",")):
                if proto in self._protocols:
                    protocol = proto
                    break
        version = headers.get("Sec-WebSocket-Version", "")
        if version != "13":  # RFC 6455 4.2.2: 426 and the versions we speak
            raise HTTPUpgradeRequired(
                headers={"Sec-WebSocket-Version": "13"}, text=f"Unsupported version: {version}"
            )
        key = headers.get("Sec-WebSocket-Key")
        if not valid_key(key):
            raise HTTPBadRequest(text=f"Handshake error: {key!r}")
        assert key is not None
        answer = {
            "Upgrade": "websocket",
            "Connection": "upgrade",
            "Sec-WebSocket-Accept": accept_key(key),
        }
        deflate = None
        if self._compress:
            wbits = 15 if self._compress is True else int(self._compress)
            deflate = negotiate_deflate(headers.get("Sec-WebSocket-Extensions"), wbits)
            if deflate is not None:
                answer["Sec-WebSocket-Extensions"] = deflate.response_header()
        if protocol:
            answer["Sec-WebSocket-Protocol"] = protocol
        return answer, protocol, deflate

    def can_prepare(self, request: BaseRequest) -> WebSocketReady:
        """Whether ``request`` is a handshake prepare() would accept, and the subprotocol."""
        if self._channel is not None:
            raise RuntimeError("Already started")
        try:
            _, protocol, _ = self._handshake(request)
        except HTTPException:
            return WebSocketReady(False, None)
        return WebSocketReady(True, protocol)

    async def prepare(self, request: BaseRequest) -> Any:
        """Answer the handshake (101) and switch the connection to WebSocket frames."""
        if self._req is not None:
            return None
        answer, protocol, deflate = self._handshake(request)
        self.headers.update(answer)
        self.force_close()
        await request._prepare_hook(self)
        conn = request._conn
        if conn.transport is None:
            raise ConnectionResetError("Connection lost")
        exchange = request._exchange
        fields = encode_fields([*self.headers.items(), *self._cookie_fields()])
        fields += self._removed_defaults()
        self._status = 101  # whatever set_status() said before: the handshake's answer is 101
        exchange.start(101, self._reason, None, fields, -1)
        exchange.end()  # the head: from here on, the connection speaks WebSocket
        self._req = request
        self._conn = conn
        self._exchange = exchange
        self._ws_protocol = protocol
        self._compress = deflate.wbits if deflate is not None else 0
        channel = self._channel = WebSocketChannel(
            conn,
            max_size=self._max_msg_size,
            deflate=deflate,
            autoping=self._autoping,
            decode_text=self._decode_text,
            message=(WSMessage, WSMsgType.TEXT, WSMsgType.BINARY),
            rest=self._next_queued,
            rest_cancelled=self._receive_over,
        )
        conn.upgrade(channel)
        # async for may take the channel's messages as they are handed over (open, no receive
        # timeout; a subclass's own receive() is what its async for goes through, as in aiohttp)
        channel.direct = (
            not self._receive_timeout and type(self).receive is WebSocketResponse.receive
        )
        if self._heartbeat is not None:
            self._hb_handle = conn.loop.call_later(self._heartbeat, self._heartbeat_due)
        if conn.write_paused:
            await conn.drain()
        return None

    # -- state ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_code(self) -> int | None:
        return self._close_code

    @property
    def ws_protocol(self) -> str | None:
        return self._ws_protocol

    @property
    def compress(self) -> int | bool:
        return self._compress

    def exception(self) -> BaseException | None:
        return self._exception

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        conn = self._conn
        transport = conn.transport if conn is not None else None
        return default if transport is None else transport.get_extra_info(name, default)

    # -- sending --------------------------------------------------------------------------

    def _open_channel(self) -> WebSocketChannel:
        channel = self._channel
        if channel is None:
            raise RuntimeError("Call .prepare() first")
        return channel

    async def send_frame(self, message: bytes, opcode: int, compress: int | None = None) -> None:
        channel = self._open_channel()
        if opcode == OP_CLOSE:
            code = int.from_bytes(message[:2], "big") if len(message) >= 2 else 0
            channel.send_close(code, bytes(message[2:]))
        else:
            channel.send(opcode, bytes(message), compress)
        if channel.write_paused:
            await channel.drain()

    async def send_str(self, data: str, compress: int | None = None) -> None:
        channel = self._channel
        if channel is None:
            raise RuntimeError("Call .prepare() first")
        if not isinstance(data, str):
            raise TypeError(f"data argument must be str ({type(data)!r})")
        if channel.send(OP_TEXT, data.encode(), compress):  # (True: writing is paused)
            await channel.drain()

    async def send_bytes(self, data: bytes, compress: int | None = None) -> None:
        channel = self._channel
        if channel is None:
            raise RuntimeError("Call .prepare() first")
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"data argument must be byte-ish ({type(data)!r})")
            data = bytes(data)
        if channel.send(OP_BINARY, data, compress):  # (True: writing is paused)
            await channel.drain()

    async def send_json(
        self,
        data: Any,
        compress: int | None = None,
        *,
        dumps: Callable[[Any], str] = json.dumps,
    ) -> None:
        await self.send_str(
            fast_dumps(data) if dumps is json.dumps else dumps(data), compress=compress
        )

    async def send_json_bytes(
        self, data: Any, compress: int | None = None, *, dumps: Callable[[Any], bytes]
    ) -> None:
        await self.send_bytes(dumps(data), compress=compress)

    async def ping(self, message: bytes | str = b"") -> None:
        await self.send_frame(_as_bytes(message), OP_PING)

    async def pong(self, message: bytes | str = b"") -> None:
        await self.send_frame(_as_bytes(message), OP_PONG)

    async def write(self, data: Any) -> None:
        raise RuntimeError("Cannot call .write() for websocket")

    async def write_eof(self) -> None:  # type: ignore[override]
        if self._eof_sent:
            return
        if self._req is None:
            raise RuntimeError("Response has not been started")
        await self.close()
        self._eof_sent = True

    # -- closing --------------------------------------------------------------------------

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes | str = b"", drain: bool = True
    ) -> bool:
        """Send a close frame, wait (``timeout``) for the client's, then end the connection.

        False if the WebSocket was already closed.
        """
        channel = self._open_channel()
        if self._closed:
            return False
        self._set_closed()
        try:
            channel.send_close(code, _as_bytes(message))
            if drain and channel.write_paused:
                await channel.drain()
        except (TimeoutError, asyncio.CancelledError):
            self._abort(WSCloseCode.ABNORMAL_CLOSURE)
            raise
        except Exception as exc:
            self._exception = exc
            self._abort(WSCloseCode.ABNORMAL_CLOSURE)
            return True
        if channel.waiting:  # another task sits in receive(): let it return CLOSING first
            conn = self._conn
            assert conn is not None
            self._close_wait = conn.loop.create_future()
            channel.wake(_CLOSING)
            await self._close_wait
        if self._closing:  # the client's close frame is already in
            channel.close_transport()
            return True
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    op, data, _ = await channel.receive()
                    if op == OP_CLOSE:
                        self._close_code = data
                        channel.close_transport()
                        return True
                    if op < 0:
                        self._abort(WSCloseCode.ABNORMAL_CLOSURE)
                        return True
        except asyncio.CancelledError:
            self._abort(WSCloseCode.ABNORMAL_CLOSURE)
            raise
        except Exception as exc:
            self._exception = exc
            self._abort(WSCloseCode.ABNORMAL_CLOSURE)
            return True

    def _set_closed(self) -> None:
        self._closed = True
        self._no_direct()
        self._stop_heartbeat()

    def _set_closing(self, code: int) -> None:
        self._closing = True
        self._no_direct()
        self._close_code = code
        self._stop_heartbeat()

    def _no_direct(self) -> None:
        """Closing or closed: async for goes through receive() (CLOSING, CLOSED...)."""
        if self._channel is not None:
            self._channel.direct = False

    def _abort(self, code: int) -> None:
        self._close_code = code
        if self._channel is not None:
            self._channel.close_transport()

    # -- heartbeat ------------------------------------------------------------------------

    def _stop_heartbeat(self) -> None:
        if self._hb_handle is not None:
            self._hb_handle.cancel()
            self._hb_handle = None

    def _heartbeat_due(self, awaiting_pong: bool = False) -> None:
        """Every ``heartbeat`` seconds: ping a silent client; half that later, give up on it."""
        channel = self._channel
        conn = self._conn
        assert channel is not None and conn is not None and self._heartbeat is not None
        self._hb_handle = None
        if self._closed or self._closing:
            return
        if channel.seen:  # the client spoke (or answered) this period: all is well
            channel.seen = False
            self._hb_handle = conn.loop.call_later(self._heartbeat, self._heartbeat_due)
            return
        if not awaiting_pong:
            try:
                channel.send(OP_PING, b"")
            except (ConnectionResetError, RuntimeError):  # gone, or half-closed (write_eof)
                return
            self._hb_handle = conn.loop.call_later(self._heartbeat / 2, self._heartbeat_due, True)
            return
        self._set_closed()
        self._exception = TimeoutError(f"No PONG received after {self._heartbeat / 2} seconds")
        self._abort(WSCloseCode.ABNORMAL_CLOSURE)
        if channel.waiting:
            channel.wake(_HEARTBEAT_LOST)

    # -- receiving ------------------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> WSMessage:
        """The next message; CLOSE/CLOSING/CLOSED/ERROR once the WebSocket ends."""
        channel = self._channel
        if channel is None:
            raise RuntimeError("Call .prepare() first")
        if channel.waiter is not None:
            raise RuntimeError("Concurrent call to receive() is not allowed")
        if self._closed:
            self._conn_lost += 1
            if self._conn_lost >= THRESHOLD_CONNLOST_ACCESS:
                raise RuntimeError("WebSocket connection is closed.")
            return WS_CLOSED_MESSAGE
        if self._closing:
            return WS_CLOSING_MESSAGE
        receive_timeout = timeout or self._receive_timeout
        try:
            if receive_timeout:
                async with asyncio.timeout(receive_timeout):
                    op, data, extra = await channel.receive()
            else:
                op, data, extra = await channel.receive()
        finally:
            close_wait = self._close_wait
            if close_wait is not None and not close_wait.done():
                close_wait.set_result(None)
        if 0 < op <= OP_BINARY:  # TEXT (1) or BINARY (2)
            return _new(WSMessage, (_TYPES[op], data, ""))  # ("": aiohttp's extra)
        return await self._control(op, data, extra)

    async def _control(self, op: int, data: Any, extra: Any) -> WSMessage:
        """What receive() returns for everything but a data message."""
        if op == OP_CLOSE:
            self._set_closing(data)
            if not self._closed and self._autoclose:
                await self.close(code=data or WSCloseCode.OK, drain=False)
            return WSMessage(WSMsgType.CLOSE, data, extra)
        if op in (OP_PING, OP_PONG):
            return WSMessage(_TYPES[op], data, extra)
        if op == _CLOSING:
            self._set_closing(WSCloseCode.OK)
            return WS_CLOSING_MESSAGE
        if op == _HEARTBEAT_LOST:
            return WSMessage(WSMsgType.ERROR, self._exception, None)
        if op == ERROR:
            self._close_code = data.code
            await self.close(code=data.code)
            return WSMessage(WSMsgType.ERROR, data, None)
        assert op == EOF
        self._close_code = WSCloseCode.OK
        await self.close()
        return WS_CLOSED_MESSAGE

    async def receive_str(self, *, timeout: float | None = None) -> str:
        msg = await self.receive(timeout)
        if msg.type is not WSMsgType.TEXT:
            raise WSMessageTypeError(f"Received message {msg.type}:{msg.data!r} is not TEXT")
        return msg.data  # type: ignore[no-any-return]

    async def receive_bytes(self, *, timeout: float | None = None) -> bytes:
        msg = await self.receive(timeout)
        if msg.type is not WSMsgType.BINARY:
            raise WSMessageTypeError(f"Received message {msg.type}:{msg.data!r} is not BINARY")
        return msg.data  # type: ignore[no-any-return]

    async def receive_json(
        self, *, loads: Callable[[Any], Any] = json.loads, timeout: float | None = None
    ) -> Any:
        return loads(await self.receive_str(timeout=timeout))

    def __aiter__(self) -> AsyncIterator[WSMessage]:
        channel = self._channel
        if channel is None or type(self).__anext__ is not WebSocketResponse.__anext__:
            return self
        # A compiled __anext__ per message: the channel's next_message() while it is direct
        # (see prepare()), else this class's own way.
        return MessageIterator(channel, self._next_received)

    def __anext__(self) -> Awaitable[WSMessage]:
        channel = self._channel
        if channel is not None and channel.direct:  # a message handed over by data_received()
            return channel.next_message()  # is returned as it is (a WSMessage, see prepare())
        return self._next_received()

    def _receive_over(self) -> None:
        """A receive is over: a close() waiting for it to see CLOSING may go on."""
        close_wait = self._close_wait
        if close_wait is not None and not close_wait.done():
            close_wait.set_result(None)

    async def _next_queued(self) -> WSMessage:
        """__anext__ for anything but a message handed over (queued, control, the end)."""
        channel = self._channel
        assert channel is not None
        try:
            op, data, extra = await channel.receive()
        finally:
            self._receive_over()
        if 0 < op <= OP_BINARY:
            return _new(WSMessage, (_TYPES[op], data, ""))  # ("": aiohttp's extra)
        msg = await self._control(op, data, extra)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            raise StopAsyncIteration
        return msg

    async def _next_received(self) -> WSMessage:
        msg = await self.receive()
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            raise StopAsyncIteration
        return msg


def _as_bytes(message: bytes | str) -> bytes:
    return message.encode() if isinstance(message, str) else bytes(message)


def use_msg_type(msg_type: type[IntEnum]) -> None:
    """Make ``msg_type`` the ``WSMsgType`` of the messages ``receive()`` returns.

    For :func:`squall.install_as_aiohttp`: there ``aiohttp.web.WSMsgType`` must be
    ``aiohttp.WSMsgType`` (as in aiohttp), so that ``msg.type is aiohttp.WSMsgType.TEXT`` holds.
    ``msg_type`` has this module's members and values. Process-wide, done before any WebSocket.
    """
    global WSMsgType, WS_CLOSED_MESSAGE, WS_CLOSING_MESSAGE, _TYPES
    assert {m.name: m.value for m in msg_type} == {m.name: m.value for m in WSMsgType}
    WSMsgType = msg_type  # type: ignore[misc,assignment]
    WS_CLOSED_MESSAGE = WSMessage(WSMsgType.CLOSED, None, None)
    WS_CLOSING_MESSAGE = WSMessage(WSMsgType.CLOSING, None, None)
    _TYPES = {int(t): t for t in WSMsgType}
