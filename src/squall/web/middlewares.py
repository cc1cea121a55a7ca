"""Middlewares: the ``@web.middleware`` marker, composing them, and normalize_path_middleware."""

from __future__ import annotations

import re
import warnings
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial, update_wrapper
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .exceptions import HTTPMove, HTTPPermanentRedirect
from .matchinfo import SystemRoute

if TYPE_CHECKING:
    from .app import Application
    from .request import Request
    from .response import StreamResponse

__all__ = ("middleware", "normalize_path_middleware")

Handler = Callable[["Request"], Awaitable["StreamResponse"]]
Middleware = Callable[["Request", Handler], Awaitable["StreamResponse"]]
_F = TypeVar("_F")

_SLASHES_RE = re.compile("//+")
_LEADING_SLASHES_RE = re.compile("^//+")


def middleware(f: _F) -> _F:
    """Mark a new-style middleware, ``async def mw(request, handler)``.

    As in aiohttp, an unmarked middleware is an old-style factory, ``async def factory(app,
    handler)`` returning the handler to call (deprecated: it warns when the application freezes,
    and the factory is called for each request).
    """
    f.__middleware_version__ = 1  # type: ignore[attr-defined]
    return f


def is_new_style(mw: Any) -> bool:
    """Whether ``mw`` is marked by :func:`middleware` (else it is an old-style factory)."""
    return getattr(mw, "__middleware_version__", None) == 1


def warn_old_style(middlewares: Iterable[Any]) -> None:
    """The DeprecationWarning aiohttp gives for each old-style middleware factory."""
    for mw in middlewares:
        if not is_new_style(mw):
            warnings.warn(
                f'old-style middleware "{mw!r}" deprecated, see #2252',
                DeprecationWarning,
                stacklevel=3,
            )


async def _old_style(
    request: Request, handler: Handler, *, factory: Any, app: Application
) -> StreamResponse:
    """An old-style middleware factory's turn: the handler it makes, called (per request, as
    in aiohttp)."""
    inner = await factory(app, handler)
    return cast("StreamResponse", await inner(request))


def compose(handler: Handler, middlewares: Iterable[Any], app: Application) -> Handler:
    """Wrap ``handler`` in ``middlewares`` (``app``'s) so that the first listed runs first."""
    for mw in reversed(tuple(middlewares)):
        if is_new_style(mw):
            handler = update_wrapper(_link(mw, handler), handler)
        else:
            handler = update_wrapper(
                partial(_old_style, handler=handler, factory=mw, app=app), handler
            )
    return handler


def _link(mw: Any, handler: Handler) -> Handler:
    """``link(request)`` is ``mw(request, handler=handler)``. (aiohttp binds with
    ``functools.partial(mw, handler=handler)``, which copies its keyword into a new dict and
    calls through a tuple on every request; a function passes the keyword as it is.)"""

    def link(request: Request) -> Awaitable[StreamResponse]:
        return cast("Awaitable[StreamResponse]", mw(request, handler=handler))

    return link


async def _as_current_app(
    request: Request, handler: Handler, *, app: Application
) -> StreamResponse:
    """Run the rest of the chain with ``request.app`` being ``app``."""
    match_info = request.match_info
    previous = match_info.current_app
    match_info.current_app = app
    try:
        return await handler(request)
    finally:
        match_info.current_app = previous


def compose_apps(handler: Handler, apps: Sequence[Application]) -> Handler:
    """Wrap a sub-application's handler: the root's middlewares first, the innermost app's last.

    As in aiohttp, ``request.app`` is, in each middleware, the application it belongs to.
    """
    if not any(app._middlewares for app in apps):
        return handler  # request.app already is the innermost application
    for app in reversed(apps):
        handler = compose(handler, app._middlewares, app)
        handler = update_wrapper(partial(_as_current_app, handler=handler, app=app), handler)
    return handler


def normalize_path_middleware(
    *,
    append_slash: bool = True,
    remove_slash: bool = False,
    merge_slashes: bool = True,
    redirect_class: type[HTTPMove] = HTTPPermanentRedirect,
) -> Middleware:
    """A middleware that redirects a 404/405 to the normalised path, if that one resolves.

    Tried in order, first that resolves wins: merged slashes; the slash appended (or removed);
    both. The query string is kept. ``append_slash`` and ``remove_slash`` exclude each other.
    """
    assert not (append_slash and remove_slash), "Cannot both remove and append slash"

    @middleware
    async def impl(request: Request, handler: Handler) -> StreamResponse:
        if isinstance(request.match_info.route, SystemRoute):
            path, mark, query = request.raw_path.partition("?")
            query = mark + query
            candidates = []
            if merge_slashes:
                candidates.append(_SLASHES_RE.sub("/", path))
            if append_slash and not request.path.endswith("/"):
                candidates.append(path + "/")
            if remove_slash and request.path.endswith("/"):
                candidates.append(path[:-1])
            if merge_slashes and append_slash:
                candidates.append(_SLASHES_RE.sub("/", path + "/"))
            if merge_slashes and remove_slash:
                merged = _SLASHES_RE.sub("/", path)
                if merged.endswith("/"):  # aiohttp also cuts a last character that is no slash
                    candidates.append(merged[:-1])
            for candidate in candidates:
                # never "//host/...": that would redirect to another site
                candidate = _LEADING_SLASHES_RE.sub("/", candidate)
                alt = cast("Request", request.clone(rel_url=candidate))
                match_info = await request.app.router.resolve(alt)
                if match_info.http_exception is None:
                    raise redirect_class(alt.raw_path + query)
        return await handler(request)

    return impl
