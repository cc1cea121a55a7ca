"""``squall.install_as_aiohttp()``: aiohttp's server side answered by squall, its client kept.

After the call, ``import aiohttp.web`` (and ``from aiohttp import web``) gives ``squall.web``
itself, and the other server-side modules of aiohttp (``aiohttp.web_exceptions``,
``aiohttp.web_request``, ``aiohttp.test_utils``, ...) are small modules whose names come from
squall's. aiohttp's client (``ClientSession``, connectors, cookie jars, ``aiohttp.abc``'s client
ABCs) is not touched. It is a table of names, never a second implementation: a name squall does
not have raises ``AttributeError`` saying so. See docs/migrating.md.
"""

from __future__ import annotations

import importlib
import logging
import sys
from types import FunctionType, ModuleType
from typing import Any

__all__ = ("install_as_aiohttp",)

# Each aliased aiohttp module and the squall modules its names are looked up in, in order.
# ``aiohttp.web`` is not here: it becomes ``squall.web`` itself.
MODULES: dict[str, tuple[str, ...]] = {
    "aiohttp.web_app": ("squall.web.app", "squall.web"),
    "aiohttp.web_exceptions": ("squall.web.exceptions",),
    "aiohttp.web_fileresponse": ("squall.web.fileresponse",),
    "aiohttp.web_log": ("squall.web.access_log",),
    "aiohttp.web_middlewares": ("squall.web.middlewares",),
    "aiohttp.web_protocol": ("squall.web",),
    "aiohttp.web_request": ("squall.web.request", "squall.web"),
    "aiohttp.web_response": ("squall.web.response", "squall.web.jsonresponse"),
    "aiohttp.web_routedef": ("squall.web.routedef",),
    "aiohttp.web_runner": ("squall.web.runner",),
    "aiohttp.web_server": ("squall.web.lowlevel",),
    "aiohttp.web_urldispatcher": (
        "squall.web.routing",
        "squall.web.resources",
        "squall.web.routes",
        "squall.web.matchinfo",
        "squall.web.staticfiles",
        "squall.web.subapps",
        "squall.web.views",
    ),
    "aiohttp.web_ws": ("squall.web.websocket",),
    "aiohttp.test_utils": ("squall.testing", "squall.testing.client"),
}

# Single names: (module, name) in squall. aiohttp.abc keeps aiohttp's own module behind these
# (the client's ABCs); ``_RequestHandler`` is the handler type aiohttp's pytest plugin imports.
NAMES: dict[str, dict[str, tuple[str, str]]] = {
    "aiohttp.abc": {"AbstractView": ("squall.web.views", "AbstractView")},
    "aiohttp.web_protocol": {"_RequestHandler": ("squall.testing.server", "RawHandler")},
}

# aiohttp's server ABCs that squall's classes do not derive from: registered as virtual
# subclasses, so that ``isinstance(request.app.router, aiohttp.abc.AbstractRouter)`` holds.
ABC_REGISTER: dict[str, tuple[str, str]] = {
    "AbstractRouter": ("squall.web.routing", "UrlDispatcher"),
    "AbstractMatchInfo": ("squall.web.matchinfo", "UrlMappingMatchInfo"),
    "AbstractAccessLogger": ("squall.web.access_log", "AccessLogger"),
}


# squall's loggers and aiohttp's, which take their place under the alias: an application's
# logging configuration names aiohttp's (``aiohttp.access``, ``aiohttp.server``, ``aiohttp.web``).
LOGGERS: dict[str, str] = {
    "squall.access": "aiohttp.access",
    "squall.server": "aiohttp.server",
    "squall.web": "aiohttp.web",
}

# The squall modules that hold those loggers, or take them as default arguments: imported before
# the swap, so that none of them makes its logger afterwards.
LOGGER_MODULES = (
    "squall.web",
    "squall.web.lowlevel",
    "squall.server.reload",
    "squall.server.serve",
    "squall.server.sockets",
    "squall.server.supervisor",
    "squall.http.h2",
    "squall.http.h2exchange",
    "squall.http.preface",
)


class AliasModule(ModuleType):
    """An aiohttp module name whose attributes are looked up in squall modules."""

    def __init__(self, name: str, sources: tuple[str, ...], fallback: ModuleType | None) -> None:
        super().__init__(name, f"{name}, served by squall ({', '.join(sources) or 'in part'})")
        self.__squall_sources__ = sources
        self.__squall_fallback__ = fallback
        # Where the code runs (tools such as blockbuster locate modules by file).
        first = importlib.import_module(sources[0]) if sources else fallback
        self.__file__ = getattr(first, "__file__", None)
        names: set[str] = set(getattr(fallback, "__all__", ()))
        for source in sources:
            names.update(_public(importlib.import_module(source)))
        for alias, (module, attr) in NAMES.get(name, {}).items():
            setattr(self, alias, getattr(importlib.import_module(module), attr))
            names.add(alias)
        self.__all__ = sorted(n for n in names if not n.startswith("_"))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for source in self.__squall_sources__:
            module = importlib.import_module(source)
            if hasattr(module, name):
                value = getattr(module, name)
                setattr(self, name, value)  # found once, then a plain attribute
                return value
        if self.__squall_fallback__ is not None:
            return getattr(self.__squall_fallback__, name)
        raise AttributeError(
            f"{self.__name__}.{name}: squall has no such name (install_as_aiohttp() maps "
            f"{self.__name__} to {', '.join(self.__squall_sources__)}; see docs/compat.md)"
        )

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.__all__))


def _public(module: ModuleType) -> list[str]:
    """A module's ``__all__``, or else the names of the classes and functions it defines."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    ]


def _swap_defaults(func: object, swap: dict[logging.Logger, logging.Logger]) -> None:
    """Replace the loggers among a Python function's default arguments (compiled functions of
    squall take none)."""
    if not isinstance(func, FunctionType):
        return
    if func.__defaults__:
        func.__defaults__ = tuple(
            swap.get(v, v) if isinstance(v, logging.Logger) else v for v in func.__defaults__
        )
    if func.__kwdefaults__:
        for key, value in func.__kwdefaults__.items():
            if isinstance(value, logging.Logger) and value in swap:
                func.__kwdefaults__[key] = swap[value]


def _use_aiohttp_loggers() -> None:
    """Log to aiohttp's logger names from now on: squall's module-level loggers and the
    default arguments that name them are replaced by aiohttp's loggers."""
    for name in LOGGER_MODULES:
        importlib.import_module(name)
    swap = {logging.getLogger(ours): logging.getLogger(theirs) for ours, theirs in LOGGERS.items()}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "squall" or name.startswith("squall.")):
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, logging.Logger) and value in swap:
                setattr(module, attr, swap[value])
            elif isinstance(value, FunctionType) and value.__module__ == name:
                _swap_defaults(value, swap)
            elif isinstance(value, type) and value.__module__ == name:
                for member in vars(value).values():
                    _swap_defaults(member, swap)


def _use_aiohttp_msg_type(msg_type: Any) -> None:
    """``aiohttp.web.WSMsgType`` is ``aiohttp.WSMsgType`` in aiohttp: make it so here, and
    the type of squall's WebSocket messages, so that ``msg.type is WSMsgType.TEXT`` holds
    whichever of the two names the code imported."""
    import squall
    import squall.web
    from squall.web import websocket

    websocket.use_msg_type(msg_type)
    squall.web.WSMsgType = msg_type  # type: ignore[misc]
    squall.WSMsgType = msg_type  # type: ignore[misc]


def public_module(module: str) -> str:
    """The aiohttp module name a squall module answers to under the alias, for names shown to
    the application (typed keys' reprs): ``squall.web.request`` is ``aiohttp.web_request``
    there. ``module`` itself when the alias is not installed or does not map it."""
    if aliased():
        for name, sources in MODULES.items():
            if sources and sources[0] == module:
                return name
    return module


def aliased() -> bool:
    """Whether :func:`install_as_aiohttp` has run in this process."""
    import squall.web

    return sys.modules.get("aiohttp.web") is squall.web


def install_as_aiohttp() -> None:
    """Make ``aiohttp.web`` and aiohttp's other server-side modules squall's, for this process.

    Call it before the application or its plugins import ``aiohttp.web`` (first thing in the
    program, or in the test suite's conftest.py). aiohttp must be installed: its client stays
    in use. Raises ``RuntimeError`` when a server-side aiohttp module is already imported (the
    objects made from it would mix with squall's), ``ImportError`` without aiohttp. Calling it
    again does nothing. There is no undo: restart the process.
    """
    import squall.web

    if aliased():
        return
    try:
        import aiohttp
        import aiohttp.abc as aiohttp_abc
    except ImportError as exc:
        raise ImportError(
            "squall.install_as_aiohttp() needs aiohttp installed (its client is kept, and the "
            "aliased applications and plugins import it): pip install aiohttp"
        ) from exc
    names = ["aiohttp.web", "aiohttp.pytest_plugin", *MODULES]
    loaded = [name for name in names if name in sys.modules]
    if loaded:
        raise RuntimeError(
            "squall.install_as_aiohttp() must run before aiohttp's server side is imported, "
            f"but {', '.join(loaded)} already is: call it first thing (in a test suite, load "
            "it with `pytest -p squall.testing.aiohttp_plugin`)"
        )

    abc_alias = AliasModule("aiohttp.abc", (), aiohttp_abc)
    for abc_name, (source, cls) in ABC_REGISTER.items():
        getattr(aiohttp_abc, abc_name).register(getattr(importlib.import_module(source), cls))
    modules: dict[str, ModuleType] = {"aiohttp.web": squall.web, "aiohttp.abc": abc_alias}
    for name, sources in MODULES.items():
        modules[name] = AliasModule(name, sources, None)
    for name, module in modules.items():
        sys.modules[name] = module
        setattr(aiohttp, name.rpartition(".")[2], module)
    _use_aiohttp_loggers()
    _use_aiohttp_msg_type(aiohttp.WSMsgType)
