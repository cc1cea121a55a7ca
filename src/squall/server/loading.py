"""Importing the application named on the command line and telling its interface."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any, Literal

from ..asgi import ASGIApp
from ..web import Application
from .config import EXIT_ERROR, EXIT_USAGE, Config

__all__ = ("AppLoadError", "ServerError", "describe", "import_from_string", "load_app")


class ServerError(Exception):
    """An expected failure to start serving; ``str()`` is the one line, ``status`` the exit code."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


class AppLoadError(ServerError):
    """The application could not be imported, made or recognised; ``str()`` is the one line."""


def describe(exc: BaseException) -> str:
    """An exception as the tail of a one-line message."""
    if isinstance(exc, ModuleNotFoundError | AttributeError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def import_from_string(spec: str, app_dir: str = ".") -> Any:
    """Import ``MODULE:ATTRIBUTE`` and return the attribute; raise :class:`AppLoadError`."""
    module_name, sep, attrs = spec.partition(":")
    if not sep or not module_name or not attrs:
        raise AppLoadError(
            f"cannot import {spec!r}: expected MODULE:APP, as in 'main:app'", EXIT_USAGE
        )
    path = os.path.abspath(app_dir)
    if path not in sys.path:
        sys.path.insert(0, path)
    try:
        obj: Any = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        raise AppLoadError(f"cannot import {spec!r}: {describe(exc)}") from None
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise AppLoadError(
                f"cannot import {spec!r}: module {module_name!r} has no attribute {attrs!r}"
            ) from None
    return obj


def _takes_no_arguments(obj: Callable[..., Any]) -> bool:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    try:
        sig.bind()
    except TypeError:
        return False
    try:
        sig.bind(None, None, None)
    except TypeError:
        return True
    return False


def _is_aiohttp_application(obj: object) -> bool:
    """An ``aiohttp.web.Application`` (aiohttp's own, not squall's under install_as_aiohttp())."""
    return any(
        cls.__name__ == "Application" and cls.__module__.partition(".")[0] == "aiohttp"
        for cls in type(obj).__mro__
    )


def _not_aiohttp(spec: str, obj: object, made: bool) -> None:
    if _is_aiohttp_application(obj):
        what = f"{spec!r} returned" if made else f"{spec!r} is"
        raise AppLoadError(
            f"{what} an aiohttp.web.Application: squall serves squall.web applications; "
            "write 'from squall import web' in place of 'from aiohttp import web', or call "
            "squall.install_as_aiohttp() before aiohttp.web is imported (docs/migrating.md)",
            EXIT_USAGE,
        )


async def load_app(config: Config) -> tuple[Application | ASGIApp, Literal["aiohttp", "asgi"]]:
    """Import (and with ``factory``, make) the application and decide its interface.

    ``auto`` takes a :class:`squall.web.Application` as the aiohttp interface and any other
    callable as ASGI 3. Raises :class:`AppLoadError` with a one-line message.
    """
    if config.as_aiohttp:
        from ..aiohttp_alias import install_as_aiohttp

        install_as_aiohttp()
    obj = import_from_string(config.app, config.app_dir)
    _not_aiohttp(config.app, obj, made=False)
    if config.factory:
        if not callable(obj):
            raise AppLoadError(f"--factory: {config.app!r} is not callable", EXIT_USAGE)
        try:
            obj = obj()
            if inspect.isawaitable(obj):
                obj = await obj
        except Exception as exc:
            raise AppLoadError(f"factory {config.app!r} raised {describe(exc)}") from None
        _not_aiohttp(config.app, obj, made=True)
    interface = config.interface
    if interface == "auto":
        if isinstance(obj, Application):
            interface = "aiohttp"
        elif callable(obj):
            if not config.factory and _takes_no_arguments(obj):
                raise AppLoadError(
                    f"{config.app!r} takes no arguments: if it is an application factory, "
                    "pass --factory",
                    EXIT_USAGE,
                )
            interface = "asgi"
        else:
            raise AppLoadError(
                f"{config.app!r} is neither a squall.web.Application nor an ASGI callable "
                f"(got {type(obj).__name__})",
                EXIT_USAGE,
            )
    elif interface == "aiohttp" and not isinstance(obj, Application):
        raise AppLoadError(
            f"--interface aiohttp: {config.app!r} is not a squall.web.Application "
            f"(got {type(obj).__name__})",
            EXIT_USAGE,
        )
    elif interface == "asgi" and isinstance(obj, Application):
        raise AppLoadError(
            f"--interface asgi: {config.app!r} is a squall.web.Application "
            "(use --interface aiohttp or auto)",
            EXIT_USAGE,
        )
    elif interface == "asgi" and not callable(obj):
        raise AppLoadError(
            f"--interface asgi: {config.app!r} is not callable (got {type(obj).__name__})",
            EXIT_USAGE,
        )
    if interface == "aiohttp" and config.root_path:
        raise AppLoadError("--root-path applies to ASGI applications only", EXIT_USAGE)
    return obj, interface
