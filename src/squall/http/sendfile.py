"""Sending part of a file as response body bytes, after the head (see ``Exchange.send_file``).

On a plain TCP or Unix socket the bytes go with ``os.sendfile`` straight from the page cache to
the socket: nothing is buffered in the process, and a slow reader just makes us wait for the
socket to become writable. ``loop.sendfile`` would do the same, but uvloop does not implement it,
and asyncio's version stops reading from the connection while it runs. Elsewhere (TLS, a
transport without a socket, or ``SQUALL_NOSENDFILE=1``) the file is read in ``chunk_size`` pieces
in the default executor and written through the transport, waiting on backpressure after each.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .output import Output

__all__ = ("NOSENDFILE", "read_file", "send_file")

NOSENDFILE = bool(os.environ.get("SQUALL_NOSENDFILE"))

# os.sendfile cannot send this file (or to this socket): read and write it instead.
_UNSUPPORTED = frozenset(
    code
    for code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", None))
    if code is not None
)


async def send_file(out: Output, fd: int, offset: int, count: int, chunk_size: int) -> None:
    """Send ``count`` bytes of the open file ``fd`` from ``offset`` through ``out``.

    Raises ConnectionResetError if the client goes away, EOFError if the file turns out shorter
    than ``offset + count`` (the response can then only be cut short). ``fd`` stays open and
    owned by the caller, also when this is cancelled.
    """
    out.flush()  # the head may still be gathered if we run inside data_received
    transport = out.transport
    if transport is None:
        raise ConnectionResetError("Connection lost")
    sock_fd = None if NOSENDFILE else _plain_socket_fd(transport)
    if sock_fd is not None:
        offset, count = await _sendfile(out, transport, sock_fd, fd, offset, count)
    if count:
        await _copy(out, fd, offset, count, chunk_size)


def _plain_socket_fd(transport: asyncio.BaseTransport) -> int | None:
    """The socket under ``transport`` if bytes written to it reach the peer as they are."""
    if (
        transport.get_extra_info("sslcontext") is not None
        or transport.get_extra_info("ssl_object") is not None
    ):
        return None
    sock: Any = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM:
        return None
    fileno = sock.fileno()
    return fileno if isinstance(fileno, int) and fileno >= 0 else None


async def _sendfile(
    out: Output,
    transport: asyncio.BaseTransport,
    sock_fd: int,
    fd: int,
    offset: int,
    count: int,
) -> tuple[int, int]:
    """os.sendfile until done; returns what is left if this file cannot be sent that way.

    The transport owns ``sock_fd`` and the loop will not watch one fd for two owners, so we wait
    for writability on a duplicate (same socket, another number). Bytes only go out this way
    once the transport's own buffer is empty, so they never overtake the head.
    """
    loop = asyncio.get_running_loop()
    lost = out.lost()
    dup = os.dup(sock_fd)
    try:
        while count:
            if out.transport is None:
                raise ConnectionResetError("Connection lost")
            if transport.get_write_buffer_size() == 0:  # type: ignore[attr-defined]
                try:
                    sent = os.sendfile(dup, fd, offset, count)
                except BlockingIOError:
                    sent = -1
                except OSError as exc:
                    if exc.errno in _UNSUPPORTED:
                        return offset, count
                    if isinstance(exc, ConnectionError):
                        raise ConnectionResetError(str(exc)) from exc
                    raise
                if sent == 0:
                    raise EOFError("The file is shorter than its announced length")
                if sent > 0:
                    offset += sent
                    count -= sent
                    continue
            await _writable(loop, dup, lost)
    finally:
        os.close(dup)
    return offset, count


async def _writable(loop: asyncio.AbstractEventLoop, fd: int, lost: asyncio.Future[None]) -> None:
    """Wait until ``fd`` can take more bytes or the connection is lost."""
    waiter = loop.create_future()

    def wake(*_: object) -> None:
        if not waiter.done():
            waiter.set_result(None)

    loop.add_writer(fd, wake)
    lost.add_done_callback(wake)
    try:
        await waiter
    finally:
        loop.remove_writer(fd)
        lost.remove_done_callback(wake)


async def _copy(out: Output, fd: int, offset: int, count: int, chunk_size: int) -> None:
    async for data in read_file(fd, offset, count, chunk_size):
        out.write(data)
        await out.drain()


async def read_file(fd: int, offset: int, count: int, chunk_size: int) -> AsyncIterator[bytes]:
    """``count`` bytes of ``fd`` from ``offset``, in pieces of ``chunk_size``, read in a thread."""
    loop = asyncio.get_running_loop()
    while count:
        # The thread reads from its own duplicate and closes it, and is shielded from our
        # cancellation: no read runs on an fd the caller closes, and no duplicate is left over.
        read = loop.run_in_executor(None, _pread_dup, os.dup(fd), min(chunk_size, count), offset)
        data = await asyncio.shield(read)
        if not data:
            raise EOFError("The file is shorter than its announced length")
        offset += len(data)
        count -= len(data)
        yield data


def _pread_dup(fd: int, size: int, offset: int) -> bytes:
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)
