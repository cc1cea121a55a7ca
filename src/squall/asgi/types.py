"""The ASGI 3 callable's types, as plain aliases (no dependency on asgiref)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
"""The connection scope handed to the application."""
Message = MutableMapping[str, Any]
"""One event dict passed through ``receive()`` or ``send()``."""
Receive = Callable[[], Awaitable[Message]]
"""The awaitable callable that gives the application its next event."""
Send = Callable[[Message], Awaitable[None]]
"""The awaitable callable through which the application sends an event."""
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application: ``async def app(scope, receive, send)``."""

ASGI_VERSION: dict[str, str] = {"version": "3.0", "spec_version": "2.3"}
"""The ``scope["asgi"]`` of every http scope (shared: applications only read it).

2.3, as uvicorn: ``send()`` after the client left is ignored quietly (cycle.py), not an OSError
(2.4's promise). Frameworks read this: Starlette, told 2.4, stops listening for
``http.disconnect`` and waits for an OSError that never comes, so a streaming response whose
client left went on for ever; told 2.3, it cancels the stream on ``http.disconnect``."""
