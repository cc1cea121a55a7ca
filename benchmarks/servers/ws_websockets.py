"""The WebSocket echo server on the ``websockets`` package's asyncio server, with uvloop.

Compression off (``compression=None``) and no keepalive pings (``ping_interval=None``: neither
aiohttp nor squall pings by default). Usage: ``python ws_websockets.py PORT``.
"""

import sys

import uvloop
from websockets.asyncio.server import ServerConnection, serve


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main(port: int) -> None:
    async with serve(
        echo, "127.0.0.1", port, compression=None, ping_interval=None, max_size=2**20
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8080))
