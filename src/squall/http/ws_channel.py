"""A WebSocket session on an upgraded connection: frames in, messages queued, frames out.

After the 101 answer, :class:`Connection` hands every byte it reads to the channel
(``data_received``), which parses frames with :class:`FrameReader`, answers pings, and queues
whole messages for ``receive()``. Reading pauses while more than ``limit`` bytes of messages wait
unread, so a slow consumer never makes the server buffer without bound. The web layer
(WebSocketResponse) and the ASGI layer build their APIs on top of it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from .eager import Park
from .websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Deflate,
    FrameReader,
    WebSocketError,
    apply_mask,
    encode_close,
    encode_frame,
)

if TYPE_CHECKING:
    from .connection import Connection

# What receive() reports besides messages (in place of the opcode).
EOF = -1  # the client closed its side without a close frame, or the connection was lost
ERROR = -2  # a protocol violation (data: the WebSocketError)
# Negative codes below -2 are free for the layers above (see wake()).

# Pre-built two-byte heads of small final frames, by opcode and length.
SMALL_HEADS: Final = [[bytes((0x80 | op, n)) for n in range(126)] for op in range(16)]

_new: Final = tuple.__new__
_COMPRESS_MIN = 128
CLOSE_GOING_AWAY = 1001  # smaller messages go uncompressed (RFC 7692 allows it per message)


def _message(cls: type[tuple[Any, ...]], kind: Any, data: Any) -> tuple[Any, ...]:
    """``(kind, data, "")`` as a ``cls`` (the web layer's WSMessage, whose ``extra`` is "" for a
    data message as aiohttp's; a plain tuple made as a literal, which costs less than
    ``tuple.__new__``)."""
    if cls is tuple:
        return (kind, data, "")
    return _new(cls, (kind, data, ""))


class WebSocketChannel:
    """The I/O half of one WebSocket connection (see the module docstring).

    Besides its methods, what the application layers may read and use (ASGI's receive reads
    them instead of calling, one coroutine less per message): ``conn``, ``loop``, ``handed`` (the
    message
    data_received handed straight to a waiting receive(), to be taken by setting it to None),
    ``direct`` (set by the layer above: :class:`MessageIterator` may take
    :meth:`next_message`), ``queue`` (the messages waiting), ``waiter`` (the future a receive
    waits on while nothing is
    there: ``await channel.wait()`` sets it; clear it after the wait, as :meth:`receive` does).

    The waiting receive is woken without a new future per message: it parks on a pending future
    (:class:`~.eager.Park`), and a message handed over runs the handler on in place
    (``Connection.run_parked()``) while the worker task goes on waiting on that future; where
    that cannot be (the receive runs in another task, or data_received is called from one), the
    future is completed as usual.
    """

    __slots__ = (
        "_decode_text",
        "_deflate",
        "_hanging_up",
        "_limit",
        "_message",
        "_park",
        "_paused",
        "_peer_eof",
        "_queued",
        "_reader",
        "_rest",
        "_rest_cancelled",
        "_small",
        "autoping",
        "close_received",
        "close_sent",
        "conn",
        "direct",
        "ended",
        "handed",
        "loop",
        "queue",
        "seen",
        "waiter",
    )

    def __init__(
        self,
        conn: Connection,
        *,
        max_size: int,
        deflate: Deflate | None = None,
        autoping: bool = True,
        decode_text: bool = True,
        limit: int = 1 << 17,
        message: tuple[type[tuple[Any, ...]], Any, Any] = (tuple, OP_TEXT, OP_BINARY),
        rest: Callable[[], Awaitable[Any]] | None = None,
        rest_cancelled: Callable[[], None] | None = None,
    ) -> None:
        self.conn = conn
        self.loop = conn.loop
        self._reader: FrameReader | None = FrameReader(
            self._deliver, max_size, deflate, decode_text
        )
        self._deflate = deflate
        self._decode_text = decode_text
        # Whole frames up to this length take data_received()'s fast path.
        self._small = 6 + (min(max_size, 125) if max_size else 125)
        # The next item, handed to the waiting receive() ahead of the queue (see receive()),
        # built as ``cls.__new__(cls, (text or binary, data, ""))`` from ``message``: the
        # web layer has its WSMessage built here, and returns it as it is.
        # (Typed as any tuple: the compiled build would rebuild a fixed-length one as a plain
        # tuple, and the web layer's WSMessage has to come out as it went in. For the same
        # reason the kinds in ``message`` are Any, not int: the web layer's are WSMsgType
        # members, which an int-typed value would turn into plain ints.)
        self.handed: tuple[Any, ...] | None = None
        self._message = message
        # What next_message() makes of anything but a message handed over, and what it calls
        # if its wait is cancelled (the web layer's; given once, not per message).
        self._rest = rest
        self._rest_cancelled = rest_cancelled
        # Whether MessageIterator may take next_message() (the layer above says: it clears it
        # once its own state needs its own receive, e.g. closing).
        self.direct = False
        self.queue: deque[tuple[int, Any, Any]] = deque()
        self._queued = 0
        self._limit = limit
        self._paused = False
        self.waiter: asyncio.Future[None] | None = None
        self._park = Park()  # what a receive awaits; its future is reused until completed
        self.autoping = autoping
        self.close_received: tuple[int, str] | None = None
        self.close_sent = False
        self.ended = False  # EOF or ERROR queued: nothing more will arrive
        self._peer_eof = False  # the client closed its side of the TCP connection
        self._hanging_up = False  # close_transport() chose the lingering close
        self.seen = False  # set on every read (for heartbeats)

    # -- fed by Connection ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.seen = True
        reader = self._reader
        if reader is None:
            return
        waiter = self.waiter
        size = len(data)
        if (  # The common case: one whole small final data frame, for a receive() waiting.
            waiter is not None
            and 5 < size <= self._small
            and data[1] == size + 0x7A  # masked (0x80), payload length size - 6
            and reader.idle
            and not waiter.done()
        ):
            b0 = data[0]
            msg: tuple[Any, ...] | None = None
            if b0 == 0x81:
                payload = apply_mask(data[6:], data[2:6])
                try:
                    text = payload.decode("utf-8")
                except UnicodeDecodeError:
                    pass  # FrameReader answers it
                else:
                    cls, kind, _ = self._message
                    msg = _message(cls, kind, text if self._decode_text else payload)
            elif b0 == 0x82:
                cls, _, kind = self._message
                msg = _message(cls, kind, apply_mask(data[6:], data[2:6]))
            if msg is not None:
                self.handed = msg
                if not self.conn.run_parked(waiter):
                    waiter.set_result(None)
                return
        try:
            reader.feed(data)
        except WebSocketError as exc:
            self._reader = None
            self.conn.pause_reading_body()  # nothing more will be read
            self._end(ERROR, exc)

    def eof_received(self) -> None:
        self._reader = None
        self._peer_eof = True
        if self._hanging_up:  # lingering for this FIN: nothing more to wait for
            transport = self.conn.transport
            if transport is not None:
                transport.close()
        self._end(EOF, None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._reader = None
        self._end(EOF, exc)

    def _deliver(self, op: int, data: Any, extra: Any) -> None:
        if op == OP_CLOSE:
            if self.close_received is None:
                self.close_received = (data, extra)
            self._reader = None  # nothing may follow a close frame (RFC 6455 5.5.1)
        else:
            if op > OP_CLOSE and self.autoping:
                if (  # no pong once a close frame went either way (RFC 6455 5.5.1)
                    op == OP_PING
                    and not self.close_sent
                    and self.close_received is None
                    and self.conn.transport is not None
                ):
                    self.conn.write(encode_frame(OP_PONG, data))
                return  # pings answered here, pongs only count as "seen"
            waiter = self.waiter
            if (  # a receive() waits for it: handed over as data_received()'s fast path does
                op <= OP_BINARY
                and waiter is not None
                and self.handed is None
                and not self.queue
                and not waiter.done()
            ):
                cls, text, binary = self._message
                self.handed = _message(cls, text if op == OP_TEXT else binary, data)
                # Run on in place, as the fast path does (the reader's state is whole here:
                # it delivers after a frame, and goes on with what follows it afterwards).
                if not self.conn.run_parked(waiter):
                    waiter.set_result(None)
                return
            self._queued += len(data)
            if self._queued > self._limit and not self._paused:
                self._paused = True
                self.conn.pause_reading_body()
        self.queue.append((op, data, extra))
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self, kind: int, data: Any) -> None:
        if self.ended:
            return
        self.ended = True
        self.queue.append((kind, data, None))
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by the application layer ----------------------------------------------------

    async def receive(self) -> tuple[int, Any, Any]:
        """The next ``(opcode, data, extra)``; RuntimeError if a receive() is already waiting.

        ``opcode`` is a frame opcode, or EOF / ERROR (then nothing follows); CLOSE carries
        ``(code, reason)`` as data and extra.
        """
        queue = self.queue
        while self.handed is None and not queue:
            if self.ended:  # what ended it was returned already: keep saying so
                return (EOF, None, None)
            if self.waiter is not None:
                raise RuntimeError("Concurrent call to receive() is not allowed")
            try:
                await self.wait()
            finally:
                self.waiter = None
        msg = self.handed
        if msg is not None:
            # Handed over by data_received(), ahead of the queue and never counted against
            # the limit. It stays there until taken, so a receive() cancelled after the
            # hand-over loses nothing.
            self.handed = None
            return msg
        msg = queue.popleft()
        op = msg[0]
        if op >= 0 and op != OP_CLOSE:
            self._queued -= len(msg[1])
            if self._paused and self._queued <= self._limit >> 1:
                self._paused = False
                self.conn.resume_reading_body()
        return msg

    async def next_message(self) -> Any:
        """The next message data_received() hands over, returned as it is; anything else is
        what ``await rest()`` makes of it (``rest`` and ``rest_cancelled``: see __init__).

        The web layer's ``async for`` without a coroutine of its own per message (this one is
        compiled): it waits as :meth:`receive` does.
        """
        if self.handed is None and not self.queue and not self.ended:
            if self.waiter is not None:
                raise RuntimeError("Concurrent call to receive() is not allowed")
            try:
                await self.wait()
            except BaseException:
                self.waiter = None
                if self._rest_cancelled is not None:
                    self._rest_cancelled()
                raise
            self.waiter = None
        msg = self.handed
        if msg is not None:
            self.handed = None
            return msg
        rest = self._rest
        assert rest is not None, "next_message() needs the channel made with rest="
        return await rest()

    def wait(self) -> Park:
        """What a receive awaits while nothing is there: sets ``waiter`` (see the class)."""
        park = self._park
        future = park.future
        if future is None or future.done():
            future = park.future = self.loop.create_future()
        self.waiter = future
        return park

    @property
    def waiting(self) -> bool:
        return self.waiter is not None

    def wake(self, op: int) -> None:
        """Put ``op`` (a caller's own negative code) first in line, for receive() to return."""
        handed = self.handed
        if handed is not None:  # ahead of the queue, but behind op
            self.handed = None
            self.queue.appendleft(handed)
            self._queued += len(handed[1])
        self.queue.appendleft((op, None, None))
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def send(self, op: int, payload: bytes, compress: int | bool | None = None) -> bool:
        """Write one message; raises ConnectionResetError once closing or gone.

        Returns whether the connection's writes are paused then (``write_paused``: the caller
        awaits :meth:`drain` before it sends more), which saves the caller a second call.
        """
        if self.close_sent:
            raise ConnectionResetError("Cannot write to closing transport")
        deflate = self._deflate
        conn = self.conn
        if deflate is None and len(payload) < 126:  # the common case
            conn.write(SMALL_HEADS[op][len(payload)] + payload)
            return conn.write_paused
        if (
            deflate is not None
            and compress is not False
            and compress != 0
            and op < OP_CLOSE
            and len(payload) >= _COMPRESS_MIN
        ):
            conn.write(deflate.frame(op, payload, compress if type(compress) is int else None))
        else:
            conn.write(encode_frame(op, payload))
        return conn.write_paused

    def send_close(self, code: int, reason: bytes = b"") -> None:
        if self.close_sent:
            return
        self.close_sent = True
        if self.conn.transport is not None:
            self.conn.write(encode_close(code, reason))

    @property
    def write_paused(self) -> bool:
        return self.conn.write_paused

    async def drain(self) -> None:
        await self.conn.drain()

    def going_away(self) -> None:
        """Server shutdown: send close 1001 (unless a close was sent already); the client's
        answer then ends the handler's receive loop as any close handshake does."""
        self.send_close(CLOSE_GOING_AWAY, b"Server shutdown")

    def close_transport(self) -> None:
        """End the TCP connection (after the close handshake, or on a failure).

        Once both close frames have crossed, or the client has closed its side, nobody has
        anything left to say: the socket closes as soon as what is written is sent (RFC 6455
        7.1.1: the server closes the TCP connection first). Otherwise (a protocol violation, a
        close frame the client never answered) the connection closes as HTTP's do: half-closed,
        lingering briefly so the client reads our close frame rather than a reset, and ending
        at once when the client's FIN comes (see eof_received()).
        """
        self._reader = None
        conn = self.conn
        conn.close()  # (flushes what was gathered, half-closes and lingers)
        transport = conn.transport
        if transport is None:
            return
        if self._peer_eof or (self.close_sent and self.close_received is not None):
            transport.close()
        else:
            self._hanging_up = True


class MessageIterator:
    """An ``async for`` over a channel's messages with a compiled ``__anext__``: while the
    channel is ``direct``, :meth:`WebSocketChannel.next_message`; otherwise ``slow()`` (the
    layer's own way, which may raise StopAsyncIteration). The web layer's ``__aiter__`` returns
    one, so that each message costs no Python-level ``__anext__`` call."""

    __slots__ = ("channel", "slow")

    def __init__(self, channel: WebSocketChannel, slow: Callable[[], Awaitable[Any]]) -> None:
        self.channel = channel
        self.slow = slow

    def __aiter__(self) -> MessageIterator:
        return self

    def __anext__(self) -> Awaitable[Any]:
        channel = self.channel
        if channel.direct:
            return channel.next_message()
        return self.slow()
