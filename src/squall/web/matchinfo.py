"""Match info: what a lookup in the router answers (the route and the variables it matched).

A lookup that finds no route answers :class:`MatchInfoError`, whose :class:`SystemRoute` raises the
404 or 405. :func:`matched` builds the match info of a found route on the request path's budget.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from yarl import URL

from .exceptions import HTTPException
from .routes import METH_ANY, AbstractRoute, Handler

if TYPE_CHECKING:
    from .app import Application
    from .request import Request
    from .response import StreamResponse

__all__ = ("MatchInfoError", "SystemRoute", "UrlMappingMatchInfo", "matched")


class SystemRoute(AbstractRoute):
    """The route of a 404 or 405: its handler raises the HTTP exception."""

    def __init__(self, http_exception: HTTPException) -> None:
        super().__init__(METH_ANY, self._handle)
        self._http_exception = http_exception

    async def _handle(self, request: Request) -> StreamResponse:
        raise self._http_exception

    @property
    def name(self) -> None:
        return None

    def get_info(self) -> dict[str, Any]:
        return {"http_exception": self._http_exception}

    def url_for(self, *args: str, **kwargs: str) -> URL:
        raise RuntimeError(".url_for() is not allowed for SystemRoute")

    @property
    def status(self) -> int:
        return self._http_exception.status

    @property
    def reason(self) -> str:
        return self._http_exception.reason

    def __repr__(self) -> str:
        return f"<SystemRoute {self.status}: {self.reason}>"


class UrlMappingMatchInfo(dict[str, str]):
    """The variables a route matched, plus the route and the application stack."""

    # The application stack is ``_root`` (the application that answers the request, set by
    # the server once the route is found, which also freezes the stack) before ``_apps``, the
    # sub-applications a lookup went through, outermost first. Only ``_route`` and ``_root`` are
    # stored for every request; the rest are class-level defaults until a sub-application's
    # lookup or a middleware sets them (then in ``__dict__``): each store costs the compiled
    # request path a generic attribute store.
    __slots__ = ("__dict__", "_root", "_route")

    _apps: tuple[Application, ...] = ()
    _current_app: Application | None = None
    _frozen = False

    def __init__(self, match_dict: dict[str, str], route: AbstractRoute) -> None:
        super().__init__(match_dict)
        self._route = route
        self._root: Application | None = None

    @property
    def handler(self) -> Handler:
        return self._route.handler

    @property
    def route(self) -> AbstractRoute:
        return self._route

    @property
    def expect_handler(self) -> Callable[[Request], Awaitable[StreamResponse | None]]:
        return self._route.handle_expect_header

    @property
    def http_exception(self) -> HTTPException | None:
        return None

    def get_info(self) -> dict[str, Any]:
        return self._route.get_info()

    @property
    def apps(self) -> tuple[Application, ...]:
        root = self._root
        return self._apps if root is None else (root, *self._apps)

    def add_app(self, app: Application) -> None:
        if self._frozen or self._root is not None:
            raise RuntimeError("Cannot change apps stack after .freeze() call")
        if self._current_app is None:
            self._current_app = app
        self._apps = (app, *self._apps)

    @property
    def current_app(self) -> Application:
        app = self._current_app
        if app is None:
            app = self._root
        assert app is not None
        return app

    @current_app.setter
    def current_app(self, app: Application) -> None:
        self._current_app = app

    def freeze(self) -> None:
        self._frozen = True

    def __repr__(self) -> str:
        return f"<MatchInfo {dict.__repr__(self)}: {self._route}>"


class _Matched(UrlMappingMatchInfo):
    """A route's match info as the router builds it: dict's own constructor, then the slots
    stored directly (a third of the cost of ``UrlMappingMatchInfo(match_dict, route)``)."""

    __slots__ = ()
    __init__ = dict.__init__


def matched(route: AbstractRoute, match_dict: dict[str, str] | None = None) -> UrlMappingMatchInfo:
    """``UrlMappingMatchInfo(match_dict or {}, route)``, on the request path's budget (without
    ``match_dict``, the router stores the variables into it)."""
    info: UrlMappingMatchInfo = _Matched() if match_dict is None else _Matched(match_dict)
    info._route = route
    info._root = None
    return info


class MatchInfoError(UrlMappingMatchInfo):
    """The match info of a request no route took (404) or took with another method (405)."""

    __slots__ = ("_exception",)

    def __init__(self, http_exception: HTTPException) -> None:
        self._exception = http_exception
        super().__init__({}, SystemRoute(http_exception))

    @property
    def http_exception(self) -> HTTPException:
        return self._exception

    def __repr__(self) -> str:
        return f"<MatchInfoError {self._exception.status}: {self._exception.reason}>"
