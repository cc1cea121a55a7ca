"""permessage-deflate per message, squall against aiohttp, in process (no sockets).

The same 1 KiB JSON-like text messages go through each library's own per-message path:

- compress: a server message out (squall ``WebSocketChannel.send()``; aiohttp
  ``WebSocketWriter.send_frame()``), deflate, trailer stripped, frame head, one transport write;
- decompress: one masked, compressed client frame in (squall ``WebSocketChannel.data_received()``
  then ``receive()``; aiohttp ``WebSocketReader.feed_data()`` then its queue's ``read()``), the
  message out as ``str``;
- waiting: the same, but with the receiver already waiting when the frame comes, as in a server
  (one loop turn per message for both: the figure includes the event loop's work).

Rounds alternate between the two libraries (and each starts from a fresh connection with the
context takeover both negotiate by default), and the best round counts, to limit the noise of a
shared machine. Also shown: the bytes each sends per message (the compression level matters).
``--instructions`` counts instead, under valgrind's callgrind, the instructions per message
(two runs of N1 and N2 messages each, start-up cancels out): they repeat where timings drift.

    .venv/bin/python benchmarks/ws_deflate.py [--messages N] [--rounds N] [--no-takeover]
    .venv/bin/python benchmarks/ws_deflate.py --instructions [--no-takeover]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp._websocket.writer import WebSocketWriter
from aiohttp.http_websocket import WSMsgType
from websockets.utils import apply_mask

from squall.http.websocket import OP_TEXT, Deflate
from squall.http.ws_channel import WebSocketChannel

MASK = b"\x37\xfa\x21\x3d"
POOL = 2000  # messages made whatever --messages says


def messages(n: int, seed: int = 1) -> list[str]:
    """``n`` distinct JSON texts of about 1 KiB, like an application's updates."""
    rnd = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
    out = []
    for i in range(n):
        doc: dict[str, Any] = {"type": "update", "seq": i, "items": []}
        while len(json.dumps(doc)) < 980:
            doc["items"].append(
                {
                    "id": rnd.randrange(10**6),
                    "name": rnd.choice(words) + "-" + rnd.choice(words),
                    "price": round(rnd.uniform(0, 1000), 2),
                    "active": rnd.random() < 0.5,
                }
            )
        out.append(json.dumps(doc)[:1024])
    return out


def client_frames(texts: list[str], takeover: bool) -> list[bytes]:
    """The texts as a browser sends them: deflated (its own context), masked, RSV1 set."""
    comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    frames = []
    for text in texts:
        if not takeover:
            comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        data = comp.compress(text.encode()) + comp.flush(zlib.Z_SYNC_FLUSH)
        data = data.removesuffix(b"\x00\x00\xff\xff")
        n = len(data)
        head = struct.pack("!BBH", 0xC1, 0x80 | 126, n) if n >= 126 else bytes((0xC1, 0x80 | n))
        frames.append(head + MASK + apply_mask(data, MASK))
    return frames


class Sink:
    """Stands in for both libraries' connection and transport: counts what is written."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport = self
        self.write_paused = False
        self._paused = False  # (aiohttp's protocol attributes)
        self._reading_paused = False
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    pause_reading_body = pause_reading
    resume_reading_body = resume_reading


Run = Callable[[asyncio.AbstractEventLoop], Awaitable[tuple[float, int]]]


def squall_compress(texts: list[str], takeover: bool) -> Run:
    async def run(loop: asyncio.AbstractEventLoop) -> tuple[float, int]:
        sink = Sink(loop)
        channel = WebSocketChannel(sink, max_size=4 << 20, deflate=Deflate(15, not takeover, False))  # type: ignore[arg-type]
        payloads = [t.encode() for t in texts]  # (send_str's encode is the same in both)
        send = channel.send
        t0 = time.perf_counter()
        for p in payloads:
            send(OP_TEXT, p)
        return time.perf_counter() - t0, sink.written

    return run


def aiohttp_compress(texts: list[str], takeover: bool) -> Run:
    async def run(loop: asyncio.AbstractEventLoop) -> tuple[float, int]:
        sink = Sink(loop)
        writer = WebSocketWriter(sink, sink, compress=15, notakeover=not takeover)  # type: ignore[arg-type]
        payloads = [t.encode() for t in texts]
        send = writer.send_frame
        t0 = time.perf_counter()
        for p in payloads:
            await send(p, WSMsgType.TEXT)
        return time.perf_counter() - t0, sink.written

    return run


def squall_decompress(frames: list[bytes], takeover: bool) -> Run:
    async def run(loop: asyncio.AbstractEventLoop) -> tuple[float, int]:
        sink = Sink(loop)
        channel = WebSocketChannel(sink, max_size=4 << 20, deflate=Deflate(15, False, not takeover))  # type: ignore[arg-type]
        feed = channel.data_received
        receive = channel.receive
        size = 0
        t0 = time.perf_counter()
        for frame in frames:
            feed(frame)
            size += len((await receive())[1])
        return time.perf_counter() - t0, size

    return run


def aiohttp_decompress(frames: list[bytes], takeover: bool) -> Run:
    async def run(loop: asyncio.AbstractEventLoop) -> tuple[float, int]:
        sink = Sink(loop)
        queue = WebSocketDataQueue(sink, 2**16, loop=loop)  # type: ignore[arg-type]
        reader = WebSocketReader(queue, 4 << 20, compress=True, decode_text=True)
        feed = reader.feed_data
        read = queue.read
        size = 0
        t0 = time.perf_counter()
        for frame in frames:
            feed(frame)
            size += len((await read()).data)
        return time.perf_counter() - t0, size

    return run


def instructions(case: str, lib: str, takeover: bool, n: int) -> int:
    """Instructions (callgrind) of a run of ``n`` messages through one case of one library."""
    argv = [sys.executable, __file__, "--only", f"{case}:{lib}", "--messages", str(n)]
    if not takeover:
        argv.append("--no-takeover")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out", *argv],
            env=dict(os.environ, PYTHONHASHSEED="0"),
            capture_output=True,
            text=True,
            check=True,
        )
    match = re.search(r"Collected : ([\d,]+)", out.stderr)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def squall_waiting(frames: list[bytes], takeover: bool) -> Run:
    """As squall_decompress, with the receiver waiting when each frame comes (a server's case):
    one loop turn per message, as for aiohttp_waiting."""

    async def run(loop: asyncio.AbstractEventLoop) -> tuple[float, int]:
        sink = Sink(loop)
        deflate = Deflate(15, False, not takeover)
        channel = WebSocketChannel(sink, max_size=4 << 20, deflate=deflate)  # type: ignore[arg-type]
        return await _waiting(frames, channel.data_received, channel.receive, lambda m: m[1])

    return run


def aiohttp_waiting(frames: list[bytes], takeover: bool) -> Run:
    async def run(loop: asyncio.AbstractEventLoop) -> tuple[float, int]:
        sink = Sink(loop)
        queue = WebSocketDataQueue(sink, 2**16, loop=loop)  # type: ignore[arg-type]
        reader = WebSocketReader(queue, 4 << 20, compress=True, decode_text=True)
        return await _waiting(frames, reader.feed_data, queue.read, lambda m: m.data)

    return run


async def _waiting(
    frames: list[bytes],
    feed: Callable[[bytes], Any],
    receive: Callable[[], Awaitable[Any]],
    data: Callable[[Any], Any],
) -> tuple[float, int]:
    size = 0

    async def consume() -> None:
        nonlocal size
        for _ in frames:
            size += len(data(await receive()))

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0)  # the consumer waits
    t0 = time.perf_counter()
    for frame in frames:
        feed(frame)
        await asyncio.sleep(0)  # the consumer takes it
    await consumer
    return time.perf_counter() - t0, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-takeover", action="store_true", help="no context takeover")
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # case:lib, one round (callgrind's)
    args = parser.parse_args()
    takeover = not args.no_takeover
    if args.instructions:
        low, high = 500, 2000
        print(
            f"instructions per message (callgrind, {low} and {high} messages), context "
            f"takeover {'on' if takeover else 'off'}"
        )
        print(f"{'':12} {'squall':>10} {'aiohttp':>10} {'squall/aiohttp':>15}")
        for case in ("compress", "decompress"):
            per = {
                lib: (
                    instructions(case, lib, takeover, high) - instructions(case, lib, takeover, low)
                )
                / (high - low)
                for lib in ("squall", "aiohttp")
            }
            print(
                f"{case:12} {per['squall']:10,.0f} {per['aiohttp']:10,.0f} "
                f"{per['squall'] / per['aiohttp']:15.2f}"
            )
        return
    # The same messages whatever --messages says, so that only their processing differs
    # between two runs of --instructions.
    texts = messages(max(args.messages, POOL))
    frames = client_frames(texts, takeover)
    texts, frames = texts[: args.messages], frames[: args.messages]
    cases: dict[str, dict[str, Run]] = {
        "compress": {
            "squall": squall_compress(texts, takeover),
            "aiohttp": aiohttp_compress(texts, takeover),
        },
        "decompress": {
            "squall": squall_decompress(frames, takeover),
            "aiohttp": aiohttp_decompress(frames, takeover),
        },
        "waiting": {
            "squall": squall_waiting(frames, takeover),
            "aiohttp": aiohttp_waiting(frames, takeover),
        },
    }
    loop = asyncio.new_event_loop()
    if args.only:
        case, lib = args.only.split(":")
        loop.run_until_complete(cases[case][lib](loop))
        loop.close()
        return
    best: dict[tuple[str, str], float] = {}
    size: dict[tuple[str, str], int] = {}
    for _ in range(args.rounds):
        for case, runs in cases.items():
            for lib, run in runs.items():
                seconds, n = loop.run_until_complete(run(loop))
                key = (case, lib)
                best[key] = min(best.get(key, seconds), seconds)
                size[key] = n
    loop.close()
    mean = sum(map(len, texts)) / len(texts)
    print(
        f"{args.messages} messages of {mean:.0f} bytes (JSON text), context takeover "
        f"{'on' if takeover else 'off'}, best of {args.rounds} interleaved rounds"
    )
    print(f"{'':12} {'squall us/msg':>14} {'aiohttp us/msg':>15} {'squall/aiohttp':>15}")
    for case in cases:
        ours = best[(case, "squall")] / args.messages * 1e6
        theirs = best[(case, "aiohttp")] / args.messages * 1e6
        print(f"{case:12} {ours:14.2f} {theirs:15.2f} {ours / theirs:15.2f}")
    print(
        "bytes out per message: squall "
        f"{size[('compress', 'squall')] / args.messages:.0f}, aiohttp "
        f"{size[('compress', 'aiohttp')] / args.messages:.0f}"
    )
    whole = sum(map(len, texts))
    assert size[("decompress", "squall")] == size[("decompress", "aiohttp")] == whole
    assert size[("waiting", "squall")] == size[("waiting", "aiohttp")] == whole


if __name__ == "__main__":
    main()
