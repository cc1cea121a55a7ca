"""Route definitions: ``web.get(...)``, ``RouteTableDef``, for ``app.add_routes``."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from .routes import METH_ANY

if TYPE_CHECKING:
    from .routes import AbstractRoute
    from .routing import UrlDispatcher

__all__ = (
    "AbstractRouteDef",
    "RouteDef",
    "RouteTableDef",
    "StaticDef",
    "delete",
    "get",
    "head",
    "options",
    "patch",
    "post",
    "put",
    "route",
    "static",
    "view",
)


class AbstractRouteDef(abc.ABC):
    @abc.abstractmethod
    def register(self, router: UrlDispatcher) -> list[AbstractRoute]: ...


@dataclass(frozen=True, repr=False)
class RouteDef(AbstractRouteDef):
    """One method, path and handler, registered when added to an application."""

    method: str
    path: str
    handler: Any
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        info = "".join(f", {name}={value!r}" for name, value in sorted(self.kwargs.items()))
        return f"<RouteDef {self.method} {self.path} -> {self.handler.__name__!r}{info}>"

    def register(self, router: UrlDispatcher) -> list[AbstractRoute]:
        if self.method == "GET":
            return [router.add_get(self.path, self.handler, **self.kwargs)]
        return [router.add_route(self.method, self.path, self.handler, **self.kwargs)]


@dataclass(frozen=True, repr=False)
class StaticDef(AbstractRouteDef):
    """A directory served under a prefix, registered with ``router.add_static``."""

    prefix: str
    path: Any
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        info = "".join(f", {name}={value!r}" for name, value in sorted(self.kwargs.items()))
        return f"<StaticDef {self.prefix} -> {self.path}{info}>"

    def register(self, router: UrlDispatcher) -> list[AbstractRoute]:
        resource = router.add_static(self.prefix, self.path, **self.kwargs)
        return list(resource.get_info()["routes"].values())


def static(prefix: str, path: Any, **kwargs: Any) -> StaticDef:
    return StaticDef(prefix, path, kwargs)


def route(method: str, path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return RouteDef(method, path, handler, kwargs)


def head(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return route("HEAD", path, handler, **kwargs)


def options(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return route("OPTIONS", path, handler, **kwargs)


def get(
    path: str, handler: Any, *, name: str | None = None, allow_head: bool = True, **kwargs: Any
) -> RouteDef:
    return route("GET", path, handler, name=name, allow_head=allow_head, **kwargs)


def post(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return route("POST", path, handler, **kwargs)


def put(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return route("PUT", path, handler, **kwargs)


def patch(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return route("PATCH", path, handler, **kwargs)


def delete(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return route("DELETE", path, handler, **kwargs)


def view(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return route(METH_ANY, path, handler, **kwargs)


class RouteTableDef(Sequence[AbstractRouteDef]):
    """Route definitions collected with decorators: ``@routes.get('/')``."""

    def __init__(self) -> None:
        self._items: list[AbstractRouteDef] = []

    def __repr__(self) -> str:
        return f"<RouteTableDef count={len(self._items)}>"

    @overload
    def __getitem__(self, index: int) -> AbstractRouteDef: ...
    @overload
    def __getitem__(self, index: slice) -> list[AbstractRouteDef]: ...
    def __getitem__(self, index: int | slice) -> AbstractRouteDef | list[AbstractRouteDef]:
        return self._items[index]

    def __iter__(self) -> Iterator[AbstractRouteDef]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def route(self, method: str, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        def inner(handler: Any) -> Any:
            self._items.append(RouteDef(method, path, handler, kwargs))
            return handler

        return inner

    def head(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("HEAD", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("DELETE", path, **kwargs)

    def options(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("OPTIONS", path, **kwargs)

    def view(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route(METH_ANY, path, **kwargs)

    def static(self, prefix: str, path: Any, **kwargs: Any) -> None:
        self._items.append(StaticDef(prefix, path, kwargs))
