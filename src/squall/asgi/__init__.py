"""ASGI 3 on squall's HTTP layer: serve Starlette, FastAPI or any ASGI application.

- :class:`ASGIHandler` is the request handler to give :class:`squall.http.HttpServer`;
- :class:`Lifespan` runs the application's ``lifespan`` scope;
- :func:`serve` does both and listens, as an async context manager or start/stop object.

The ``http`` (HTTP/1.1 and HTTP/2), ``websocket`` and ``lifespan`` scopes are served; docs/asgi.md
is the API at a glance.
"""

from .handler import ASGIHandler
from .lifespan import Lifespan, LifespanFailed
from .server import ASGIServer, serve
from .types import ASGIApp, Message, Receive, Scope, Send

__all__ = (
    "ASGIApp",
    "ASGIHandler",
    "ASGIServer",
    "Lifespan",
    "LifespanFailed",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "serve",
)
