"""Hold N idle keep-alive connections open to a server, for the memory-per-connection figure.

Opens N connections to 127.0.0.1:PORT (a bounded number at a time), sends one ``GET /World`` on
each and reads the whole response, then prints a JSON line ``{"event": "open", ...}``, holds the
connections for HOLD seconds, prints ``{"event": "held", "still_open": ...}`` and closes them.
Raises RLIMIT_NOFILE as far as the hard limit allows. Every wait has a deadline.

Usage: ``python idle_clients.py PORT N [HOLD_SECONDS]``
"""

import asyncio
import json
import resource
import sys
import time

REQUEST = b"GET /World HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
CONCURRENCY = 100  # connects in flight at once; keeps the server's accept backlog from overflowing
CONNECT_TIMEOUT = 10.0  # seconds for one connect + request + response
OPEN_DEADLINE = 30.0  # seconds for all of them (10,000 take about 2 s)

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def raise_nofile(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted``; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def emit(event: str, **fields: float) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def read_response(reader: asyncio.StreamReader) -> None:
    """Read one response: headers, then a Content-Length or chunked body."""
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    if not head.startswith(b"http/1.1 200"):
        raise ValueError(head[:40])
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":", 1)[1]))
            return
    if b"transfer-encoding: chunked" in head:
        await reader.readuntil(b"0\r\n\r\n")
        return
    raise ValueError("response has no length")


async def open_one(port: int, sem: asyncio.Semaphore, conns: list[Conn]) -> None:
    async with sem:
        writer = None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(REQUEST)
                await read_response(reader)
            conns.append((reader, writer))
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            if writer is not None:
                writer.close()


async def main(port: int, count: int, hold: float) -> None:
    limit = raise_nofile(count + 256)
    count = min(count, limit - 64)
    sem = asyncio.Semaphore(CONCURRENCY)
    conns: list[Conn] = []
    start = time.monotonic()
    tasks = [asyncio.create_task(open_one(port, sem, conns)) for _ in range(count)]
    _, pending = await asyncio.wait(tasks, timeout=OPEN_DEADLINE)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    emit("open", open=len(conns), wanted=count, seconds=round(time.monotonic() - start, 2))
    await asyncio.sleep(hold)
    still = sum(1 for r, w in conns if not r.at_eof() and not w.is_closing())
    emit("held", still_open=still)
    for _, writer in conns:
        writer.close()


if __name__ == "__main__":
    port, n = int(sys.argv[1]), int(sys.argv[2])
    asyncio.run(main(port, n, float(sys.argv[3]) if len(sys.argv) > 3 else 3.0))
