"""The floor: a bare uvloop + httptools ``asyncio.Protocol``, no framework.

Each parsed request gets one fixed, pre-built response (``/json`` its JSON, anything else
"Hello, World!"), except ``POST /echo``, whose body is sent back. Keep-alive and pipelining are
handled; the responses to the requests parsed from one read go out in one ``transport.write``.
This is about the limit for Python on one core. Usage: ``python floor.py PORT``.
"""

import asyncio
import sys
from typing import cast

import httptools
import uvloop


def _response(body: bytes, content_type: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
    return head % (content_type, len(body)) + body


HELLO = _response(b"Hello, World!", b"text/plain; charset=utf-8")
JSON = _response(b'{"message": "Hello, World!"}', b"application/json")
ECHO_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
)
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Floor(asyncio.Protocol):
    """One connection: parse with httptools, answer with pre-built bytes."""

    __slots__ = ("body", "closing", "out", "parser", "transport", "url")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.out: list[bytes] = []
        self.closing = False

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.out.append(BAD_REQUEST)
            self.closing = True
        if self.out:
            self.transport.write(self.out[0] if len(self.out) == 1 else b"".join(self.out))
            self.out.clear()
        if self.closing:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.url == b"/echo":
            body = b"".join(self.body)
            self.body.clear()
            self.out += (ECHO_HEAD % len(body), body)
        elif self.url == b"/json":
            self.out.append(JSON)
        else:
            self.out.append(HELLO)
        if not self.parser.should_keep_alive():
            self.closing = True


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Floor, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8080))
