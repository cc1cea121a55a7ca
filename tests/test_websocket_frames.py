"""RFC 6455 rules, frame by frame, with raw bytes over a socket to squall's WebSocket endpoint."""

from __future__ import annotations

import os
import socket
import struct
import time
import zlib
from collections.abc import Iterator

import pytest

from squall import web

from .conftest import ServerThread, is_closed, serve
from .ws_apps import STATE, make_ws_app


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with serve(make_ws_app(web), shutdown_timeout=2.0) as srv:
        yield srv


def handshake(port: int, path: str = "/ws", extra: bytes = b"", tail: bytes = b"") -> socket.socket:
    """Open a WebSocket with raw bytes; ``tail`` is sent in the same packet as the head."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        b"GET %b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%b\r\n%b"
        % (path.encode(), extra, tail)
    )
    head = b""
    while b"\r\n\r\n" not in head:
        byte = sock.recv(1)  # byte by byte: frames after the head stay in the socket
        assert byte, head
        head += byte
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def masked(
    op: int, payload: bytes, fin: bool = True, rsv: int = 0, key: bytes = b"\x37\xfa\x21\x3d"
) -> bytes:
    """A client frame (masked)."""
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


def unmasked(op: int, payload: bytes) -> bytes:
    return struct.pack("!BB", 0x80 | op, len(payload)) + payload


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One server frame: (first byte, payload). Server frames are never masked."""
    b0, b1 = _recv_exactly(sock, 2)
    assert not b1 & 0x80, "server frames must not be masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", _recv_exactly(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _recv_exactly(sock, 8))[0]
    return b0, _recv_exactly(sock, n)


def expect_close(sock: socket.socket, code: int) -> None:
    """The server's next frame is a close with ``code``, and then it ends the connection."""
    b0, payload = read_frame(sock)
    assert b0 == 0x88, (b0, payload)
    assert struct.unpack("!H", payload[:2])[0] == code, payload
    assert is_closed(sock, 5)


def echo(sock: socket.socket, op: int, payload: bytes) -> tuple[int, bytes]:
    sock.sendall(masked(op, payload))
    return read_frame(sock)


# -- the happy paths -------------------------------------------------------------------------


def test_text_and_binary_echo(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        assert echo(sock, 0x1, "ok ✓".encode()) == (0x81, "ok ✓".encode())
        assert echo(sock, 0x2, b"\x00" * 200) == (0x82, b"\x00" * 200)
        assert echo(sock, 0x2, b"\x01" * 70000) == (0x82, b"\x01" * 70000)


def test_frame_dribbled_byte_by_byte(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        frame = masked(0x1, b"slowly but surely" * 10)
        for i in range(len(frame)):
            sock.send(frame[i : i + 1])
            time.sleep(0.001)
        assert read_frame(sock) == (0x81, b"slowly but surely" * 10)


def test_many_frames_in_one_packet(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        sock.sendall(b"".join(masked(0x1, b"%d" % i) for i in range(100)))
        assert [read_frame(sock)[1] for _ in range(100)] == [b"%d" % i for i in range(100)]


def test_frames_sent_with_the_handshake(server: ServerThread) -> None:
    """Bytes after the request head, in the same packet, are the first frames (not HTTP)."""
    with handshake(server.port, tail=masked(0x1, b"early") + masked(0x1, b"bird")) as sock:
        assert read_frame(sock) == (0x81, b"early")
        assert read_frame(sock) == (0x81, b"bird")


def test_fragmented_message(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        sock.sendall(masked(0x1, b"frag", fin=False) + masked(0x0, b"men", fin=False))
        sock.sendall(masked(0x0, b"ted"))
        assert read_frame(sock) == (0x81, b"fragmented")


def test_control_frames_between_fragments(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        sock.sendall(masked(0x2, b"a", fin=False) + masked(0x9, b"ping!") + masked(0x0, b"b"))
        assert read_frame(sock) == (0x8A, b"ping!")  # the pong comes first
        assert read_frame(sock) == (0x82, b"ab")


def test_utf8_split_across_fragments(server: ServerThread) -> None:
    text = "ünïcødé".encode()
    with handshake(server.port) as sock:
        sock.sendall(masked(0x1, text[:1], fin=False) + masked(0x0, text[1:]))
        assert read_frame(sock) == (0x81, text)


def test_ping_is_answered_with_its_payload(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        assert echo(sock, 0x9, b"x" * 125) == (0x8A, b"x" * 125)
        assert echo(sock, 0x9, b"") == (0x8A, b"")


def test_unsolicited_pong_is_ignored(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        sock.sendall(masked(0xA, b"hi"))
        assert echo(sock, 0x1, b"after") == (0x81, b"after")


def test_deflated_messages_from_the_client(server: ServerThread) -> None:
    ext = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    with handshake(server.port, extra=ext) as sock:
        comp = zlib.compressobj(wbits=-15)
        inflate = zlib.decompressobj(-15)  # both directions keep their context across messages
        for text in (b"first " * 50, b"second " * 50):
            data = comp.compress(text) + comp.flush(zlib.Z_SYNC_FLUSH)
            sock.sendall(masked(0x1, data[:-4], rsv=0x40))
            b0, payload = read_frame(sock)
            assert b0 == 0xC1
            assert inflate.decompress(payload + b"\x00\x00\xff\xff") == text


def test_deflated_binary_and_mixed_messages(server: ServerThread) -> None:
    """Whole compressed frames of every length form (the reader's fast path), binary and text,
    between plain ones, in one context that both sides keep."""
    ext = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
    with handshake(server.port, extra=ext) as sock:
        comp = zlib.compressobj(wbits=-15)
        inflate = zlib.decompressobj(-15)
        for op, message in (
            (0x2, os.urandom(100)),  # a compressed payload under 126 bytes
            (0x2, os.urandom(3000)),  # 16-bit length
            (0x1, b"plain text in between " * 3),  # uncompressed: RSV1 clear
            (0x1, '{"k": "v\u2713"} '.encode() * 5000),  # 64-bit length (inflates past 64 KiB)
            (0x2, b""),  # an empty compressed message
        ):
            if op == 0x1 and message.startswith(b"plain"):
                sock.sendall(masked(op, message))
            else:
                data = comp.compress(message) + comp.flush(zlib.Z_SYNC_FLUSH)
                sock.sendall(masked(op, data[:-4], rsv=0x40))
            b0, payload = read_frame(sock)
            if b0 & 0x40:
                payload = inflate.decompress(payload + b"\x00\x00\xff\xff")
            assert (b0 & 0x0F, payload) == (op, message)


def test_deflated_message_ending_with_a_final_block(server: ServerThread) -> None:
    """RFC 7692 7.2.3.3: a message may end its deflate stream with a final block (BFINAL); the
    next message then starts a new stream, and inflates as such."""
    ext = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
    with handshake(server.port, extra=ext) as sock:
        inflate = zlib.decompressobj(-15)  # (the server's answers keep their context)
        for text in (b"final block " * 20, b"a new stream " * 20, b"and another " * 20):
            comp = zlib.compressobj(wbits=-15)
            sock.sendall(masked(0x1, comp.compress(text) + comp.flush(zlib.Z_FINISH), rsv=0x40))
            b0, payload = read_frame(sock)
            assert b0 == 0xC1
            assert inflate.decompress(payload + b"\x00\x00\xff\xff") == text


@pytest.mark.parametrize("b0", [0xC3, 0xC0, 0xE1])
def test_compressed_frame_with_a_bad_head_fails(server: ServerThread, b0: int) -> None:
    """RSV1 with a reserved opcode, on a continuation frame or with RSV2: 1002, also when the
    frame arrives whole (the reader's fast path)."""
    ext = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
    with handshake(server.port, extra=ext) as sock:
        data = zlib.compress(b"x" * 50, wbits=-15)
        sock.sendall(masked(b0 & 0x0F, data, fin=bool(b0 & 0x80), rsv=b0 & 0x70))
        expect_close(sock, 1002)


def test_rsv1_without_deflate_fails(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        sock.sendall(masked(0x1, zlib.compress(b"x" * 300, wbits=-15), rsv=0x40))
        expect_close(sock, 1002)


# -- closing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1011, 3000, 4999])
def test_close_is_echoed(server: ServerThread, code: int) -> None:
    with handshake(server.port) as sock:
        sock.sendall(masked(0x8, struct.pack("!H", code) + b"bye"))
        expect_close(sock, code)


def test_empty_close_is_answered_1000(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        sock.sendall(masked(0x8, b""))
        expect_close(sock, 1000)


def test_nothing_is_read_after_a_close_frame(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        sock.sendall(masked(0x8, struct.pack("!H", 1000)) + masked(0x1, b"too late"))
        expect_close(sock, 1000)


@pytest.mark.parametrize("together", [True, False], ids=["one-packet", "two-packets"])
def test_ping_after_close_is_not_answered(server: ServerThread, together: bool) -> None:
    """Autobahn 7.1.3: after the client's close frame no pong, only our close (RFC 6455 5.5.1)."""
    with handshake(server.port) as sock:
        close, ping = masked(0x8, struct.pack("!H", 1000)), masked(0x9, b"ping after close")
        if together:
            sock.sendall(close + ping)
        else:
            sock.sendall(close)
            sock.sendall(ping)
        expect_close(sock, 1000)


def test_server_initiated_close_waits_for_the_client(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        sock.sendall(masked(0x1, b"close:4100"))
        b0, payload = read_frame(sock)
        assert (b0, payload) == (0x88, struct.pack("!H", 4100) + b"server bye")
        assert not is_closed(sock, 0.3)  # still waiting for our close frame
        sock.sendall(masked(0x8, struct.pack("!H", 4100)))
        assert is_closed(sock, 5)


def test_client_eof_without_close_frame(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        sock.shutdown(socket.SHUT_WR)
        b0, _ = read_frame(sock)
        assert b0 == 0x88
        assert is_closed(sock, 5)


# -- violations: each closes with its code ---------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        pytest.param(unmasked(0x1, b"hi"), 1002, id="unmasked"),
        pytest.param(masked(0x1, b"x", rsv=0x40), 1002, id="rsv1-without-deflate"),
        pytest.param(masked(0x1, b"x", rsv=0x20), 1002, id="rsv2"),
        pytest.param(masked(0x1, b"x", rsv=0x10), 1002, id="rsv3"),
        *[pytest.param(masked(op, b"x"), 1002, id=f"opcode-{op:x}") for op in (3, 4, 5, 6, 7)],
        *[pytest.param(masked(op, b""), 1002, id=f"opcode-{op:x}") for op in (0xB, 0xC, 0xF)],
        pytest.param(masked(0x9, b"x" * 126), 1002, id="ping-over-125"),
        pytest.param(masked(0x8, struct.pack("!H", 1000) + b"x" * 124), 1002, id="close-over-125"),
        pytest.param(masked(0x9, b"x", fin=False), 1002, id="fragmented-ping"),
        pytest.param(masked(0x0, b"x"), 1002, id="continuation-first"),
        pytest.param(masked(0x1, b"a", fin=False) + masked(0x1, b"b"), 1002, id="text-in-text"),
        pytest.param(masked(0x1, b"a", fin=False) + masked(0x2, b"b"), 1002, id="binary-in-text"),
        pytest.param(masked(0x1, b"\xff\xfe"), 1007, id="invalid-utf8"),
        pytest.param(masked(0x1, b"\xed\xa0\x80"), 1007, id="utf8-surrogate"),
        pytest.param(masked(0x1, b"ok\xc3", fin=False) + masked(0x0, b"("), 1007, id="utf8-frag"),
        pytest.param(masked(0x8, b"\x03"), 1002, id="close-one-byte"),
        *[
            pytest.param(masked(0x8, struct.pack("!H", c)), 1002, id=f"close-code-{c}")
            for c in (0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000)
        ],
        pytest.param(masked(0x8, struct.pack("!H", 1000) + b"\xff"), 1007, id="close-reason"),
        pytest.param(
            bytes((0x82, 0xFF)) + struct.pack("!Q", 1 << 63) + b"abcd", 1002, id="length-msb"
        ),
    ],
)
def test_violation_closes_with_code(server: ServerThread, frames: bytes, code: int) -> None:
    with handshake(server.port) as sock:
        sock.sendall(frames)
        expect_close(sock, code)


# Autobahn 6.4.1 / 6.4.2: a text message whose UTF-8 turns invalid in its second fragment. The
# third fragment never comes: the server must fail the connection at the second (fail fast).
_KOSME = "κόσμε".encode()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(_KOSME, b"\xf4\x90\x80\x80", id="6.4.1-codepoint-over-10ffff"),
        pytest.param(_KOSME + b"\xf4", b"\x90", id="6.4.2-the-invalid-octet-alone"),
        pytest.param(b"ok", b"\xff", id="invalid-octet"),
        pytest.param(b"ok\xc3", b"(", id="bad-continuation"),
    ],
)
def test_invalid_utf8_fails_at_the_fragment(
    server: ServerThread, first: bytes, second: bytes
) -> None:
    with handshake(server.port) as sock:
        sock.sendall(masked(0x1, first, fin=False))
        time.sleep(0.05)
        sock.sendall(masked(0x0, second, fin=False))
        expect_close(sock, 1007)


# Autobahn 6.4.3 / 6.4.4: the same, in one frame sent in pieces (TCP reads): the server must fail
# as soon as the invalid piece is in, not wait for the rest of the frame.
@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(_KOSME, b"\xf4\x90\x80\x80", id="6.4.3-codepoint-over-10ffff"),
        pytest.param(_KOSME + b"\xf4", b"\x90", id="6.4.4-the-invalid-octet-alone"),
    ],
)
@pytest.mark.parametrize("fragmented", [False, True], ids=["frame", "in-a-fragment"])
def test_invalid_utf8_fails_within_the_frame(
    server: ServerThread, first: bytes, second: bytes, fragmented: bool
) -> None:
    frame = masked(0x0 if fragmented else 0x1, first + second + b"edited" * 20)
    cut = len(frame) - len(b"edited" * 20)
    with handshake(server.port) as sock:
        if fragmented:
            sock.sendall(masked(0x1, b"ok ", fin=False))
        sock.sendall(frame[: cut - len(second)])
        time.sleep(0.05)
        sock.sendall(frame[cut - len(second) : cut])
        expect_close(sock, 1007)


def test_text_frame_in_pieces(server: ServerThread) -> None:
    """A valid text frame cut anywhere (inside its head, its mask, its characters) is intact."""
    text = ("aé€𝄞 " * 40).encode()
    frame = masked(0x1, text)
    with handshake(server.port) as sock:
        for cut in (1, 3, 7, 9, 10, 11, 12, 100, len(frame) - 1):
            sock.sendall(frame[:cut])
            time.sleep(0.01)
            sock.sendall(frame[cut:])
            assert read_frame(sock) == (0x81, text), cut
        sock.sendall(masked(0x1, b"x", fin=False))  # the same, as the last fragment
        whole = masked(0x0, text)
        for i in range(0, len(whole), 5):
            sock.sendall(whole[i : i + 5])
            time.sleep(0.001)
        assert read_frame(sock) == (0x81, b"x" + text)


def test_invalid_utf8_fails_at_the_first_fragment(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        sock.sendall(masked(0x1, b"\xc0\xaf", fin=False))
        expect_close(sock, 1007)


def test_text_fragments_split_anywhere(server: ServerThread) -> None:
    """Valid UTF-8 cut at every byte (characters of 1 to 4 bytes): one message, intact."""
    text = "aé€𝄞 ✓ ünïcødé 𝄞€éa".encode()
    with handshake(server.port) as sock:
        frames = [
            masked(0x1 if i == 0 else 0x0, text[i : i + 1], fin=False) for i in range(len(text))
        ]
        sock.sendall(b"".join(frames) + masked(0x0, b""))
        assert read_frame(sock) == (0x81, text)
        # A message cut inside its last character is invalid at its end.
        sock.sendall(masked(0x1, text[:2], fin=False) + masked(0x0, b""))
        expect_close(sock, 1007)


def test_frame_over_max_msg_size_is_refused_before_it_arrives(server: ServerThread) -> None:
    with handshake(server.port, "/small") as sock:
        # Only the header of a 1 GiB frame: the server must not wait for (or buffer) the body.
        sock.sendall(bytes((0x82, 0xFF)) + struct.pack("!Q", 1 << 30) + b"abcd")
        expect_close(sock, 1009)


def test_fragments_over_max_msg_size(server: ServerThread) -> None:
    with handshake(server.port, "/small") as sock:
        sock.sendall(b"".join(masked(0x0 if i else 0x2, b"x" * 300, fin=False) for i in range(4)))
        expect_close(sock, 1009)


def test_deflate_bomb_is_stopped_at_max_msg_size(server: ServerThread) -> None:
    ext = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
    with handshake(server.port, "/small", extra=ext) as sock:
        comp = zlib.compressobj(wbits=-15)
        data = comp.compress(b"\x00" * 500_000) + comp.flush(zlib.Z_SYNC_FLUSH)
        assert len(data) < 1024  # under max_msg_size on the wire, 500 KB inflated
        sock.sendall(masked(0x2, data[:-4], rsv=0x40))
        expect_close(sock, 1009)


def test_corrupt_deflate_data(server: ServerThread) -> None:
    ext = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
    with handshake(server.port, extra=ext) as sock:
        sock.sendall(masked(0x2, b"\xff\xff\xff\xff\xff", rsv=0x40))
        expect_close(sock, 1002)


def test_rsv1_on_continuation_frame(server: ServerThread) -> None:
    ext = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
    with handshake(server.port, extra=ext) as sock:
        sock.sendall(masked(0x2, b"a", fin=False) + masked(0x0, b"b", rsv=0x40))
        expect_close(sock, 1002)


def test_garbage_after_handshake_is_a_websocket_error_not_http(server: ServerThread) -> None:
    with handshake(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # 'G' = FIN off, opcode 7
        expect_close(sock, 1002)


# -- negotiation -----------------------------------------------------------------------------


def _extensions_answer(port: int, offer: bytes) -> bytes | None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Extensions: %b\r\n\r\n" % offer
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-extensions:"):
            return line.split(b":", 1)[1].strip()
    return None


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        (b"permessage-deflate", b"permessage-deflate"),
        (b"permessage-deflate; client_max_window_bits", b"permessage-deflate"),
        (
            b"permessage-deflate; server_no_context_takeover",
            b"permessage-deflate; server_no_context_takeover",
        ),
        (
            b"permessage-deflate; server_max_window_bits=10",
            b"permessage-deflate; server_max_window_bits=10",
        ),
        (b"permessage-deflate; server_max_window_bits=8", None),  # zlib cannot: declined
        (
            b"permessage-deflate; server_max_window_bits=8, permessage-deflate",
            b"permessage-deflate",
        ),
        (b"permessage-deflate; unknown_param", None),
        (b"permessage-deflate; server_max_window_bits=20", None),
        (b"x-webkit-deflate-frame", None),
    ],
)
def test_deflate_offers(server: ServerThread, offer: bytes, answer: bytes | None) -> None:
    assert _extensions_answer(server.port, offer) == answer


def test_server_no_context_takeover_resets_per_message(server: ServerThread) -> None:
    ext = b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
    with handshake(server.port, extra=ext) as sock:
        for _ in range(2):  # each answer must inflate on its own, with a fresh context
            sock.sendall(masked(0x1, b"repeat " * 40))
            b0, payload = read_frame(sock)
            assert b0 == 0xC1
            out = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
            assert out == b"repeat " * 40


# -- flow control ----------------------------------------------------------------------------


def test_unread_messages_stop_the_reading(server: ServerThread) -> None:
    """A handler that never reads: the server stops reading instead of buffering everything."""
    with handshake(server.port, "/sleepy") as sock:
        sock.settimeout(0.5)
        frame = masked(0x2, os.urandom(65536))
        sent = 0
        try:
            while sent < 256 * 1024 * 1024:
                sock.sendall(frame)
                sent += len(frame)
        except (TimeoutError, BlockingIOError):
            pass
        # Kernel buffers on both sides plus the server's small queue: far below what we tried.
        assert sent < 64 * 1024 * 1024, sent


def test_slow_reader_holds_back_the_sender(server: ServerThread) -> None:
    with handshake(server.port, "/flood") as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        time.sleep(1.0)
        progress = server.call(lambda: server.app[STATE]["progress"])
        # send_bytes waited for the socket: only what the kernel buffers hold was produced.
        assert progress < 400, progress
        assert progress > 0
