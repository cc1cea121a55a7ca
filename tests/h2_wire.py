"""Raw HTTP/2 over a socket for the conformance and hardening batteries (RFC 9113, RFC 7541).

Well-formed frames are made with ``hyperframe`` and header blocks with ``hpack``; malformed
ones with :func:`frame`, which writes any header and payload. :class:`Conn` reads the server's
frames, decodes its header blocks with one ``hpack.Decoder`` for the whole connection (so the
dynamic table is tracked across responses), and has the assertions the cases share.

The server (:class:`BatteryServer`) is an aiohttp.web app on squall with HTTP/2 on, with small
limits so that the hardening cases stay fast.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from squall import web

from .loop_thread import LoopThread

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 6) and flags.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

# Error codes (RFC 9113 7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
SETTINGS_TIMEOUT, STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM = 0x4, 0x5, 0x6, 0x7
CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, ENHANCE_YOUR_CALM = 0x8, 0x9, 0xA, 0xB

# Settings (RFC 9113 6.5.2).
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6

MAX_WINDOW = 2**31 - 1
TIMEOUT = 2.0  # seconds any one expected frame may take

Fields = list[tuple[bytes, bytes]]


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """Any frame, well-formed or not: the 9-octet header (RFC 9113 4.1) and ``payload``."""
    return (
        struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", kind, flags, stream_id) + payload
    )


def settings_payload(values: dict[int, int]) -> bytes:
    return b"".join(struct.pack(">HI", k, v) for k, v in values.items())


def get(path: str = "/", method: str = "GET", authority: str = "localhost") -> Fields:
    """A request's pseudo-header fields, in the usual order."""
    return [
        (b":method", method.encode()),
        (b":scheme", b"http"),
        (b":path", path.encode()),
        (b":authority", authority.encode()),
    ]


class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


@dataclass
class Response:
    status: int
    headers: Fields
    body: bytes = b""
    data_frames: list[int] = field(default_factory=list)  # each DATA frame's length
    trailers: Fields | None = None
    head_ended: bool = False  # END_STREAM on the HEADERS frame itself

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)


class Conn:
    """One client connection to the server, frame by frame."""

    def __init__(
        self,
        port: int,
        settings: dict[int, int] | None = None,
        handshake: bool = True,
        rcvbuf: int = 0,
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms stalls
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        self.buf = bytearray()
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.server_settings: dict[int, int] = {}
        self.block: tuple[int, bytearray] | None = None  # a server header block in progress
        self.closed = False
        if handshake:
            self.handshake(settings or {})

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    # -- sending -----------------------------------------------------------------------------

    def send(self, *frames: bytes | Frame) -> None:
        self.sock.sendall(
            b"".join(f if isinstance(f, bytes | bytearray) else f.serialize() for f in frames)
        )

    def handshake(self, settings: dict[int, int]) -> None:
        """Preface and SETTINGS; the server's SETTINGS read and acknowledged, ours acknowledged."""
        self.send(PREFACE, SettingsFrame(0, settings=settings))
        acked = got = False
        while not (acked and got):
            f, _ = self.read()
            if isinstance(f, SettingsFrame):
                if "ACK" in f.flags:
                    acked = True
                else:
                    got = True
                    self.server_settings.update(f.settings)
                    self.send(SettingsFrame(0, flags=["ACK"]))

    def block_for(
        self, fields: Sequence[tuple[bytes | str, bytes | str]], huffman: bool = True
    ) -> bytes:
        return bytes(self.encoder.encode(list(fields), huffman=huffman))

    def headers(
        self,
        stream_id: int,
        fields: Sequence[tuple[bytes | str, bytes | str]],
        end_stream: bool = True,
        end_headers: bool = True,
    ) -> bytes:
        """A HEADERS frame (encoded with this connection's encoder: send it, in order)."""
        flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        return frame(HEADERS, flags, stream_id, self.block_for(fields))

    def request(
        self,
        stream_id: int,
        fields: Sequence[tuple[bytes | str, bytes | str]],
        body: bytes | None = None,
    ) -> None:
        """HEADERS (and DATA if ``body`` is not None), END_STREAM on the last."""
        out = [self.headers(stream_id, fields, end_stream=body is None)]
        if body is not None:
            out.append(DataFrame(stream_id, body, flags=["END_STREAM"]).serialize())
        self.send(*out)

    def ping(self, payload: bytes = b"stillok!") -> None:
        """Send a PING and wait for its ACK (other frames are skipped): the connection works."""
        self.send(PingFrame(0, opaque_data=payload))
        while True:
            f, _ = self.read()
            if isinstance(f, PingFrame) and "ACK" in f.flags and f.opaque_data == payload:
                return
            if isinstance(f, GoAwayFrame):
                raise AssertionError(f"GOAWAY {f.error_code} instead of a PING ACK")

    # -- reading -----------------------------------------------------------------------------

    def read(self, timeout: float = TIMEOUT) -> tuple[Frame, Fields | None]:
        """The next frame, and the decoded header block if it ended one. Raises Closed, or
        TimeoutError if nothing came within ``timeout``."""
        head = self._take(9, timeout)
        f, length = Frame.parse_frame_header(memoryview(head))
        f.parse_body(memoryview(self._take(length, timeout)))
        fields: Fields | None = None
        if isinstance(f, HeadersFrame | ContinuationFrame):
            if isinstance(f, HeadersFrame):
                self.block = (f.stream_id, bytearray(f.data))
            else:
                assert self.block is not None and self.block[0] == f.stream_id, "bad CONTINUATION"
                self.block[1].extend(f.data)
            if "END_HEADERS" in f.flags:
                assert self.block is not None
                fields = [
                    (bytes(n), bytes(v))
                    for n, v in self.decoder.decode(bytes(self.block[1]), raw=True)
                ]
                self.block = None
        return f, fields

    def _take(self, n: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            if self.closed:
                raise Closed()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no frame within {timeout} s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError(f"no frame within {timeout} s") from None
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.closed = True
                raise Closed()
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def frames(self, timeout: float = TIMEOUT) -> Iterator[tuple[Frame, Fields | None]]:
        """Frames until the connection closes or ``timeout`` passes with none."""
        while True:
            try:
                yield self.read(timeout)
            except (Closed, TimeoutError):
                return

    def response(self, stream_id: int, window_updates: bool = True) -> Response:
        """Read until the stream ends; its response (frames of other streams are skipped).
        DATA is acknowledged at once (WINDOW_UPDATE) unless ``window_updates`` is false."""
        resp: Response | None = None
        while True:
            try:
                f, fields = self.read()
            except Closed:
                raise AssertionError(f"connection closed before stream {stream_id} ended") from None
            if isinstance(f, GoAwayFrame):
                raise AssertionError(
                    f"GOAWAY {f.error_code} ({f.additional_data!r}) on stream {stream_id}"
                )
            if f.stream_id != stream_id:
                continue
            if isinstance(f, RstStreamFrame):
                raise AssertionError(f"RST_STREAM {f.error_code} on stream {stream_id}")
            if fields is not None:
                if resp is None or resp.status < 200:
                    status = dict(fields).get(b":status", b"0")
                    resp = Response(int(status), fields)
                else:
                    resp.trailers = fields
            if isinstance(f, DataFrame):
                assert resp is not None, "DATA before HEADERS"
                resp.body += f.data
                resp.data_frames.append(len(f.data))
                if window_updates and f.flow_controlled_length:
                    self.send(
                        WindowUpdateFrame(0, window_increment=f.flow_controlled_length),
                        WindowUpdateFrame(stream_id, window_increment=f.flow_controlled_length),
                    )
            if "END_STREAM" in f.flags:
                assert resp is not None
                if isinstance(f, HeadersFrame) and not resp.data_frames and resp.trailers is None:
                    resp.head_ended = True
                return resp

    # -- the assertions ----------------------------------------------------------------------

    def expect_goaway(self, code: int) -> GoAwayFrame:
        """A connection error: GOAWAY with ``code``, then the connection closes."""
        for f, _ in self.frames():
            if isinstance(f, GoAwayFrame):
                assert f.error_code == code, (
                    f"GOAWAY {f.error_code}, wanted {code} ({f.additional_data!r})"
                )
                self.expect_closed()
                return f
            if isinstance(f, RstStreamFrame) and f.error_code != NO_ERROR:
                raise AssertionError(
                    f"RST_STREAM {f.error_code} on {f.stream_id}: wanted GOAWAY {code}"
                )
        raise AssertionError(
            f"no GOAWAY ({'closed' if self.closed else 'timed out'}), wanted {code}"
        )

    def expect_rst(self, stream_id: int, code: int) -> None:
        """A stream error: RST_STREAM with ``code`` on the stream; the connection goes on."""
        for f, _ in self.frames():
            if isinstance(f, GoAwayFrame):
                wanted = f"RST_STREAM {code} on {stream_id}"
                raise AssertionError(f"GOAWAY {f.error_code} ({f.additional_data!r}): {wanted}")
            if isinstance(f, RstStreamFrame) and f.stream_id == stream_id:
                assert f.error_code == code, f"RST_STREAM {f.error_code}, wanted {code}"
                self.ping()
                return
        raise AssertionError(
            f"no RST_STREAM ({'closed' if self.closed else 'timed out'}), wanted {code}"
        )

    def expect_error(self, stream_id: int, code: int) -> None:
        """Where the RFC allows a stream or a connection error: RST_STREAM or GOAWAY, ``code``."""
        for f, _ in self.frames():
            if isinstance(f, GoAwayFrame):
                assert f.error_code == code, f"GOAWAY {f.error_code}, wanted {code}"
                return
            if isinstance(f, RstStreamFrame) and f.stream_id == stream_id:
                assert f.error_code == code, f"RST_STREAM {f.error_code}, wanted {code}"
                return
        raise AssertionError(
            f"no RST_STREAM or GOAWAY ({'closed' if self.closed else 'timed out'})"
        )

    def scan_for_goaway(self, timeout: float = TIMEOUT) -> int | None:
        """Skip frames (headers only: fast through a flood's replies) to a GOAWAY; its error
        code, or None if the connection closed or went quiet for ``timeout`` without one."""
        while True:
            try:
                head = self._take(9, timeout)
                length = int.from_bytes(head[:3], "big")
                payload = self._take(length, timeout)
            except (Closed, TimeoutError):
                return None
            if head[3] == GOAWAY:
                return int.from_bytes(payload[4:8], "big")

    def expect_closed(self, timeout: float = TIMEOUT) -> list[Frame]:
        """The server closes the connection within ``timeout``; the frames it sent before."""
        got = [f for f, _ in self.frames(timeout)]
        assert self.closed, "the connection is still open"
        return got

    def expect_silence(self, timeout: float = 0.3) -> list[Frame]:
        """Nothing but these frames for ``timeout``, and the connection still open."""
        got = [f for f, _ in self.frames(timeout)]
        assert not self.closed, f"closed (after {got})"
        return got


def size_update(size: int) -> bytes:
    """An HPACK dynamic table size update (RFC 7541 6.3)."""
    return hpack_int(size, 5, 0x20)


def hpack_int(value: int, prefix: int, first: int) -> bytes:
    """An HPACK integer (RFC 7541 5.1) with ``prefix`` bits, ``first`` the high bits' pattern."""
    top = (1 << prefix) - 1
    if value < top:
        return bytes([first | value])
    out = [first | top]
    value -= top
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name: bytes, value: bytes, indexing: bool = False) -> bytes:
    """A literal field with a literal name, not Huffman-coded (RFC 7541 6.2)."""
    kind = 0x40 if indexing else 0x00
    return bytes([kind]) + hpack_int(len(name), 7, 0) + name + hpack_int(len(value), 7, 0) + value


# -- the server ---------------------------------------------------------------------------------


class Probe:
    """What the handlers saw (written from the server's thread)."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.written = 0
        self.stopped = False
        self.seen: list[Fields] = []


def battery_app(probe: Probe) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="Hello, World!")

    async def info(request: web.Request) -> web.Response:
        """What the app sees of the request."""
        return web.json_response(
            {
                "version": list(request.version),
                "host": request.host,
                "headers": [[k, v] for k, v in request.headers.items()],
                "body": (await request.read()).decode("latin-1"),
            }
        )

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * int(request.query["n"]))

    async def stream_big(request: web.Request) -> web.StreamResponse:
        """Writes 16 KiB chunks as fast as the client lets it (drain), 64 MiB at most."""
        resp = web.StreamResponse()
        await resp.prepare(request)
        chunk = b"y" * 16384
        try:
            for _ in range(4096):
                await resp.write(chunk)
                probe.written += len(chunk)
        except BaseException:
            probe.stopped = True
            raise
        probe.stopped = True
        return resp

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.Response(text="slow")

    async def forever(request: web.Request) -> web.Response:
        probe.started += 1
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            probe.cancelled += 1
            raise
        return web.Response(text="late")

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def not_modified(request: web.Request) -> web.Response:
        return web.Response(status=304, headers={"ETag": '"1"'})

    async def hop_by_hop(request: web.Request) -> web.Response:
        """A handler that sets HTTP/1.1 connection-specific fields: never sent on HTTP/2."""
        return web.Response(
            text="hop",
            headers={
                "Connection": "keep-alive",
                "Keep-Alive": "timeout=5",
                "Upgrade": "foo",
                "Proxy-Connection": "keep-alive",
                "X-Ok": "1",
            },
        )

    app = web.Application()
    app.add_routes(
        [
            web.get("/", hello),
            web.route("*", "/info", info),
            web.post("/echo", echo),
            web.get("/big", big),
            web.get("/stream_big", stream_big),
            web.get("/slow", slow),
            web.get("/forever", forever),
            web.get("/empty", empty),
            web.get("/304", not_modified),
            web.get("/hop", hop_by_hop),
        ]
    )
    return app


class BatteryServer(LoopThread):
    """The battery's app on squall, HTTP/2 on, ephemeral port, small limits."""

    MAX_HEAD_SIZE = 16384

    def __init__(self, **runner_kwargs: Any) -> None:
        super().__init__()
        self.probe = Probe()
        self.port = 0
        self.runner_kwargs = runner_kwargs

    async def serve(self, stop: asyncio.Event) -> None:
        kwargs: dict[str, Any] = dict(http2=True, shutdown_timeout=1.0, keepalive_timeout=10.0)
        kwargs.update(self.runner_kwargs)
        runner = web.AppRunner(battery_app(self.probe), **kwargs)
        await runner.setup()
        assert runner.server is not None
        runner.server.limits.max_head_size = self.MAX_HEAD_SIZE
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site.port
        self.ready()
        await stop.wait()
        await runner.cleanup()

    def info(self, stream_fields: Iterable[tuple[bytes | str, bytes | str]]) -> dict[str, Any]:
        """GET /info with these extra fields on a fresh connection: what the app saw."""
        with Conn(self.port) as c:
            c.request(1, [*get("/info"), *stream_fields])
            r = c.response(1)
        assert r.status == 200, r
        result: dict[str, Any] = json.loads(r.body)
        return result
