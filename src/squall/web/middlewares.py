"""The ``@web.middleware`` marker and composing middlewares around a handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial, update_wrapper
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .request import Request
    from .response import StreamResponse

__all__ = ("middleware",)

Handler = Callable[["Request"], Awaitable["StreamResponse"]]
Middleware = Callable[["Request", Handler], Awaitable["StreamResponse"]]
_F = TypeVar("_F")


def middleware(f: _F) -> _F:
    """Mark a new-style middleware, ``async def mw(request, handler)`` (optional, as in aiohttp)."""
    f.__middleware_version__ = 1  # type: ignore[attr-defined]
    return f


def compose(handler: Handler, middlewares: Iterable[Any]) -> Handler:
    """Wrap ``handler`` in ``middlewares`` so that the first listed runs first."""
    for mw in reversed(tuple(middlewares)):
        handler = update_wrapper(partial(mw, handler=handler), handler)
    return handler
