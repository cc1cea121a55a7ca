"""Typed keys for the state of applications, requests and responses (aiohttp 3.14's)."""

from __future__ import annotations

import functools
import inspect
import sys
from typing import Any, Generic, TypeVar, get_args

__all__ = ("AppKey", "BaseKey", "NotAppKeyWarning", "RequestKey", "ResponseKey")

_T = TypeVar("_T")


class NotAppKeyWarning(UserWarning):
    """A plain string was used as a state key (a typed key gives type safety)."""


@functools.total_ordering  # (keys sort before strings from either side, as aiohttp's)
class BaseKey(Generic[_T]):
    """A typed key; its name is prefixed with the module that made it, as in aiohttp."""

    __slots__ = ("__orig_class__", "_name", "_t")

    def __init__(self, name: str, t: type[_T] | None = None) -> None:
        frame = inspect.currentframe()
        module = ""
        while frame is not None:
            if frame.f_code.co_name == "<module>":
                module = frame.f_globals["__name__"]
                break
            frame = frame.f_back
        self._name = f"{module}.{name}" if module else name
        self._t = t

    def __lt__(self, other: object) -> bool:
        if isinstance(other, BaseKey):
            return bool(self._name < other._name)
        return True  # keys sort before other types

    def __repr__(self) -> str:
        t: Any = self._t
        if t is None:
            orig = getattr(self, "__orig_class__", None)
            args = get_args(orig) if orig is not None else ()
            t = args[0] if args else None
        if t is None:
            shown = "<<Unknown>>"
        elif isinstance(t, type):
            shown = t.__qualname__
            if t.__module__ != "builtins":
                shown = f"{_public_module(t.__module__)}.{shown}"
        else:
            shown = repr(t)
        return f"<{type(self).__name__}({self._name}, type={shown})>"


def _public_module(module: str) -> str:
    """Under ``install_as_aiohttp()`` squall's classes go by aiohttp's module names, as the
    application imports them (``aiohttp.web_request.Request``)."""
    alias = sys.modules.get("squall.aiohttp_alias")
    return module if alias is None else alias.public_module(module)


class AppKey(BaseKey[_T]):
    """A typed key for ``app[KEY]``."""


class RequestKey(BaseKey[_T]):
    """A typed key for ``request[KEY]``."""


class ResponseKey(BaseKey[_T]):
    """A typed key for ``response[KEY]``."""
