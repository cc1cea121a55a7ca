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

ASGI_VERSION: dict[str, str] = {"version": "3.0", "spec_version": "2.4"}
"""The ``scope["asgi"]`` of every http scope (shared: applications only read it)."""
