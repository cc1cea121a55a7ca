"""A lean WebSocket load generator: echo round-trips/s, or idle connections held open.

``echo``: opens CONNECTIONS WebSockets to ws://127.0.0.1:PORT/ (no extension offered, so no
compression), then keeps exactly one binary message of SIZE bytes in flight on each: the next one
goes out when the echo of the last one is in. Every connection is a bare uvloop
``asyncio.Protocol``; the masked frame is built once, the echoed frames are parsed only as far as
their headers (payloads are skipped, not copied) and counted. After WARMUP seconds it counts for
SECONDS and prints one JSON line: round-trips, round-trips/s, the connections lost, the echoes that
came back wrong, and the share of a core this process used while counting (``client_cpu``: near
1.0 means the generator, not the server, was the limit).

``echo --deflate``: the same with permessage-deflate (RFC 7692) offered on /deflate and required,
and text messages: a pool of JSON texts of about SIZE bytes, each deflated once beforehand on its
own (as a client without context takeover does, which any server reads) and masked once, sent in
turn. The echoes come compressed with the server's context: each connection inflates them with
its own zlib object and checks their length, so the server's work is checked at little cost.

``idle``: opens N WebSockets, sends one small message on each and reads its echo, prints
``{"event": "open", ...}``, holds them HOLD seconds, prints ``{"event": "held", ...}``: the same
lines as idle_clients.py, for the harness's memory-per-connection test.

Usage::

    python ws_load.py echo PORT [--connections 64] [--size 32] [--warmup 1] [--seconds 5]
                                [--deflate]
    python ws_load.py idle PORT N [HOLD_SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import resource
import sys
import time
import zlib
from typing import cast

import uvloop

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the wheel without its C extension
    from websockets.utils import apply_mask

KEY = base64.b64encode(b"squall-benchmark").decode()  # any 16 bytes will do
ACCEPT = base64.b64encode(
    hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
)
CONCURRENCY = 100  # handshakes in flight at once: the server's accept backlog must not overflow
CONNECT_TIMEOUT = 10.0  # seconds for one connect + handshake (+ first echo when idle)
OPEN_DEADLINE = 30.0  # seconds for all of them
CLOSE_FRAME = b"\x88\x82" + b"\x00\x00\x00\x00" + (1000).to_bytes(2, "big")  # zero mask
DEFLATE_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
DEFLATE_TAIL = b"\x00\x00\xff\xff"
DEFLATE_POOL = 64  # distinct messages: 64 KiB of them, more than a deflate window holds


def handshake(port: int, path: str, deflate: bool = False) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
        f"{DEFLATE_OFFER if deflate else ''}\r\n"
    ).encode()


def json_texts(count: int, size: int, seed: int = 1) -> list[bytes]:
    """``count`` distinct JSON-like texts of ``size`` bytes (an application's updates)."""
    rnd = random.Random(seed)
    words = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india")
    out = []
    for i in range(count):
        items = []
        text = ""
        while len(text) < size:
            items.append(
                {
                    "id": rnd.randrange(10**6),
                    "name": f"{rnd.choice(words)}-{rnd.choice(words)}",
                    "price": round(rnd.uniform(0, 1000), 2),
                    "active": rnd.random() < 0.5,
                }
            )
            text = json.dumps({"type": "update", "seq": i, "items": items})
        out.append(text[:size].encode())
    return out


def deflated_frame(text: bytes) -> bytes:
    """A final, masked, compressed text frame: ``text`` deflated on its own (RFC 7692 7.2.1)."""
    comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    data = (comp.compress(text) + comp.flush(zlib.Z_SYNC_FLUSH)).removesuffix(DEFLATE_TAIL)
    mask = os.urandom(4)
    return frame_head(0xC1, len(data), True) + mask + apply_mask(data, mask)


def frame_head(first: int, length: int, masked: bool) -> bytes:
    mask = 0x80 if masked else 0
    if length < 126:
        return bytes((first, mask | length))
    if length < 65536:
        return bytes((first, mask | 126)) + length.to_bytes(2, "big")
    return bytes((first, mask | 127)) + length.to_bytes(8, "big")


def client_frame(payload: bytes) -> bytes:
    """A final, masked binary frame (RFC 6455 5.3: clients mask every frame)."""
    mask = os.urandom(4)
    return frame_head(0x82, len(payload), True) + mask + apply_mask(payload, mask)


class Shared:
    """What every connection of one run shares: the frame to send and whether to keep going
    (with ``deflate``, the frames to send in turn and the length of each one's text)."""

    __slots__ = ("deflate", "echo_len", "frame", "frames", "lengths", "request", "sending")

    def __init__(self, port: int, path: str, size: int, deflate: bool = False) -> None:
        self.request = handshake(port, path, deflate)
        self.deflate = deflate
        self.frame = client_frame(os.urandom(size))
        self.echo_len = len(frame_head(0x82, size, False)) + size  # the unmasked echo
        texts = json_texts(DEFLATE_POOL, size) if deflate else []
        self.frames = [deflated_frame(t) for t in texts]
        self.lengths = [len(t) for t in texts]
        self.sending = False


class Client(asyncio.Protocol):
    """One WebSocket: handshake, then count echoed messages and send the next one."""

    __slots__ = (
        "buf",
        "count",
        "fin",
        "inflate",
        "inflight",
        "lost",
        "next",
        "open",
        "parts",
        "ready",
        "shared",
        "skip",
        "transport",
        "wrong",
    )

    def __init__(self, shared: Shared, ready: asyncio.Future[None]) -> None:
        self.shared = shared
        self.ready = ready  # done after the handshake; replaced to wait for one echo
        self.transport = cast(asyncio.Transport, None)
        self.open = False
        self.buf = b""  # an incomplete frame header (or control frame) left from the last read
        self.skip = 0  # payload bytes of the current data frame still to come
        self.fin = 0
        self.count = 0
        self.inflight = False  # a message was sent and its echo is not in yet
        self.lost = False
        self.next = 0  # (deflate) the index of the next frame to send
        self.parts: list[bytes] = []  # (deflate) the payloads of the message coming in
        self.inflate = zlib.decompressobj(-15)  # (deflate) the server's context
        self.wrong = 0  # (deflate) echoes that did not inflate to the text sent

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.shared.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.open = False
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        if not self.open:
            self._handshake(data)
        elif self.shared.deflate:
            self._deflated(data)
        elif len(data) == self.shared.echo_len and data[0] == 0x82 and not (self.skip or self.buf):
            self._message()  # the usual case: exactly one whole echo
        else:
            self._frames(data)

    def _handshake(self, data: bytes) -> None:
        data = self.buf + data
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self.buf = data
            return
        self.buf = b""
        head = data[:end]
        if not head.startswith(b"HTTP/1.1 101") or ACCEPT not in head:
            self.ready.set_exception(ConnectionError(f"bad handshake: {head[:60]!r}"))
            self.transport.close()
            return
        if self.shared.deflate and b"permessage-deflate" not in head.lower():
            self.ready.set_exception(ConnectionError("permessage-deflate not accepted"))
            self.transport.close()
            return
        self.open = True
        self.ready.set_result(None)
        if rest := data[end + 4 :]:
            self.data_received(rest)

    def _deflated(self, data: bytes) -> None:
        """Whole frames (payloads kept), each message inflated on its last frame."""
        if self.buf:
            data = self.buf + data
            self.buf = b""
        pos, end = 0, len(data)
        while pos < end:
            avail = end - pos
            length = data[pos + 1] & 0x7F if avail >= 2 else 0
            head = 2 if length < 126 else 4 if length == 126 else 10
            if avail >= head and length >= 126:
                length = int.from_bytes(data[pos + 2 : pos + head], "big")
            if avail < head + length or avail < 2:
                self.buf = data[pos:]
                return
            b0 = data[pos]
            payload = data[pos + head : pos + head + length]
            pos += head + length
            if b0 & 0x08:
                self._control(b0 & 0x0F, payload)
                continue
            if not b0 & 0x80:
                self.parts.append(payload)
                continue
            if self.parts:
                payload = b"".join((*self.parts, payload))
                self.parts = []
            # (RSV1 is on the first frame of a message; an uncompressed echo would not inflate)
            text = self.inflate.decompress(payload + DEFLATE_TAIL)
            if len(text) != self.shared.lengths[(self.next - 1) % DEFLATE_POOL]:
                self.wrong += 1
            self._message()

    def _frames(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        pos, end = 0, len(data)
        while pos < end:
            if self.skip:
                if end - pos < self.skip:
                    self.skip -= end - pos
                    return
                pos += self.skip
                self.skip = 0
                if self.fin:
                    self._message()
                continue
            avail = end - pos
            length = data[pos + 1] & 0x7F if avail >= 2 else 0
            head = 2 if length < 126 else 4 if length == 126 else 10
            if avail < head:
                self.buf = data[pos:]
                return
            if length >= 126:
                length = int.from_bytes(data[pos + 2 : pos + head], "big")
            b0 = data[pos]
            if b0 & 0x08:  # a control frame: wait for its (short) payload
                if avail < head + length:
                    self.buf = data[pos:]
                    return
                self._control(b0 & 0x0F, data[pos + head : pos + head + length])
                pos += head + length
                continue
            pos += head
            self.fin = b0 & 0x80
            if length:
                self.skip = length
            elif self.fin:
                self._message()

    def _control(self, op: int, payload: bytes) -> None:
        if op == 0x9:  # ping: pong with the same payload
            self.transport.write(frame_head(0x8A, len(payload), True) + b"\0\0\0\0" + payload)
        elif op == 0x8:  # the server closes: count this connection as lost
            self.lost = True
            self.open = False
            self.transport.close()

    def _message(self) -> None:
        self.count += 1
        if self.shared.sending:
            self.send()
            return
        self.inflight = False
        if not self.ready.done():
            self.ready.set_result(None)

    def send(self) -> None:
        self.inflight = True
        shared = self.shared
        if shared.deflate:
            self.transport.write(shared.frames[self.next % DEFLATE_POOL])
            self.next += 1
        else:
            self.transport.write(shared.frame)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self.open:
                self.transport.write(CLOSE_FRAME)
            self.transport.close()


async def open_one(shared: Shared, port: int, sem: asyncio.Semaphore, echo: bool) -> Client | None:
    """Connect and handshake (and with ``echo``, do one round-trip); None on failure."""
    loop = asyncio.get_running_loop()
    async with sem:
        ready: asyncio.Future[None] = loop.create_future()
        client: Client | None = None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, client = await loop.create_connection(
                    lambda: Client(shared, ready), "127.0.0.1", port
                )
                await ready
                if echo:
                    client.ready = loop.create_future()
                    client.send()
                    await client.ready
            return client
        except (OSError, TimeoutError, ConnectionError):
            if client is not None:
                client.close()
            return None


async def open_all(shared: Shared, port: int, count: int, echo: bool) -> list[Client]:
    sem = asyncio.Semaphore(CONCURRENCY)
    tasks = [asyncio.create_task(open_one(shared, port, sem, echo)) for _ in range(count)]
    done, pending = await asyncio.wait(tasks, timeout=OPEN_DEADLINE)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return [c for t in done if (c := t.result()) is not None]


async def close_all(clients: list[Client]) -> None:
    """Let the echoes in flight come back (1 s at most), then close each WebSocket."""
    for _ in range(100):
        if not any(c.inflight and not c.lost for c in clients):
            break
        await asyncio.sleep(0.01)
    for client in clients:
        client.close()
    await asyncio.sleep(0.2)  # let the close frames go out before the loop ends


async def echo(
    port: int,
    path: str,
    connections: int,
    size: int,
    warmup: float,
    seconds: float,
    deflate: bool = False,
) -> None:
    shared = Shared(port, path, size, deflate)
    clients = await open_all(shared, port, connections, echo=False)
    if not clients:
        emit("echo", error=f"no connection opened (wanted {connections})")
        return
    shared.sending = True
    for client in clients:
        client.send()
    await asyncio.sleep(warmup)
    count0, cpu0, t0 = sum(c.count for c in clients), time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    count1, cpu1, t1 = sum(c.count for c in clients), time.process_time(), time.perf_counter()
    shared.sending = False
    lost = sum(c.lost for c in clients)
    await close_all(clients)
    elapsed = t1 - t0
    emit(
        "echo",
        connections=len(clients),
        wanted=connections,
        size=size,
        seconds=round(elapsed, 3),
        roundtrips=count1 - count0,
        rate=round((count1 - count0) / elapsed, 1),
        lost=lost,
        wrong=sum(c.wrong for c in clients),
        client_cpu=round((cpu1 - cpu0) / elapsed, 3),
    )


async def idle(port: int, path: str, count: int, hold: float) -> None:
    shared = Shared(port, path, 32)
    start = time.monotonic()
    clients = await open_all(shared, port, count, echo=True)
    emit("open", open=len(clients), wanted=count, seconds=round(time.monotonic() - start, 2))
    await asyncio.sleep(hold)
    emit("held", still_open=sum(1 for c in clients if c.open and not c.lost))
    await close_all(clients)


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def raise_nofile(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    e = sub.add_parser("echo", help="round-trips/s")
    e.add_argument("port", type=int)
    e.add_argument("--connections", type=int, default=64)
    e.add_argument("--size", type=int, default=32, help="message bytes")
    e.add_argument("--warmup", type=float, default=1.0)
    e.add_argument("--seconds", type=float, default=5.0)
    e.add_argument("--path", help="the WebSockets' path (/; with --deflate, /deflate)")
    e.add_argument("--deflate", action="store_true", help="permessage-deflate, JSON text")
    i = sub.add_parser("idle", help="hold idle WebSockets")
    i.add_argument("port", type=int)
    i.add_argument("count", type=int)
    i.add_argument("hold", type=float, nargs="?", default=3.0)
    i.add_argument("--path", default="/")
    opts = parser.parse_args(argv)
    wanted = opts.connections if opts.mode == "echo" else opts.count
    limit = raise_nofile(wanted + 256) - 64
    if opts.mode == "echo":
        path = opts.path or ("/deflate" if opts.deflate else "/")
        coro = echo(
            opts.port,
            path,
            min(wanted, limit),
            opts.size,
            opts.warmup,
            opts.seconds,
            opts.deflate,
        )
    else:
        coro = idle(opts.port, opts.path, min(wanted, limit), opts.hold)
    uvloop.run(coro)


if __name__ == "__main__":
    main(sys.argv[1:])
