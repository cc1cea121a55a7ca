"""Cycle: one request/response cycle of the ``http`` scope, the ``receive``/``send`` pair.

The response goes out through the request's :class:`~squall.http.exchange.Exchange`, which
frames it. ``http.response.start`` is held until the first body message, so that a response
whose whole body comes in one message goes out in a single write with a Content-Length.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..http.errors import RequestPayloadError
from ..http.exchange import WAITING
from ..http.streams import EMPTY_PAYLOAD
from .types import Message

if TYPE_CHECKING:
    from ..http.connection import Connection
    from ..http.exchange import Exchange

__all__ = ("Cycle",)

log = logging.getLogger("squall.asgi")


def _disconnect() -> Message:
    return {"type": "http.disconnect"}


class Cycle:
    """One request/response cycle: the ``receive`` and ``send`` the application is given."""

    __slots__ = (
        "body_done",
        "conn",
        "exchange",
        "headers",
        "started",
        "status",
        "trailers",
        "trailing",
    )

    def __init__(self, exchange: Exchange, conn: Connection) -> None:
        self.exchange = exchange
        self.conn = conn
        self.started = False  # http.response.start received
        self.body_done = False
        self.status = 200
        self.headers: Iterable[tuple[bytes, bytes]] = ()
        self.trailing = False  # http.response.start said trailers follow the body
        self.trailers: list[tuple[bytes, bytes]] = []

    # -- receive --------------------------------------------------------------------------

    async def receive(self) -> Message:
        """The next request event: body pieces, then ``http.disconnect`` when all is over."""
        if not self.body_done:
            body = self.exchange.body
            if body is EMPTY_PAYLOAD:
                self.body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            try:
                # The first wait sends a pending "100 Continue" (unless a response started).
                chunk = await body.readany()
            except (RequestPayloadError, ConnectionError):
                self.body_done = True
                self.exchange.keep_alive = False
                return _disconnect()
            more = not body.at_eof()
            if not more:
                self.body_done = True
            return {"type": "http.request", "body": chunk, "more_body": more}
        await self._wait_over()
        return _disconnect()

    async def _wait_over(self) -> None:
        """Return once the response is complete or the client has left."""
        over = self.exchange.over()
        if not over.done():
            await asyncio.shield(over)  # (shared: a cancelled receive() must not cancel it)

    # -- send -----------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Take ``http.response.start`` / ``http.response.body`` from the application."""
        kind = message["type"]
        if kind == "http.response.body":
            exchange = self.exchange
            if not self.started:
                raise RuntimeError("http.response.body sent before http.response.start")
            if exchange.complete:
                raise RuntimeError("http.response.body sent after the response completed")
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if exchange.left and (more or exchange.started):
                return  # the client has left: ignored quietly, as uvicorn does
            if self.trailing:  # the trailers end the response
                more = True
            if exchange.state == WAITING:  # the http.response.start held so far
                try:
                    exchange.start(self.status, None, None, self.headers, -1 if more else len(body))
                except ValueError as exc:
                    raise RuntimeError(str(exc)) from None
            try:
                if more:
                    exchange.write(body)
                    await exchange.out.drain()
                else:
                    exchange.end(body)
                    if len(body) > 65536:
                        await exchange.out.drain()
            except ConnectionError:  # gone meanwhile: the application learns it from receive()
                exchange.client_left()
        elif kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            status = message["status"]
            if type(status) is not int or not 100 <= status <= 999:
                raise RuntimeError(f"Invalid HTTP status {status!r}")
            self.status = status
            self.headers = message.get("headers", ())
            self.trailing = bool(message.get("trailers", False))
            self.started = True
        elif kind == "http.response.trailers":
            if not self.trailing:
                return  # (not announced in http.response.start: ignored)
            exchange = self.exchange
            if exchange.complete:
                raise RuntimeError("http.response.trailers sent after the response completed")
            self.trailers.extend(message.get("headers", ()))
            if message.get("more_trailers", False):
                return
            if exchange.left:
                return
            if exchange.state == WAITING:  # no body message came: an empty body
                exchange.start(self.status, None, None, self.headers, -1)
            try:
                exchange.end_with_trailers(b"", self.trailers)
            except ValueError as exc:
                raise RuntimeError(str(exc)) from None
            except ConnectionError:
                exchange.client_left()
        else:
            raise RuntimeError(f"Unexpected ASGI message type {kind!r} in the http scope")

    # -- the end --------------------------------------------------------------------------

    def crashed(self, exc: Exception) -> None:
        """The application raised: a 500 if nothing was written yet, else cut the response."""
        if self.exchange.left:
            log.debug("ASGI application raised after the client left", exc_info=exc)
        else:
            log.error("Exception in ASGI application", exc_info=exc)
        self._give_up()

    def unfinished(self) -> None:
        """The application returned without completing its response."""
        if self.exchange.left:
            log.debug("ASGI application returned after the client left")
        elif not self.started:
            log.error("ASGI application returned without starting a response")
        else:
            log.error("ASGI application returned without completing the response")
        self._give_up()

    def _give_up(self) -> None:
        exchange = self.exchange
        if exchange.fail():
            exchange.respond_error(500, "Internal Server Error")
