"""The URL dispatcher (``app.router``): resources in aiohttp's lookup order.

Resources are indexed by the static prefix of their path; a lookup walks the request path from
the longest prefix to ``/``, so a plain route is a dict hit and a variable one a dict hit plus one
precompiled regular expression.

The pieces it routes with have modules of their own: routes (``routes.py``), class-based views
(``views.py``), resources (``resources.py``) and match info (``matchinfo.py``). Their public names
are importable from here as well, as they were when this module held them all.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Awaitable, Callable, Container, Iterable, Iterator, Mapping, Sized
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from .._mypyc import mypyc_attr
from .exceptions import HTTPMethodNotAllowed, HTTPNotFound
from .matchinfo import MatchInfoError, UrlMappingMatchInfo
from .matchinfo import SystemRoute as SystemRoute
from .matchinfo import matched as matched
from .resources import PATH_SEP as PATH_SEP
from .resources import ROUTE_RE, AbstractResource, DynamicResource, PlainResource, Resource
from .resources import PrefixResource as PrefixResource
from .routes import HTTP_METHOD_RE as HTTP_METHOD_RE
from .routes import METH_ANY, AbstractRoute, ResourceRoute
from .routes import Handler as Handler
from .views import AbstractView, View

if TYPE_CHECKING:
    from .request import Request
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

_NAME_SPLIT_RE = re.compile(r"[.:-]")

_V = TypeVar("_V")


@mypyc_attr(allow_interpreted_subclasses=True)
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


@mypyc_attr(allow_interpreted_subclasses=True)
class ResourcesView(_ListView[AbstractResource]):
    """``router.resources()``: a live, read-only view of the registered resources."""

    __slots__ = ()


@mypyc_attr(allow_interpreted_subclasses=True)
class RoutesView(_ListView[AbstractRoute]):
    """``router.routes()``: the routes of every resource, as they were when it was made."""

    __slots__ = ()

    def __init__(self, resources: list[AbstractResource]) -> None:
        super().__init__([route for resource in resources for route in resource])


@mypyc_attr(allow_interpreted_subclasses=True)
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
            cut = part.rfind("/")
            part = part[:cut] if cut > 0 else "/"
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

    @property
    def frozen(self) -> bool:
        return self._frozen

    def freeze(self) -> None:
        self._frozen = True
        for resource in self._resources:
            resource.freeze()
