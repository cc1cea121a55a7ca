"""Sub-applications: the resources behind ``app.add_subapp()`` and ``app.add_domain()``.

A prefixed sub-application's routes are rewritten to carry the prefix, and its router is
reached from the parent's path walk at the prefix; a domain sub-application is tried before the
walk, on every request, when its rule matches the ``Host`` header. Whatever the sub-router
answers is final, its 404 and 405 included (as in aiohttp).
"""

from __future__ import annotations

import abc
import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from yarl import URL

from .exceptions import HTTPMethodNotAllowed
from .matchinfo import UrlMappingMatchInfo
from .resources import AbstractResource, PrefixResource
from .routes import AbstractRoute

if TYPE_CHECKING:
    from .app import Application
    from .request import Request

__all__ = (
    "AbstractRuleMatching",
    "ChainMapProxy",
    "Domain",
    "MaskDomain",
    "MatchedSubAppResource",
    "PrefixedSubAppResource",
)

_Resolved = tuple[UrlMappingMatchInfo | None, set[str]]


def _from_subapp(app: Application, match_info: UrlMappingMatchInfo) -> _Resolved:
    match_info.add_app(app)
    exc = match_info.http_exception
    if isinstance(exc, HTTPMethodNotAllowed):
        return match_info, set(exc.allowed_methods)
    return match_info, set()


class PrefixedSubAppResource(PrefixResource):
    """``app.add_subapp(prefix, subapp)``: every path under ``prefix`` goes to ``subapp``."""

    def __init__(self, prefix: str, app: Application) -> None:
        super().__init__(prefix)
        self._app = app
        self._add_prefix_to_resources(prefix)

    def add_prefix(self, prefix: str) -> None:
        super().add_prefix(prefix)
        self._add_prefix_to_resources(prefix)

    def _add_prefix_to_resources(self, prefix: str) -> None:
        router = self._app.router
        for resource in router._resources:
            resource.add_prefix(prefix)
        router._reindex()

    def url_for(self, *args: str, **kwargs: str) -> URL:
        raise RuntimeError(".url_for() is not supported by sub-application root")

    def get_info(self) -> dict[str, Any]:
        return {"app": self._app, "prefix": self._prefix}

    def _resolve(self, method: str, path: str) -> _Resolved:
        return _from_subapp(self._app, self._app.router._resolve(method, path))

    def _resolve_request(self, method: str, path: str, request: Request) -> _Resolved:
        return _from_subapp(self._app, self._app.router._resolve_request(method, path, request))

    def _uses_request(self) -> bool:
        return self._app.router._uses_request()

    def __len__(self) -> int:
        return len(self._app.router.routes())

    def __iter__(self) -> Iterator[AbstractRoute]:
        return iter(self._app.router.routes())

    def __repr__(self) -> str:
        return f"<PrefixedSubAppResource {self._prefix} -> {self._app!r}>"


class AbstractRuleMatching(abc.ABC):
    """A rule that picks a domain sub-application from the request."""

    @abc.abstractmethod
    async def match(self, request: Request) -> bool:
        """True if the request belongs to the sub-application (must not suspend in squall)."""

    @abc.abstractmethod
    def get_info(self) -> dict[str, Any]: ...

    @property
    @abc.abstractmethod
    def canonical(self) -> str: ...


class Domain(AbstractRuleMatching):
    """Matches one host name, with any port unless the rule names one."""

    re_part = re.compile(r"(?!-)[a-z\d-]{1,63}(?<!-)")

    def __init__(self, domain: str) -> None:
        super().__init__()
        self._domain = self.validation(domain)

    @property
    def canonical(self) -> str:
        return self._domain

    def validation(self, domain: str) -> str:
        """The rule's normal form (lower case, no trailing dot, no port 80), or an error."""
        if not isinstance(domain, str):
            raise TypeError("Domain must be str")
        domain = domain.rstrip(".").lower()
        if not domain:
            raise ValueError("Domain cannot be empty")
        if "://" in domain:
            raise ValueError("Scheme not supported")
        url = URL("http://" + domain)
        host = url.raw_host
        if host is None or not all(self.re_part.fullmatch(p) for p in host.split(".")):
            raise ValueError("Domain not valid")
        return host if url.port == 80 else f"{host}:{url.port}"

    async def match(self, request: Request) -> bool:
        host = request.headers.get("Host")
        if not host:
            return False
        return self.match_domain(host)

    def match_domain(self, host: str) -> bool:
        host = host.lower()
        return host == self._domain or host.partition(":")[0] == self._domain

    def get_info(self) -> dict[str, Any]:
        return {"domain": self._domain}


class MaskDomain(Domain):
    """A domain with ``*`` wildcards (``*.example.com``); a ``*`` also spans dots."""

    re_part = re.compile(r"(?!-)[a-z\d\*-]{1,63}(?<!-)")

    def __init__(self, domain: str) -> None:
        super().__init__(domain)
        self._pattern = self._domain.replace(".", r"\.").replace("*", "[^:]*") + "(:.*)?"
        host_mask, _, self._port = self._domain.partition(":")
        self._mask = re.compile(fnmatch.translate(host_mask), re.IGNORECASE)

    @property
    def canonical(self) -> str:
        return self._pattern

    def match_domain(self, host: str) -> bool:
        hostname, _, port = host.partition(":")
        if self._port and port != self._port:
            return False
        return self._mask.match(hostname) is not None


def _rule_matches(rule: AbstractRuleMatching, request: Request) -> bool:
    """Run ``rule.match(request)`` to completion without a loop (routing is synchronous)."""
    coro = rule.match(request)
    try:
        coro.send(None)
    except StopIteration as done:
        return bool(done.value)
    coro.close()
    raise RuntimeError(f"{type(rule).__name__}.match() must not wait for anything in squall")


class MatchedSubAppResource(PrefixedSubAppResource):
    """``app.add_domain(domain, subapp)``: requests whose rule matches go to ``subapp``."""

    _indexed = False

    def __init__(self, rule: AbstractRuleMatching, app: Application) -> None:
        AbstractResource.__init__(self)
        self._prefix = ""
        self._prefix2 = "/"
        self._app = app
        self._rule = rule

    @property
    def canonical(self) -> str:
        return self._rule.canonical

    def get_info(self) -> dict[str, Any]:
        return {"app": self._app, "rule": self._rule}

    def _resolve(self, method: str, path: str) -> _Resolved:
        return None, set()  # without the request no rule can match

    def _resolve_request(self, method: str, path: str, request: Request) -> _Resolved:
        if not _rule_matches(self._rule, request):
            return None, set()
        return super()._resolve_request(method, path, request)

    def _uses_request(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<MatchedSubAppResource -> {self._app!r}>"


class ChainMapProxy(Mapping[Any, Any]):
    """``request.config_dict``: read-only lookup in the current application, then its parents."""

    __slots__ = ("_maps",)

    def __init__(self, maps: Iterable[Mapping[Any, Any]]) -> None:
        self._maps = tuple(maps)

    def __init_subclass__(cls) -> None:
        raise TypeError(f"Inheritance class {cls.__name__} from ChainMapProxy is forbidden")

    def __getitem__(self, key: Any) -> Any:
        for mapping in self._maps:
            try:
                return mapping[key]
            except KeyError:
                pass
        raise KeyError(key)

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __len__(self) -> int:
        return len(set().union(*self._maps))

    def __iter__(self) -> Iterator[Any]:
        merged: dict[Any, None] = {}
        for mapping in reversed(self._maps):
            merged.update(dict.fromkeys(mapping))
        return iter(merged)

    def __contains__(self, key: object) -> bool:
        return any(key in mapping for mapping in self._maps)

    def __bool__(self) -> bool:
        return any(self._maps)

    def __repr__(self) -> str:
        return f"ChainMapProxy({', '.join(map(repr, self._maps))})"
