"""The URL dispatcher: resources, routes and match info, with aiohttp's names and lookup order.

Resources are indexed by the static prefix of their path; a lookup walks the request path from
the longest prefix to ``/``, so a plain route is a dict hit and a variable one a dict hit plus one
precompiled regular expression.
"""

from __future__ import annotations

import abc
import inspect
import keyword
import re
import warnings
from collections.abc import Awaitable, Callable, Container, Iterable, Iterator, Mapping, Sized
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from yarl import URL

from .exceptions import HTTPException, HTTPExpectationFailed, HTTPMethodNotAllowed, HTTPNotFound

if TYPE_CHECKING:
    from .app import Application
    from .request import Request
    from .response import StreamResponse
    from .staticfiles import StaticResource

__all__ = (
    "AbstractResource",
    "AbstractRoute",
    "DynamicResource",
    "PlainResource",
    "Resource",
    "ResourceRoute",
    "UrlDispatcher",
    "UrlMappingMatchInfo",
    "View",
)

Handler = Callable[["Request"], Awaitable["StreamResponse"]]

METH_ANY = "*"
HTTP_METHOD_RE = re.compile(r"^[0-9A-Za-z!#\$%&'\*\+\-\.\^_`\|~]+$")
ROUTE_RE = re.compile(r"(\{[_a-zA-Z][^{}]*(?:\{[^{}]*\}[^{}]*)*\})")
PATH_SEP = re.escape("/")
_NAME_SPLIT_RE = re.compile(r"[.:-]")


async def _default_expect_handler(request: Request) -> None:
    """Refuse expectations other than 100-continue (sent lazily, on the first body read)."""
    expect = request.headers.get("Expect", "")
    if request.version == (1, 1) and expect.lower() != "100-continue":
        raise HTTPExpectationFailed(text=f"Unknown Expect: {expect}")


def _unquote_path_safe(value: str) -> str:
    """Match values come from ``path_safe`` (``%2F`` and ``%25`` still encoded): finish decoding."""
    if "%" not in value:
        return value
    return value.replace("%2F", "/").replace("%25", "%")


def _quote_path(value: str) -> str:
    """Percent-encode what a path may not carry as is (``/`` stays, as in aiohttp's url_for)."""
    return URL.build(path=value, encoded=False).raw_path


def _requote_path(value: str) -> str:
    """Encode what must be encoded but keep the ``%XX`` escapes already there."""
    result = _quote_path(value)
    return result.replace("%25", "%") if "%" in value else result


_V = TypeVar("_V")


class AbstractView(abc.ABC):
    """Base of class-based views."""

    def __init__(self, request: Request) -> None:
        self._request = request

    @property
    def request(self) -> Request:
        return self._request

    @abc.abstractmethod
    def __await__(self) -> Any: ...


class View(AbstractView):
    """A class-based view: the method named after the HTTP method handles the request."""

    async def _iter(self) -> StreamResponse:
        method = getattr(self, self.request.method.lower(), None)
        if self.request.method not in _VIEW_METHODS or method is None:
            self._raise_allowed_methods()
        assert method is not None
        resp: StreamResponse = await method()
        return resp

    def __await__(self) -> Any:
        return self._iter().__await__()

    def _raise_allowed_methods(self) -> None:
        allowed = {m for m in _VIEW_METHODS if hasattr(self, m.lower())}
        raise HTTPMethodNotAllowed(self.request.method, allowed)


_VIEW_METHODS = frozenset(
    ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE")
)


class AbstractRoute(abc.ABC):
    """A handler bound to one method."""

    def __init__(
        self,
        method: str,
        handler: Any,
        *,
        expect_handler: Callable[[Request], Awaitable[Any]] | None = None,
        resource: AbstractResource | None = None,
    ) -> None:
        if expect_handler is None:
            expect_handler = _default_expect_handler
        method = method.upper()
        if not HTTP_METHOD_RE.match(method):
            raise ValueError(f"{method} is not allowed HTTP method")
        if not callable(handler):
            raise TypeError(f"Handler {handler!r} should be callable")
        if isinstance(handler, type) and issubclass(handler, AbstractView):
            pass
        elif not inspect.iscoroutinefunction(handler):
            warnings.warn(
                "Bare functions are deprecated, use async ones", DeprecationWarning, stacklevel=4
            )
            handler = _wrap_plain(handler)
        self._method = method
        self._handler = handler
        self._expect_handler = expect_handler
        self._resource = resource

    @property
    def method(self) -> str:
        return self._method

    @property
    def handler(self) -> Handler:
        return self._handler  # type: ignore[no-any-return]

    @property
    def resource(self) -> AbstractResource | None:
        return self._resource

    @property
    @abc.abstractmethod
    def name(self) -> str | None: ...

    @abc.abstractmethod
    def get_info(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def url_for(self, *args: str, **kwargs: str) -> URL: ...

    async def handle_expect_header(self, request: Request) -> StreamResponse | None:
        return await self._expect_handler(request)


def _wrap_plain(handler: Callable[..., Any]) -> Handler:
    async def wrapped(request: Request) -> StreamResponse:
        result = handler(request)
        if inspect.isawaitable(result):
            result = await result
        return result  # type: ignore[no-any-return]

    return wrapped


class ResourceRoute(AbstractRoute):
    """A route that belongs to a resource."""

    def __repr__(self) -> str:
        return f"<ResourceRoute [{self.method}] {self._resource} -> {self.handler!r}"

    @property
    def name(self) -> str | None:
        return self._resource.name if self._resource is not None else None

    def url_for(self, *args: str, **kwargs: str) -> URL:
        assert self._resource is not None
        return self._resource.url_for(*args, **kwargs)

    def get_info(self) -> dict[str, Any]:
        assert self._resource is not None
        return self._resource.get_info()


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

    __slots__ = ("_apps", "_current_app", "_frozen", "_route")

    def __init__(self, match_dict: dict[str, str], route: AbstractRoute) -> None:
        super().__init__(match_dict)
        self._route = route
        self._apps: list[Application] = []
        self._current_app: Application | None = None
        self._frozen = False

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
        return tuple(self._apps)

    def add_app(self, app: Application) -> None:
        if self._frozen:
            raise RuntimeError("Cannot change apps stack after .freeze() call")
        if self._current_app is None:
            self._current_app = app
        self._apps.insert(0, app)

    @property
    def current_app(self) -> Application:
        assert self._current_app is not None
        return self._current_app

    @current_app.setter
    def current_app(self, app: Application) -> None:
        self._current_app = app

    def freeze(self) -> None:
        self._frozen = True

    def __repr__(self) -> str:
        return f"<MatchInfo {dict.__repr__(self)}: {self._route}>"


_NO_METHODS: set[str] = set()  # "no route here": shared, never changed (callers copy to merge)


class _Matched(UrlMappingMatchInfo):
    """A route's match info as the router builds it: dict's own constructor, then the slots
    stored directly (a third of the cost of ``UrlMappingMatchInfo(match_dict, route)``)."""

    __slots__ = ()
    __init__ = dict.__init__


def matched(match_dict: dict[str, str], route: AbstractRoute) -> UrlMappingMatchInfo:
    """``UrlMappingMatchInfo(match_dict, route)``, on the request path's budget."""
    info: UrlMappingMatchInfo = _Matched(match_dict)
    info._route = route
    info._apps = []
    info._current_app = None
    info._frozen = False
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


class AbstractResource(Sized, Iterable[AbstractRoute]):
    """A path (or prefix) with its routes."""

    _indexed = True  # found by the path walk; False: tried on every request (a domain rule)

    def __init__(self, *, name: str | None = None) -> None:
        self._name = name

    @property
    def name(self) -> str | None:
        return self._name

    @property
    @abc.abstractmethod
    def canonical(self) -> str: ...

    @abc.abstractmethod
    def url_for(self, **kwargs: str) -> URL: ...

    @abc.abstractmethod
    def get_info(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def raw_match(self, path: str) -> bool: ...

    @abc.abstractmethod
    def add_prefix(self, prefix: str) -> None: ...

    def freeze(self) -> None:
        pass

    async def resolve(self, request: Request) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        return self._resolve_request(request.method, request._path_safe, request)

    @abc.abstractmethod
    def _resolve(self, method: str, path: str) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        """Match on the method and routing path alone (the hot path)."""

    def _resolve_request(
        self, method: str, path: str, request: Request
    ) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        """Match when something besides the path decides (a domain rule); ``_resolve`` here."""
        return self._resolve(method, path)

    def _uses_request(self) -> bool:
        """True if matching needs more of the request than method and path (domain rules)."""
        return False


class Resource(AbstractResource):
    """A resource with routes per method."""

    def __init__(self, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self._routes: dict[str, ResourceRoute] = {}
        self._any_route: ResourceRoute | None = None
        self._allowed_methods: set[str] = set()

    def add_route(
        self,
        method: str,
        handler: Any,
        *,
        expect_handler: Callable[[Request], Awaitable[Any]] | None = None,
    ) -> ResourceRoute:
        route = self._routes.get(method.upper(), self._any_route)
        if route is not None:
            raise RuntimeError(
                f"Added route will never be executed, method {route.method} is already registered"
            )
        route_obj = ResourceRoute(method, handler, expect_handler=expect_handler, resource=self)
        self.register_route(route_obj)
        return route_obj

    def register_route(self, route: ResourceRoute) -> None:
        if route.method == METH_ANY:
            self._any_route = route
        self._allowed_methods.add(route.method)
        self._routes[route.method] = route

    @abc.abstractmethod
    def _match(self, path: str) -> dict[str, str] | None: ...

    def _resolve(self, method: str, path: str) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        match_dict = self._match(path)
        if match_dict is None:
            return None, _NO_METHODS
        route = self._routes.get(method, self._any_route)
        if route is not None:
            return matched(match_dict, route), self._allowed_methods
        return None, self._allowed_methods

    def __len__(self) -> int:
        return len(self._routes)

    def __iter__(self) -> Iterator[AbstractRoute]:
        return iter(self._routes.values())


class PlainResource(Resource):
    """A fixed path."""

    def __init__(self, path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        assert not path or path.startswith("/")
        self._path = path

    @property
    def canonical(self) -> str:
        return self._path

    def freeze(self) -> None:
        if not self._path:
            self._path = "/"

    def add_prefix(self, prefix: str) -> None:
        self._path = prefix + self._path

    def _match(self, path: str) -> dict[str, str] | None:
        return {} if self._path == path else None

    def raw_match(self, path: str) -> bool:
        return self._path == path

    def get_info(self) -> dict[str, Any]:
        return {"path": self._path}

    def url_for(self) -> URL:  # type: ignore[override]
        return URL.build(path=self._path, encoded=True)

    def __repr__(self) -> str:
        name = f"'{self.name}' " if self.name is not None else ""
        return f"<PlainResource {name} {self._path}>"


class DynamicResource(Resource):
    """A path with ``{name}`` or ``{name:regex}`` variables."""

    DYN = re.compile(r"\{(?P<var>[_a-zA-Z][_a-zA-Z0-9]*)\}")
    DYN_WITH_RE = re.compile(r"\{(?P<var>[_a-zA-Z][_a-zA-Z0-9]*):(?P<re>.+)\}")
    GOOD = r"[^{}/]+"

    def __init__(self, path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self._orig_path = path
        pattern = ""
        formatter = ""
        for part in ROUTE_RE.split(path):
            match = self.DYN.fullmatch(part)
            if match:
                pattern += "(?P<{}>{})".format(match.group("var"), self.GOOD)
                formatter += "{" + match.group("var") + "}"
                continue
            match = self.DYN_WITH_RE.fullmatch(part)
            if match:
                pattern += "(?P<{var}>{re})".format(**match.groupdict())
                formatter += "{" + match.group("var") + "}"
                continue
            if "{" in part or "}" in part:
                raise ValueError(f"Invalid path '{path}'['{part}']")
            part = _requote_path(part)
            formatter += part
            pattern += re.escape(part)
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"Bad pattern '{pattern}': {exc}") from None
        self._pattern = compiled
        self._formatter = formatter
        self._has_groups = bool(compiled.groupindex)

    @property
    def canonical(self) -> str:
        return self._formatter

    def add_prefix(self, prefix: str) -> None:
        self._pattern = re.compile(re.escape(prefix) + self._pattern.pattern)
        self._formatter = prefix + self._formatter

    def _match(self, path: str) -> dict[str, str] | None:
        match = self._pattern.fullmatch(path)
        if match is None:
            return None
        if "%" not in path:
            return match.groupdict()
        return {key: _unquote_path_safe(value) for key, value in match.groupdict().items()}

    def _resolve(self, method: str, path: str) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        # Resource._resolve with _match inline: the route lookup of most requests ends here.
        match = self._pattern.fullmatch(path)
        if match is None:
            return None, _NO_METHODS
        route = self._routes.get(method, self._any_route)
        if route is None:
            return None, self._allowed_methods
        values = match.groupdict()
        if "%" in path:
            values = {key: _unquote_path_safe(value) for key, value in values.items()}
        return matched(values, route), self._allowed_methods

    def raw_match(self, path: str) -> bool:
        return self._orig_path == path

    def get_info(self) -> dict[str, Any]:
        return {"formatter": self._formatter, "pattern": self._pattern}

    def url_for(self, **parts: str) -> URL:
        url = self._formatter.format_map({k: _quote_path(v) for k, v in parts.items()})
        return URL.build(path=url, encoded=True)

    def __repr__(self) -> str:
        name = f"'{self.name}' " if self.name is not None else ""
        return f"<DynamicResource {name} {self._formatter}>"


class PrefixResource(AbstractResource):
    """A resource for every path under a prefix (sub-applications, static files)."""

    def __init__(self, prefix: str, *, name: str | None = None) -> None:
        assert not prefix or prefix.startswith("/"), prefix
        assert prefix in ("", "/") or not prefix.endswith("/"), prefix
        super().__init__(name=name)
        self._prefix = _requote_path(prefix)
        self._prefix2 = self._prefix + "/"

    @property
    def canonical(self) -> str:
        return self._prefix

    def add_prefix(self, prefix: str) -> None:
        self._prefix = prefix + self._prefix
        self._prefix2 = self._prefix + "/"

    def raw_match(self, path: str) -> bool:
        return False


class _ListView(Sized, Iterable[_V], Container[_V]):
    """A read-only view of a list: length, iteration and membership."""

    __slots__ = ("_items",)

    def __init__(self, items: list[_V]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[_V]:
        return iter(self._items)

    def __contains__(self, item: object) -> bool:
        return item in self._items


class ResourcesView(_ListView[AbstractResource]):
    """``router.resources()``: a live, read-only view of the registered resources."""

    __slots__ = ()


class RoutesView(_ListView[AbstractRoute]):
    """``router.routes()``: the routes of every resource, as they were when it was made."""

    __slots__ = ()

    def __init__(self, resources: list[AbstractResource]) -> None:
        super().__init__([route for resource in resources for route in resource])


class UrlDispatcher(Mapping[str, AbstractResource]):
    """The router: ``app.router``. A mapping of route names to resources."""

    def __init__(self) -> None:
        self._resources: list[AbstractResource] = []
        self._named_resources: dict[str, AbstractResource] = {}
        self._index: dict[str, list[AbstractResource]] = {}
        self._by_rule: list[AbstractResource] = []  # add_domain's: tried before the index
        self._frozen = False

    # -- lookup ---------------------------------------------------------------------------

    async def resolve(self, request: Request) -> UrlMappingMatchInfo:
        return self._resolve_request(request.method, request._path_safe, request)

    def _uses_request(self) -> bool:
        """True if some resolution in this router's tree needs the request (a domain rule)."""
        return any(resource._uses_request() for resource in self._resources)

    def _resolve(
        self, method: str, path: str, request: Request | None = None
    ) -> UrlMappingMatchInfo:
        """The hot path, for trees without domain rules (``request`` is not looked at)."""
        index = self._index
        allowed: set[str] | None = None
        part = path
        while True:
            candidates = index.get(part)
            if candidates is not None:
                for resource in candidates:
                    match_info, methods = resource._resolve(method, path)
                    if match_info is not None:
                        return match_info
                    if methods:
                        allowed = methods if allowed is None else allowed | methods
            if part == "/" or not part:
                break
            part = part.rpartition("/")[0] or "/"
        if allowed:
            return MatchInfoError(HTTPMethodNotAllowed(method, allowed))
        return MatchInfoError(HTTPNotFound())

    def _resolve_request(self, method: str, path: str, request: Request) -> UrlMappingMatchInfo:
        """``_resolve`` for any tree: domain rules first (as aiohttp), then the path walk."""
        allowed: set[str] = set()
        for resource in self._by_rule:
            match_info, methods = resource._resolve_request(method, path, request)
            if match_info is not None:
                return match_info
            allowed |= methods
        part = path
        while True:
            for resource in self._index.get(part, ()):
                match_info, methods = resource._resolve_request(method, path, request)
                if match_info is not None:
                    return match_info
                allowed |= methods
            if part == "/" or not part:
                break
            part = part.rpartition("/")[0] or "/"
        if allowed:
            return MatchInfoError(HTTPMethodNotAllowed(method, allowed))
        return MatchInfoError(HTTPNotFound())

    # -- the mapping of names -------------------------------------------------------------

    def __iter__(self) -> Iterator[str]:
        return iter(self._named_resources)

    def __len__(self) -> int:
        return len(self._named_resources)

    def __contains__(self, resource: object) -> bool:
        return resource in self._named_resources

    def __getitem__(self, name: str) -> AbstractResource:
        return self._named_resources[name]

    def resources(self) -> ResourcesView:
        return ResourcesView(self._resources)

    def routes(self) -> RoutesView:
        return RoutesView(self._resources)

    def named_resources(self) -> Mapping[str, AbstractResource]:
        return MappingProxyType(self._named_resources)

    # -- registration ---------------------------------------------------------------------

    def _check_frozen(self) -> None:
        if self._frozen:
            raise RuntimeError("Cannot register a resource into frozen router.")

    def register_resource(self, resource: AbstractResource) -> None:
        self._check_frozen()
        name = resource.name
        if name is not None:
            for part in _NAME_SPLIT_RE.split(name):
                if keyword.iskeyword(part):
                    raise ValueError(
                        f"Incorrect route name {name!r}, python keywords cannot be used"
                        " for route name"
                    )
                if not part.isidentifier():
                    raise ValueError(
                        f"Incorrect route name {name!r}, the name should be a sequence of python"
                        " identifiers separated by dash, dot or column"
                    )
            if name in self._named_resources:
                raise ValueError(
                    f"Duplicate {name!r}, already handled by {self._named_resources[name]!r}"
                )
            self._named_resources[name] = resource
        self._resources.append(resource)
        self._index_resource(resource)

    def _index_key(self, resource: AbstractResource) -> str:
        key = resource.canonical
        if "{" in key:
            key = key.partition("{")[0].rpartition("/")[0]
        return key.rstrip("/") or "/"

    def _index_resource(self, resource: AbstractResource) -> None:
        if resource._indexed:
            self._index.setdefault(self._index_key(resource), []).append(resource)
        else:
            self._by_rule.append(resource)

    def _reindex(self) -> None:
        """Index again after the paths changed (this router's app became a sub-application)."""
        self._index = {}
        self._by_rule = []
        for resource in self._resources:
            self._index_resource(resource)

    def add_resource(self, path: str, *, name: str | None = None) -> Resource:
        if path and not path.startswith("/"):
            raise ValueError("path should be started with / or be empty")
        if self._resources:
            last = self._resources[-1]
            if isinstance(last, Resource) and last.name == name and last.raw_match(path):
                return last
        if not ("{" in path or "}" in path or ROUTE_RE.search(path)):
            # "" stays "" until freeze: in a sub-application it is the prefix itself
            resource: Resource = PlainResource(path, name=name)
        else:
            resource = DynamicResource(path, name=name)
        self.register_resource(resource)
        return resource

    def add_route(
        self,
        method: str,
        path: str,
        handler: Any,
        *,
        name: str | None = None,
        expect_handler: Callable[[Request], Awaitable[Any]] | None = None,
    ) -> AbstractRoute:
        resource = self.add_resource(path, name=name)
        return resource.add_route(method, handler, expect_handler=expect_handler)

    def add_head(self, path: str, handler: Any, **kwargs: Any) -> AbstractRoute:
        return self.add_route("HEAD", path, handler, **kwargs)

    def add_options(self, path: str, handler: Any, **kwargs: Any) -> AbstractRoute:
        return self.add_route("OPTIONS", path, handler, **kwargs)

    def add_get(
        self,
        path: str,
        handler: Any,
        *,
        name: str | None = None,
        allow_head: bool = True,
        **kwargs: Any,
    ) -> AbstractRoute:
        """GET (and, unless ``allow_head=False``, HEAD) on ``path``."""
        resource = self.add_resource(path, name=name)
        if allow_head:
            resource.add_route("HEAD", handler, **kwargs)
        return resource.add_route("GET", handler, **kwargs)

    def add_post(self, path: str, handler: Any, **kwargs: Any) -> AbstractRoute:
        return self.add_route("POST", path, handler, **kwargs)

    def add_put(self, path: str, handler: Any, **kwargs: Any) -> AbstractRoute:
        return self.add_route("PUT", path, handler, **kwargs)

    def add_patch(self, path: str, handler: Any, **kwargs: Any) -> AbstractRoute:
        return self.add_route("PATCH", path, handler, **kwargs)

    def add_delete(self, path: str, handler: Any, **kwargs: Any) -> AbstractRoute:
        return self.add_route("DELETE", path, handler, **kwargs)

    def add_view(self, path: str, handler: type[AbstractView], **kwargs: Any) -> AbstractRoute:
        return self.add_route(METH_ANY, path, handler, **kwargs)

    def add_static(
        self,
        prefix: str,
        path: Any,
        *,
        name: str | None = None,
        expect_handler: Callable[[Request], Awaitable[Any]] | None = None,
        chunk_size: int = 256 * 1024,
        show_index: bool = False,
        follow_symlinks: bool = False,
        append_version: bool = False,
    ) -> StaticResource:
        """Serve the files of directory ``path`` under ``prefix`` (see ``web/staticfiles.py``)."""
        from .staticfiles import StaticResource  # staticfiles.py builds on this module

        assert prefix.startswith("/")
        resource = StaticResource(
            prefix[:-1] if prefix.endswith("/") else prefix,
            path,
            name=name,
            expect_handler=expect_handler,
            chunk_size=chunk_size,
            show_index=show_index,
            follow_symlinks=follow_symlinks,
            append_version=append_version,
        )
        self.register_resource(resource)
        return resource

    def add_routes(self, routes: Iterable[Any]) -> list[AbstractRoute]:
        registered: list[AbstractRoute] = []
        for route_def in routes:
            registered.extend(route_def.register(self))
        return registered

    def freeze(self) -> None:
        self._frozen = True
        for resource in self._resources:
            resource.freeze()
