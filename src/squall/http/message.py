"""RawRequest: what the wire hands to an application for one request."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .streams import StreamReader


class RawRequest:
    """One parsed request head plus its body stream.

    Everything is kept as the parser produced it (bytes, a list of raw header pairs); the web and
    ASGI layers decode only what their applications ask for.
    """

    __slots__ = (
        "body",
        "expect_continue",
        "headers",
        "keep_alive",
        "method",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: bytes,
        version: str,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        upgrade: bool,
        expect_continue: bool,
        body: StreamReader,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.upgrade = upgrade
        self.expect_continue = expect_continue
        self.body = body

    def __repr__(self) -> str:
        return f"<RawRequest {self.method} {self.target!r} HTTP/{self.version}>"
