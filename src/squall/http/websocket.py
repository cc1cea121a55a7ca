"""The WebSocket wire format (RFC 6455) with permessage-deflate (RFC 7692), without I/O.

:class:`FrameReader` turns the bytes a client sends into whole messages and enforces every rule a
server must (masking, reserved bits and opcodes, control-frame limits, fragmentation, UTF-8,
size limits); a violation raises :class:`WebSocketError` carrying the close code to answer with.
:func:`encode_frame` builds the server's (unmasked) frames. Unmasking uses the C routine of the
``websockets`` package: a Python loop over the bytes would cost more than everything else here.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import struct
import zlib
from collections.abc import Callable
from typing import Any

try:  # (re-exported for WebSocketChannel's fast path)
    from websockets.speedups import apply_mask as apply_mask
except ImportError:  # pragma: no cover - the wheel without its C extension
    from websockets.utils import apply_mask as apply_mask

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

CLOSE_OK = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_TEXT = 1007
CLOSE_MESSAGE_TOO_BIG = 1009

_BAD_UTF8 = "Invalid UTF-8 in a text message"
# Decodes (so validates) a fragmented text message fragment by fragment, so that invalid UTF-8
# fails the connection at the fragment that holds it, not at the message's end (Autobahn 6.4.*):
# codecs' incremental decoder without its Python-level wrapper (FrameReader keeps the bytes of a
# character cut between fragments itself).
_utf8_decode = codecs.utf_8_decode
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_DEFLATE_TAIL = b"\x00\x00\xff\xff"
_HEAD16 = struct.Struct("!BBH").pack
_HEAD64 = struct.Struct("!BBQ").pack
_VALID_OPS = frozenset((OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG))
# Codes a peer may send (RFC 6455 7.4.1, and the IANA registry's 1012-1014); 3000-4999 are open.
_SENDABLE = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


class WebSocketError(Exception):
    """A protocol violation; ``code`` is the close code to answer it with."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(code, message)

    def __str__(self) -> str:
        return str(self.args[1])


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def valid_key(key: str | None) -> bool:
    if not key:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        return False


def valid_close_code(code: int) -> bool:
    return code in _SENDABLE or 3000 <= code <= 4999


class Deflate:
    """The negotiated permessage-deflate parameters and the codec state for one connection.

    Messages are deflated at zlib's fastest level, as aiohttp does: on small messages (the
    common case) the higher levels cost about half again as much CPU for a sixth fewer bytes.
    One compressor and one decompressor serve the whole connection. Without server context
    takeover each message ends with a full flush (which forgets the window); the decompressor
    is kept even when the client does not take over its context (a message that refers to no
    earlier one inflates the same), and renewed after a message the client ended with a
    final block.
    """

    __slots__ = (
        "_compressor",
        "_decompressor",
        "_flush",
        "client_no_takeover",
        "server_no_takeover",
        "wbits",
    )

    def __init__(self, wbits: int, server_no_takeover: bool, client_no_takeover: bool) -> None:
        self.wbits = wbits
        self.server_no_takeover = server_no_takeover
        self.client_no_takeover = client_no_takeover
        self._compressor: Any = None
        self._decompressor: Any = None
        self._flush = zlib.Z_FULL_FLUSH if server_no_takeover else zlib.Z_SYNC_FLUSH

    def response_header(self) -> str:
        parts = ["permessage-deflate"]
        if self.server_no_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_takeover:
            parts.append("client_no_context_takeover")
        if self.wbits != 15:
            parts.append(f"server_max_window_bits={self.wbits}")
        return "; ".join(parts)

    def frame(self, opcode: int, data: bytes, wbits: int | None = None) -> bytes:
        """``data`` deflated as one final frame of ``opcode`` with RSV1 set; ``wbits``: a
        window other than the negotiated one, for this message only (its own context)."""
        comp = self._compressor
        if wbits is not None and wbits != self.wbits:
            comp = zlib.compressobj(zlib.Z_BEST_SPEED, zlib.DEFLATED, -wbits)
        elif comp is None:
            comp = self._compressor = zlib.compressobj(
                zlib.Z_BEST_SPEED, zlib.DEFLATED, -self.wbits
            )
        out = comp.compress(data)
        out = out + comp.flush(self._flush) if out else comp.flush(self._flush)
        # The flush ends with the 4-byte empty block RFC 7692 7.2.1 has the sender remove: the
        # frame is made with one copy, the head and the rest of ``out``. (A flush that found
        # nothing to do adds nothing.)
        n = len(out) - 4 if out[-4:] == _DEFLATE_TAIL else len(out)
        if n < 126:
            return bytes((0xC0 | opcode, n)) + memoryview(out)[:n]
        if n < 65536:
            return _HEAD16(0xC0 | opcode, 126, n) + memoryview(out)[:n]
        return _HEAD64(0xC0 | opcode, 127, n) + memoryview(out)[:n]

    def decompress(self, data: bytes, limit: int) -> bytes:
        """One message's payload inflated; WebSocketError past ``limit`` (0: none) or on
        invalid data."""
        dec = self._decompressor
        if dec is None:
            dec = self._decompressor = zlib.decompressobj(-15)
        try:
            out: bytes = dec.decompress(data + _DEFLATE_TAIL, limit)
        except zlib.error as exc:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, f"Invalid compressed data: {exc}") from None
        if limit and dec.unconsumed_tail:
            raise WebSocketError(CLOSE_MESSAGE_TOO_BIG, f"Message size exceeds limit {limit}")
        if dec.eof:  # the message ended with a final block: the next one starts a new stream
            self._decompressor = None
        return out


def negotiate_deflate(header: str | None, wbits: int = 15) -> Deflate | None:
    """Accept the first permessage-deflate offer we can honour (RFC 7692 5-7), else None.

    ``wbits`` is the largest server window allowed (``compress=`` of WebSocketResponse).
    """
    if not header:
        return None
    for offer in header.split(","):
        name, *params = (p.strip() for p in offer.split(";"))
        if name.lower() != "permessage-deflate":
            continue
        server_no = client_no = False
        server_bits = wbits
        seen: set[str] = set()
        ok = True
        for param in params:
            key, _, value = param.partition("=")
            key = key.strip().lower()
            value = value.strip().strip('"')
            if key in seen:
                ok = False
                break
            seen.add(key)
            if key == "server_no_context_takeover" and not value:
                server_no = True
            elif key == "client_no_context_takeover" and not value:
                client_no = True
            elif key == "server_max_window_bits" and value.isdigit() and 8 <= int(value) <= 15:
                # zlib cannot make an 8-bit raw deflate window: decline such an offer.
                if int(value) == 8:
                    ok = False
                    break
                server_bits = min(server_bits, int(value))
            elif key == "client_max_window_bits" and (
                not value or (value.isdigit() and 8 <= int(value) <= 15)
            ):
                pass  # we inflate with the largest window, which reads any smaller one
            else:
                ok = False
                break
        if ok:
            return Deflate(server_bits, server_no, client_no)
    return None


def encode_frame(opcode: int, payload: bytes, rsv1: bool = False) -> bytes:
    """One final, unmasked frame (the server never masks, RFC 6455 5.1)."""
    b0 = 0x80 | opcode | (0x40 if rsv1 else 0)
    n = len(payload)
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 65536:
        return bytes((b0, 126)) + n.to_bytes(2, "big") + payload
    return bytes((b0, 127)) + n.to_bytes(8, "big") + payload


def encode_close(code: int, reason: bytes = b"") -> bytes:
    """A close frame; a reason over the 123 bytes a control frame leaves is cut (on a character)."""
    if not code:
        return encode_frame(OP_CLOSE, b"")
    if len(reason) > 123:
        reason = reason[:123].decode("utf-8", "ignore").encode()
    return encode_frame(OP_CLOSE, code.to_bytes(2, "big") + reason)


class FrameReader:
    """Client bytes in, whole messages out through ``deliver(opcode, data, extra)``.

    TEXT data arrives as ``str`` (``bytes`` with ``decode_text=False``), BINARY, PING and PONG as
    ``bytes``, CLOSE as ``(code, reason)`` in ``data``/``extra``. Control frames are delivered as
    soon as they arrive, also between the fragments of a message.
    """

    __slots__ = (
        "_decode_text",
        "_deflate",
        "_deliver",
        "_frag_compressed",
        "_frag_op",
        "_frag_size",
        "_fragments",
        "_have",
        "_max_size",
        "_need",
        "_parts",
        "_stream_at",
        "_stream_fin",
        "_stream_left",
        "_stream_mask",
        "_utf8",
        "idle",
    )

    def __init__(
        self,
        deliver: Callable[[int, Any, Any], None],
        max_size: int,
        deflate: Deflate | None = None,
        decode_text: bool = True,
    ) -> None:
        self._deliver = deliver
        self._max_size = max_size  # 0: unlimited
        self._deflate = deflate
        self._decode_text = decode_text
        self._parts: list[bytes] = []  # bytes of an incomplete frame
        self._have = 0
        self._need = 0  # bytes needed before the next attempt to parse
        self._frag_op = 0  # opcode of the fragmented message in progress
        self._frag_compressed = False
        # The fragments so far: bytes, or for an uncompressed text message decoded str pieces
        # (unless decode_text is off), checked one by one by ``_utf8``.
        self._fragments: list[Any] = []
        self._frag_size = 0
        # A text message's UTF-8 bytes not decoded yet (a character cut by the fragment's end);
        # None: no uncompressed text message in progress.
        self._utf8: bytes | None = None
        # A text frame longer than a read is taken in as it arrives, each read's part of its
        # payload a fragment of its own (checked, decoded once): invalid UTF-8 fails the
        # connection at the read that brings it (Autobahn 6.4.3-4). Its payload bytes still
        # to come (0: no such frame), those taken so far, its FIN bit and its mask.
        self._stream_left = 0
        self._stream_at = 0
        self._stream_fin = False
        self._stream_mask = b""
        # No partial frame buffered, no fragmented message begun: the next byte starts a frame
        # of a new message (WebSocketChannel's fast path reads it).
        self.idle = True

    def feed(self, data: bytes) -> None:
        """Parse ``data``; raises WebSocketError on a violation (the reader is then unusable)."""
        if self.idle:
            # The common case first: exactly one whole, final data frame of up to 64 KiB,
            # plain or (RSV1, negotiated) compressed.
            size = len(data)
            length = data[1] - 0x80 if size > 5 else -1  # masked: 0x80 | length
            head = 6
            if length >= 126:
                if length == 126 and size > 8:
                    length = (data[2] << 8) | data[3]
                    head = 8
                else:
                    length = -1
            max_size = self._max_size
            b0 = data[0]
            if (
                size == length + head
                and length >= 0
                and (length <= max_size or not max_size)
                and (b0 == 0x81 or b0 == 0x82 or ((b0 == 0xC1 or b0 == 0xC2) and self._deflate))
            ):
                payload = apply_mask(data[head:], data[head - 4 : head]) if length else b""
                if b0 & 0x40:
                    assert self._deflate is not None
                    payload = self._deflate.decompress(payload, max_size)
                if b0 & 1:
                    try:
                        text = payload.decode("utf-8")
                    except UnicodeDecodeError:
                        raise WebSocketError(CLOSE_INVALID_TEXT, _BAD_UTF8) from None
                    self._deliver(OP_TEXT, text if self._decode_text else payload, None)
                else:
                    self._deliver(OP_BINARY, payload, None)
                return
        if self._stream_left:
            left = self._stream_left
            if len(data) <= left:
                self._stream(data)
                return
            self._stream(data[:left])
            data = data[left:]
        elif self._parts:
            self._parts.append(data)
            self._have += len(data)
            if self._have < self._need:
                return
            data = b"".join(self._parts)
            self._parts = []
            self.idle = not self._frag_op
        end = len(data)
        pos = 0
        max_size = self._max_size
        while pos < end:
            avail = end - pos
            if avail < 2:
                self._stash(data, pos, 2)
                return
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            head = 6
            if length >= 126:
                if length == 126:
                    head = 8
                    if avail < 4:
                        self._stash(data, pos, head)
                        return
                    length = int.from_bytes(data[pos + 2 : pos + 4], "big")
                else:
                    head = 14
                    if avail < 10:
                        self._stash(data, pos, head)
                        return
                    length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                    if length >> 63:
                        raise WebSocketError(CLOSE_PROTOCOL_ERROR, "Invalid frame length")
            if not b1 & 0x80:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "Client frames must be masked")
            if b0 & 0x30 or b0 & 0x0F not in _VALID_OPS:
                self._bad_header(b0)
            if b0 & 0x08:  # control frame
                if length > 125:
                    raise WebSocketError(CLOSE_PROTOCOL_ERROR, "Control frame payload over 125")
                if not b0 & 0x80:
                    raise WebSocketError(CLOSE_PROTOCOL_ERROR, "Fragmented control frame")
            elif max_size and length + self._frag_size > max_size:
                raise WebSocketError(
                    CLOSE_MESSAGE_TOO_BIG, f"Message size exceeds limit {max_size}"
                )
            total = head + length
            if avail < total:
                if avail < head:  # (parsed again once the mask is in: it may be streamed)
                    self._stash(data, pos, head)
                    return
                op = b0 & 0x0F
                if (op == OP_TEXT and not self._frag_op and not b0 & 0x40) or (
                    op == OP_CONTINUATION and self._utf8 is not None
                ):
                    self._stream_start(b0, length, data[pos + head - 4 : pos + head])
                    self._stream(data[pos + head :])
                else:
                    self._stash(data, pos, total)
                return
            if length:
                payload = apply_mask(
                    data[pos + head : pos + total], data[pos + head - 4 : pos + head]
                )
            else:
                payload = b""
            pos += total
            self._frame(b0, payload)
            if b0 == 0x88:  # a close frame ends the stream: what follows it is never read
                return  # (RFC 6455 5.5.1; the channel drops this reader)

    def _stash(self, data: bytes, pos: int, need: int) -> None:
        rest = data[pos:] if pos else data
        self._parts = [rest]
        self._have = len(rest)
        self._need = need
        self.idle = False

    def _stream_start(self, b0: int, length: int, mask: bytes) -> None:
        """A text frame (first or continuation) longer than what has arrived: see __init__."""
        if b0 & 0x0F == OP_TEXT:  # a new message (the header checks passed)
            self._frag_op = OP_TEXT
            self._frag_compressed = False
            self._fragments = []
            self._frag_size = 0
            self._utf8 = b""
        self._frag_size += length  # (checked against max_size with the header)
        self._stream_left = length
        self._stream_at = 0
        self._stream_fin = bool(b0 & 0x80)
        self._stream_mask = mask
        self.idle = False

    def _stream(self, chunk: bytes) -> None:
        """The next payload bytes of the frame _stream_start() began (no more than it lacks)."""
        at = self._stream_at & 3
        mask = self._stream_mask
        self._fragments.append(
            self._check(apply_mask(chunk, mask[at:] + mask[:at] if at else mask), False)
        )
        self._stream_at += len(chunk)
        self._stream_left -= len(chunk)
        if self._stream_left or not self._stream_fin:
            return  # more of the frame to come, or the message goes on in continuation frames
        self._check(b"", True)  # nothing may be left of a cut character
        fragments = self._fragments
        self._frag_op = 0
        self._fragments = []
        self._frag_size = 0
        self._utf8 = None
        self.idle = True
        if self._decode_text:
            self._deliver(OP_TEXT, "".join(fragments), None)
        else:
            self._deliver(OP_TEXT, b"".join(fragments), None)

    def _bad_header(self, b0: int) -> None:
        if b0 & 0x0F not in _VALID_OPS:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, f"Reserved opcode {b0 & 0x0F}")
        raise WebSocketError(CLOSE_PROTOCOL_ERROR, "Reserved bits set")

    def _frame(self, b0: int, payload: bytes) -> None:
        op = b0 & 0x0F
        if op >= OP_CLOSE:
            if b0 & 0x40:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "RSV1 set on a control frame")
            self._control(op, payload)
            return
        if op:  # first frame of a message
            if self._frag_op:
                raise WebSocketError(
                    CLOSE_PROTOCOL_ERROR, "New data frame inside a fragmented message"
                )
            compressed = bool(b0 & 0x40)
            if compressed and self._deflate is None:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "RSV1 set without permessage-deflate")
            if not b0 & 0x80:
                self._frag_op = op
                self._frag_compressed = compressed
                self._frag_size = len(payload)
                self.idle = False
                if op == OP_TEXT and not compressed:
                    self._utf8 = b""
                    self._fragments = [self._check(payload, False)]
                else:
                    self._fragments = [payload]
                return
        else:
            if not self._frag_op:
                raise WebSocketError(
                    CLOSE_PROTOCOL_ERROR, "Continuation frame with nothing to continue"
                )
            if b0 & 0x40:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "RSV1 set on a continuation frame")
            fin = bool(b0 & 0x80)
            self._fragments.append(payload if self._utf8 is None else self._check(payload, fin))
            self._frag_size += len(payload)
            if not fin:
                return
            op = self._frag_op
            compressed = self._frag_compressed
            fragments = self._fragments
            self._frag_op = 0
            self._fragments = []
            self._frag_size = 0
            self.idle = True  # parts were joined before this frame was parsed
            if self._utf8 is not None:  # a text message, checked fragment by fragment
                self._utf8 = None
                if self._decode_text:
                    self._deliver(OP_TEXT, "".join(fragments), None)
                else:
                    self._deliver(OP_TEXT, b"".join(fragments), None)
                return
            payload = b"".join(fragments)
        if compressed:
            assert self._deflate is not None
            payload = self._deflate.decompress(payload, self._max_size)
        if op == OP_TEXT:
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise WebSocketError(
                    CLOSE_INVALID_TEXT, "Invalid UTF-8 in a text message"
                ) from None
            self._deliver(OP_TEXT, text if self._decode_text else payload, None)
        else:
            self._deliver(OP_BINARY, payload, None)

    def _check(self, payload: bytes, final: bool) -> Any:
        """One fragment of an uncompressed text message through the UTF-8 check: its text, or
        ``payload`` itself with decode_text off; WebSocketError (1007) as soon as it is invalid."""
        data = payload
        if self._utf8:
            data = self._utf8 + payload
        try:
            text, used = _utf8_decode(data, "strict", final)
        except UnicodeDecodeError:
            raise WebSocketError(CLOSE_INVALID_TEXT, _BAD_UTF8) from None
        self._utf8 = data[used:] if used < len(data) else b""
        return text if self._decode_text else payload

    def _control(self, op: int, payload: bytes) -> None:
        if op != OP_CLOSE:
            self._deliver(op, payload, "")
            return
        if not payload:
            self._deliver(OP_CLOSE, 0, "")
            return
        if len(payload) == 1:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "Invalid close frame")
        code = int.from_bytes(payload[:2], "big")
        if not valid_close_code(code):
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, f"Invalid close code {code}")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise WebSocketError(CLOSE_INVALID_TEXT, "Invalid UTF-8 in a close reason") from None
        self._deliver(OP_CLOSE, code, reason)
