"""Application: the router, middlewares, shared state and the lifecycle signals."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from .access_log import AccessLogger
from .appserver import app_server, check_access_log_class
from .keys import AppKey, NotAppKeyWarning
from .matchinfo import UrlMappingMatchInfo
from .middlewares import Handler, compose, compose_apps, warn_old_style
from .routing import UrlDispatcher
from .subapps import Domain, MaskDomain, MatchedSubAppResource, PrefixedSubAppResource

if TYPE_CHECKING:
    from ..http.server import HttpServer
    from .routes import AbstractRoute

__all__ = ("AppKey", "Application", "CleanupError", "NotAppKeyWarning")

web_logger = logging.getLogger("squall.web")

_T = TypeVar("_T")
_R = TypeVar("_R", bound=PrefixedSubAppResource)


class FrozenList(list[_T]):
    """A list that refuses changes once frozen (aiohttp's ``frozenlist.FrozenList``)."""

    __slots__ = ("_frozen",)

    def __init__(self, items: Iterable[_T] = ()) -> None:
        super().__init__(items)
        self._frozen = False

    @property
    def frozen(self) -> bool:
        return self._frozen

    def freeze(self) -> None:
        self._frozen = True

    def _check(self) -> None:
        if self._frozen:
            raise RuntimeError("Cannot modify frozen list.")

    def append(self, item: _T) -> None:
        self._check()
        super().append(item)

    def insert(self, index: Any, item: _T) -> None:
        self._check()
        super().insert(index, item)

    def extend(self, items: Iterable[_T]) -> None:
        self._check()
        super().extend(items)

    def remove(self, item: _T) -> None:
        self._check()
        super().remove(item)

    def pop(self, index: Any = -1) -> _T:
        self._check()
        return super().pop(index)

    def clear(self) -> None:
        self._check()
        super().clear()

    def __setitem__(self, index: Any, value: Any) -> None:
        self._check()
        super().__setitem__(index, value)

    def __delitem__(self, index: Any) -> None:
        self._check()
        super().__delitem__(index)

    def __iadd__(self, items: Iterable[_T]) -> FrozenList[_T]:  # type: ignore[override,misc]
        self._check()
        super().__iadd__(items)
        return self

    def __repr__(self) -> str:
        return f"<FrozenList(frozen={self._frozen}, {list(self)!r})>"


class Signal(FrozenList[Callable[..., Awaitable[Any]]]):
    """A list of async callbacks, frozen with its application: ``await signal.send(...)``."""

    __slots__ = ("_owner",)

    def __init__(self, owner: object) -> None:
        super().__init__()
        self._owner = owner

    async def send(self, *args: Any, **kwargs: Any) -> None:
        if not self._frozen:
            raise RuntimeError("Cannot send non-frozen signal.")
        for receiver in self:
            await receiver(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Signal owner={self._owner}, frozen={self._frozen}, {list(self)!r}>"


class CleanupError(RuntimeError):
    """One or more cleanup_ctx exits raised."""

    @property
    def exceptions(self) -> list[BaseException]:
        return cast(list[BaseException], self.args[1])


class CleanupContext(Signal):
    """``app.cleanup_ctx``: async generators run to their yield on startup, resumed on cleanup."""

    __slots__ = ("_exits",)

    def __init__(self, owner: object) -> None:
        super().__init__(owner)
        self._exits: list[AsyncIterator[None] | AbstractAsyncContextManager[None]] = []

    async def _on_startup(self, app: Application) -> None:
        for cb in self:
            ctx: Any = cb(app)
            if hasattr(ctx, "__aenter__"):
                await ctx.__aenter__()
            else:
                await ctx.__anext__()
            self._exits.append(ctx)

    async def _on_cleanup(self, app: Application) -> None:
        errors: list[BaseException] = []
        for ctx in reversed(self._exits):
            try:
                if hasattr(ctx, "__aexit__"):
                    await ctx.__aexit__(None, None, None)
                else:
                    await ctx.__anext__()
            except StopAsyncIteration:
                pass
            except (Exception, asyncio_cancelled()) as exc:
                errors.append(exc)
            else:
                if not hasattr(ctx, "__aexit__"):
                    errors.append(RuntimeError(f"{ctx!r} has more than one 'yield'"))
        self._exits.clear()
        if errors:
            if len(errors) == 1:
                raise errors[0]
            raise CleanupError("Multiple errors on cleanup stage", errors)


def asyncio_cancelled() -> type[BaseException]:
    import asyncio

    return asyncio.CancelledError


class Application(MutableMapping[str | AppKey[Any], Any]):
    """A web application: ``app.router``, ``app.middlewares``, ``app[key]``, lifecycle signals."""

    def __init__(
        self,
        *,
        logger: logging.Logger = web_logger,
        router: UrlDispatcher | None = None,
        middlewares: Iterable[Any] = (),
        handler_args: dict[str, Any] | None = None,
        client_max_size: int = 1024**2,
        client_max_fields: int = 1000,
        loop: Any = None,
        debug: Any = ...,
    ) -> None:
        if router is None:
            router = UrlDispatcher()
        else:  # as aiohttp 3.14
            warnings.warn("router argument is deprecated", DeprecationWarning, stacklevel=2)
        self._router = router
        self._handler_args = handler_args
        self.logger = logger
        self._middlewares: FrozenList[Any] = FrozenList(middlewares)
        self._middlewares_frozen = False
        self._state: dict[str | AppKey[Any], Any] = {}
        self._frozen = False
        self._pre_frozen = False
        self._subapps: list[Application] = []
        self._on_response_prepare = Signal(self)
        self._on_startup = Signal(self)
        self._on_shutdown = Signal(self)
        self._on_cleanup = Signal(self)
        self._cleanup_ctx = CleanupContext(self)
        self._on_startup.append(self._cleanup_ctx._on_startup)
        self._on_cleanup.append(self._cleanup_ctx._on_cleanup)
        self._client_max_size = client_max_size
        self._client_max_fields = client_max_fields
        self._composed: dict[Any, Handler] = {}
        if loop is not None:  # as aiohttp 3.14
            warnings.warn("loop argument is deprecated", DeprecationWarning, stacklevel=2)
        self._loop: asyncio.AbstractEventLoop | None = loop
        if debug is not ...:  # as aiohttp 3.14
            warnings.warn("debug argument is deprecated", DeprecationWarning, stacklevel=2)
        self._debug: Any = debug  # ... until a loop is set: then that loop's debug mode

    def __init_subclass__(cls: type[Application]) -> None:
        warnings.warn(
            f"Inheritance class {cls.__name__} from web.Application is discouraged",
            DeprecationWarning,
            stacklevel=2,
        )

    # -- state ----------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    @overload
    def __getitem__(self, key: AppKey[_T]) -> _T: ...
    @overload
    def __getitem__(self, key: str) -> Any: ...
    def __getitem__(self, key: str | AppKey[_T]) -> Any:
        return self._state[key]

    def _check_frozen(self) -> None:
        if self._frozen:
            warnings.warn(
                "Changing state of started or joined application is deprecated",
                DeprecationWarning,
                stacklevel=3,
            )

    def __setitem__(self, key: str | AppKey[Any], value: Any) -> None:
        self._check_frozen()
        if not isinstance(key, AppKey):
            warnings.warn(
                "It is recommended to use web.AppKey instances for keys.\n"
                + "https://docs.aiohttp.org/en/stable/web_advanced.html#application-s-config",
                category=NotAppKeyWarning,
                stacklevel=2,
            )
        self._state[key] = value

    def __delitem__(self, key: str | AppKey[Any]) -> None:
        self._check_frozen()
        del self._state[key]

    def __len__(self) -> int:
        return len(self._state)

    def __iter__(self) -> Iterator[str | AppKey[Any]]:
        return iter(self._state)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<Application 0x{id(self):x}>"

    def __call__(self) -> Application:
        """The application itself: an app factory's result, as in aiohttp (gunicorn, tests)."""
        return self

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """Deprecated, as in aiohttp: the loop the application was set up on (or given as
        ``Application(loop=)``), else the running one."""
        warnings.warn("loop property is deprecated", DeprecationWarning, stacklevel=2)
        if self._loop is not None:
            return self._loop
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def _set_loop(self, loop: asyncio.AbstractEventLoop | None, *, replace: bool = False) -> None:
        """Bind the application (and its sub-applications) to ``loop`` (None: the current
        one), as aiohttp does when it is served. RuntimeError if it is bound to another loop,
        unless ``replace`` (AppRunner: an application may be served again on a new loop)."""
        if loop is None:
            loop = asyncio.get_event_loop()
        if self._loop is not None and self._loop is not loop and not replace:
            raise RuntimeError("web.Application instance initialized with different loop")
        self._loop = loop
        if self._debug is ...:
            self._debug = loop.get_debug()
        for subapp in self._subapps:
            subapp._set_loop(loop, replace=replace)

    # -- configuration --------------------------------------------------------------------

    @property
    def router(self) -> UrlDispatcher:
        return self._router

    @property
    def middlewares(self) -> FrozenList[Any]:
        return self._middlewares

    @property
    def frozen(self) -> bool:
        return self._frozen

    @property
    def pre_frozen(self) -> bool:
        return self._pre_frozen

    @property
    def on_response_prepare(self) -> Signal:
        return self._on_response_prepare

    @property
    def on_startup(self) -> Signal:
        return self._on_startup

    @property
    def on_shutdown(self) -> Signal:
        return self._on_shutdown

    @property
    def on_cleanup(self) -> Signal:
        return self._on_cleanup

    @property
    def cleanup_ctx(self) -> CleanupContext:
        return self._cleanup_ctx

    @property
    def debug(self) -> bool:
        """Deprecated, as in aiohttp: ``Application(debug=)``, else the debug mode of the loop
        the application was set up on (False before)."""
        warnings.warn("debug property is deprecated", DeprecationWarning, stacklevel=2)
        return False if self._debug is ... else bool(self._debug)

    @property
    def client_max_size(self) -> int:
        return self._client_max_size

    def add_routes(self, routes: Iterable[Any]) -> list[AbstractRoute]:
        return self.router.add_routes(routes)

    def pre_freeze(self) -> None:
        if self._pre_frozen:
            return
        self._pre_frozen = True
        self._middlewares_frozen = True
        warn_old_style(self._middlewares)
        self._on_response_prepare.freeze()
        self._router.freeze()
        self._on_startup.freeze()
        self._on_shutdown.freeze()
        self._on_cleanup.freeze()
        self._cleanup_ctx.freeze()
        self._middlewares.freeze()
        for subapp in self._subapps:
            subapp.pre_freeze()

    def freeze(self) -> None:
        if self._frozen:
            return
        self.pre_freeze()
        self._frozen = True
        for subapp in self._subapps:
            subapp.freeze()

    # -- sub-applications -----------------------------------------------------------------

    def add_subapp(self, prefix: str, subapp: Application) -> PrefixedSubAppResource:
        """Serve ``subapp`` under ``prefix``; its signals run with this application's."""
        if not isinstance(prefix, str):
            raise TypeError("Prefix must be str")
        prefix = prefix.rstrip("/")
        if not prefix:
            raise ValueError("Prefix cannot be empty")
        self._check_subapp(subapp)
        return self._add_subapp(PrefixedSubAppResource(prefix, subapp), subapp)

    def add_domain(self, domain: str, subapp: Application) -> MatchedSubAppResource:
        """Serve ``subapp`` for requests whose Host matches ``domain`` (``*`` wildcards too)."""
        if not isinstance(domain, str):
            raise TypeError("Domain must be str")
        rule = MaskDomain(domain) if "*" in domain else Domain(domain)
        self._check_subapp(subapp)
        return self._add_subapp(MatchedSubAppResource(rule, subapp), subapp)

    def _with_subapps(self) -> Iterator[Application]:
        """This application and all its sub-applications, nested ones included."""
        yield self
        for subapp in self._subapps:
            yield from subapp._with_subapps()

    def _check_subapp(self, subapp: Application) -> None:
        if self._frozen:
            raise RuntimeError("Cannot add sub application to frozen application")
        if subapp._frozen:
            raise RuntimeError("Cannot add frozen application")
        if subapp._pre_frozen:  # aiohttp takes it and prefixes its routes a second time
            raise RuntimeError("Cannot add a sub application twice")
        if subapp is self:
            raise RuntimeError("Cannot add an application to itself")
        self._router._check_frozen()  # before the sub-app's routes get the prefix

    def _add_subapp(self, resource: _R, subapp: Application) -> _R:
        self._router.register_resource(resource)
        for name in ("on_startup", "on_shutdown", "on_cleanup"):
            getattr(self, name).append(_SubappSignal(getattr(subapp, name), subapp))
        self._subapps.append(subapp)
        subapp.pre_freeze()
        return resource

    # -- serving --------------------------------------------------------------------------

    def make_handler(
        self,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        access_log_class: type[AccessLogger] = AccessLogger,
        **kwargs: Any,
    ) -> HttpServer:
        """Deprecated, as in aiohttp (use ``AppRunner``): the protocol factory serving this
        application, for ``loop.create_server(app.make_handler(), host, port)``.

        Freezes the application and binds it to ``loop`` (None: the current event loop). The
        caller runs the signals: ``await app.startup()`` first; at the end ``await
        app.shutdown()``, ``await handler.shutdown(timeout)``, ``await app.cleanup()``.
        ``kwargs`` are ``AppRunner``'s (``access_log``, ``keepalive_timeout``, ...).
        """
        warnings.warn(
            "Application.make_handler(...) is deprecated, use AppRunner API instead",
            DeprecationWarning,
            stacklevel=2,
        )
        check_access_log_class(access_log_class)
        self._set_loop(loop)
        self.freeze()
        assert self._loop is not None
        server, _ = app_server(self, dict(kwargs), access_log_class, 60.0, self._loop)
        return server

    # -- lifecycle ------------------------------------------------------------------------

    async def startup(self) -> None:
        """Run ``on_startup`` (and the ``cleanup_ctx`` enter halves)."""
        await self.on_startup.send(self)

    async def shutdown(self) -> None:
        """Run ``on_shutdown``."""
        await self.on_shutdown.send(self)

    async def cleanup(self) -> None:
        """Run ``on_cleanup`` (and the ``cleanup_ctx`` exit halves)."""
        if self.on_cleanup.frozen:
            await self.on_cleanup.send(self)
        else:
            await self._cleanup_ctx._on_cleanup(self)

    # -- requests -------------------------------------------------------------------------

    def _handler_for(self, match_info: UrlMappingMatchInfo) -> Handler:
        """The route's handler wrapped in the middlewares of its applications, composed once.

        Cached per route (not per handler: one handler may serve routes of several sub-apps).
        """
        route = match_info._route
        composed = self._composed.get(route)
        if composed is None:
            handler = route.handler
            apps = match_info.apps
            if len(apps) > 1:
                composed = compose_apps(handler, apps)
            elif self._middlewares:
                composed = compose(handler, self._middlewares, self)
            else:
                composed = handler
            if match_info.http_exception is None:
                self._composed[route] = composed
        return composed


class _SubappSignal:
    """The parent's receiver that sends one of a sub-application's signals with the sub-app."""

    __slots__ = ("_signal", "_subapp")

    def __init__(self, signal: Signal, subapp: Application) -> None:
        self._signal = signal
        self._subapp = subapp

    async def __call__(self, app: Application) -> None:
        await self._signal.send(self._subapp)

    def __repr__(self) -> str:
        return f"<sub-application signal of {self._subapp!r}>"
