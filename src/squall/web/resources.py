"""Resources: a path (plain or with ``{variables}``) or a prefix, with its routes per method.

A resource matches a routing path and picks the route for the method (``_resolve``, the hot path);
the router (``routing.py``) decides which resources to try.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

from yarl import URL

from .._mypyc import mypyc_attr
from .matchinfo import UrlMappingMatchInfo, matched
from .routes import METH_ANY, AbstractRoute, ResourceRoute

if TYPE_CHECKING:
    from .request import Request

__all__ = (
    "AbstractResource",
    "DynamicResource",
    "PlainResource",
    "PrefixResource",
    "Resource",
)

ROUTE_RE = re.compile(r"(\{[_a-zA-Z][^{}]*(?:\{[^{}]*\}[^{}]*)*\})")
PATH_SEP = re.escape("/")


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


# "No route here": shared, never changed (callers copy to merge).
_NO_METHODS: Final[set[str]] = set()


@mypyc_attr(allow_interpreted_subclasses=True)
class AbstractResource(Sized, Iterable[AbstractRoute]):
    """A path (or prefix) with its routes."""

    # Found by the path walk; False: tried on every request (a domain rule).
    _indexed: ClassVar[bool] = True

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


@mypyc_attr(allow_interpreted_subclasses=True)
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
            return matched(route, match_dict or None), self._allowed_methods
        return None, self._allowed_methods

    def __len__(self) -> int:
        return len(self._routes)

    def __iter__(self) -> Iterator[AbstractRoute]:
        return iter(self._routes.values())


@mypyc_attr(allow_interpreted_subclasses=True)
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


@mypyc_attr(allow_interpreted_subclasses=True)
class DynamicResource(Resource):
    """A path with ``{name}`` or ``{name:regex}`` variables."""

    DYN: ClassVar[re.Pattern[str]] = re.compile(r"\{(?P<var>[_a-zA-Z][_a-zA-Z0-9]*)\}")
    DYN_WITH_RE: ClassVar[re.Pattern[str]] = re.compile(
        r"\{(?P<var>[_a-zA-Z][_a-zA-Z0-9]*):(?P<re>.+)\}"
    )
    GOOD: ClassVar[str] = r"[^{}/]+"

    def __init__(self, path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self._orig_path = path
        pattern = ""
        formatter = ""
        # The same path as literals and {name} variables, for _split_match (None: the regex).
        parts: list[str] | None = []
        for part in ROUTE_RE.split(path):
            match = self.DYN.fullmatch(part)
            if match:
                pattern += "(?P<{}>{})".format(match.group("var"), self.GOOD)
                formatter += "{" + match.group("var") + "}"
                if parts is not None:
                    parts.append(match.group("var"))
                continue
            match = self.DYN_WITH_RE.fullmatch(part)
            if match:
                pattern += "(?P<{var}>{re})".format(**match.groupdict())
                formatter += "{" + match.group("var") + "}"
                parts = None
                continue
            if "{" in part or "}" in part:
                raise ValueError(f"Invalid path '{path}'['{part}']")
            part = _requote_path(part)
            formatter += part
            pattern += re.escape(part)
            if parts is not None:
                parts.append(part)
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"Bad pattern '{pattern}': {exc}") from None
        self._pattern = compiled
        self._formatter = formatter
        self._split: tuple[str, tuple[tuple[str, str], ...]] | None = _splittable(parts)

    @property
    def canonical(self) -> str:
        return self._formatter

    def add_prefix(self, prefix: str) -> None:
        self._pattern = re.compile(re.escape(prefix) + self._pattern.pattern)
        self._formatter = prefix + self._formatter
        if self._split is not None:
            self._split = (prefix + self._split[0], self._split[1])

    def _match(self, path: str) -> dict[str, str] | None:
        if self._split is not None:
            values: dict[str, str] = {}
            if not self._split_match(path, values):
                return None
        else:
            match = self._pattern.fullmatch(path)
            if match is None:
                return None
            values = match.groupdict()
        if "%" not in path:
            return values
        return {key: _unquote_path_safe(value) for key, value in values.items()}

    def _split_match(self, path: str, values: dict[str, str]) -> bool:
        """The regex's answer by string search, for the usual paths (see ``_splittable``): True
        if ``path`` matches, with the variables stored into ``values``."""
        split = self._split
        assert split is not None
        head, rest = split
        if not path.startswith(head):
            return False
        pos = len(head)
        size = len(path)
        for name, literal in rest:
            end = path.find("/", pos)
            if end < 0:
                end = size
            if end == pos:
                return False
            value = path[pos:end]
            if "{" in value or "}" in value:
                return False
            values[name] = value
            if literal and not path.startswith(literal, end):
                return False
            pos = end + len(literal)
        return pos == size

    def _resolve(self, method: str, path: str) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        # Resource._resolve, with the match of most requests inline.
        route = self._routes.get(method, self._any_route)
        if self._split is not None and "%" not in path:
            # The common case: the variables go straight into the match info.
            info: dict[str, str] = {} if route is None else matched(route)
            if not self._split_match(path, info):
                return None, _NO_METHODS
            if route is None:
                return None, self._allowed_methods
            return cast(UrlMappingMatchInfo, info), self._allowed_methods
        values = self._match(path)
        if values is None:
            return None, _NO_METHODS
        if route is None:
            return None, self._allowed_methods
        return matched(route, values), self._allowed_methods

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


def _splittable(parts: list[str] | None) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """A path of literals and ``{name}`` variables (``parts`` alternate, literal first) as the
    leading literal and (variable, literal after it) pairs, if string search matches it exactly
    as its regex does: each variable (``[^{}/]+``) runs to the next ``/`` or the end, so it must
    be followed by the end or a literal that starts with ``/``. Else None (the regex decides).
    """
    if parts is None:
        return None
    rest: list[tuple[str, str]] = []
    for i in range(1, len(parts), 2):
        literal = parts[i + 1]
        if literal[:1] != "/" and (literal or i + 2 < len(parts)):
            return None
        rest.append((parts[i], literal))
    return parts[0], tuple(rest)


@mypyc_attr(allow_interpreted_subclasses=True)
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
