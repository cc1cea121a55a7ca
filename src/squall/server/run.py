"""Serve one application in this process until SIGINT/SIGTERM: what ``squall MODULE:APP`` runs.

:func:`run` takes a :class:`Config`, imports the application, tells an aiohttp-style
:class:`squall.web.Application` (served with :class:`~squall.web.AppRunner` and sites) from an
ASGI callable (served with :mod:`squall.asgi`), listens on TCP, a Unix socket or an inherited file
descriptor, and shuts down gracefully on a signal. Every expected failure (import, bind, TLS files,
startup) ends as one ``squall: ...`` line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import signal
import socket
import ssl
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from .._loop import new_event_loop
from ..asgi import ASGIApp, ASGIHandler, Lifespan, LifespanFailed
from ..http.limits import Limits
from ..http.server import HttpServer
from ..web import Application
from ..web.access_log import access_logger
from ..web.runner import AppRunner, BaseSite, SockSite, TCPSite, UnixSite

__all__ = ("AppLoadError", "Config", "load_app", "run")

Interface = Literal["auto", "aiohttp", "asgi"]

LOG_LEVELS: dict[str, int] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_STARTUP = 3

log = logging.getLogger("squall.server")


@dataclass(slots=True)
class Config:
    """Everything needed to serve one application; the command line builds one of these."""

    app: str
    """``MODULE:ATTRIBUTE`` (the attribute may be dotted)."""
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    """Listen on this Unix domain socket path instead of host and port."""
    fd: int | None = None
    """Listen on this already bound socket file descriptor instead of host and port."""
    factory: bool = False
    """``app`` names a callable returning the application (which may be awaitable)."""
    interface: Interface = "auto"
    root_path: str = ""
    timeout_keep_alive: float = 75.0
    timeout_graceful_shutdown: float = 60.0
    backlog: int = 2048
    log_level: str = "info"
    access_log: bool = True
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    app_dir: str = "."
    """Directory put first on ``sys.path`` before importing ``app``."""


class AppLoadError(Exception):
    """The application could not be imported, made or recognised; ``str()`` is the one line."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


def _describe(exc: BaseException) -> str:
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
        raise AppLoadError(f"cannot import {spec!r}: {_describe(exc)}") from None
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


async def load_app(config: Config) -> tuple[Application | ASGIApp, Literal["aiohttp", "asgi"]]:
    """Import (and with ``factory``, make) the application and decide its interface.

    ``auto`` takes a :class:`squall.web.Application` as the aiohttp interface and any other
    callable as ASGI 3. Raises :class:`AppLoadError` with a one-line message.
    """
    obj = import_from_string(config.app, config.app_dir)
    if config.factory:
        if not callable(obj):
            raise AppLoadError(f"--factory: {config.app!r} is not callable", EXIT_USAGE)
        try:
            obj = obj()
            if inspect.isawaitable(obj):
                obj = await obj
        except Exception as exc:
            raise AppLoadError(f"factory {config.app!r} raised {_describe(exc)}") from None
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


def _ssl_context(config: Config) -> ssl.SSLContext | None:
    if config.ssl_certfile is None:
        if config.ssl_keyfile is not None:
            raise AppLoadError("--ssl-keyfile needs --ssl-certfile", EXIT_USAGE)
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(config.ssl_certfile, config.ssl_keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise AppLoadError(f"cannot load the TLS certificate or key: {exc}") from None
    return ctx


def _inherited_socket(fd: int) -> socket.socket:
    try:
        return socket.socket(fileno=fd)
    except OSError as exc:
        raise AppLoadError(f"--fd {fd}: not a usable socket ({exc})") from None


def _address_text(config: Config, tls: bool, sockets: list[socket.socket]) -> str:
    scheme = "https" if tls else "http"
    if config.uds is not None:
        return f"{scheme}+unix://{config.uds}"
    if sockets:
        sock = sockets[0]
        if hasattr(socket, "AF_UNIX") and sock.family == socket.AF_UNIX:
            return f"{scheme}+unix://{sock.getsockname()}"
        host, port = sock.getsockname()[:2]
    else:  # pragma: no cover - a listener always has a socket
        host, port = config.host, config.port
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


class _Stop:
    """The SIGINT/SIGTERM handlers: the first asks for a graceful stop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.event = asyncio.Event()
        self._loop = loop
        self._installed: list[int] = []

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._loop.add_signal_handler(sig, self.event.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not this platform
                continue
            self._installed.append(sig)

    def remove(self) -> None:
        for sig in self._installed:
            self._loop.remove_signal_handler(sig)
        self._installed.clear()


async def _serve_aiohttp(
    app: Application, config: Config, ctx: ssl.SSLContext | None, stop: _Stop, out: TextIO
) -> int:
    runner = AppRunner(
        app,
        access_log=access_logger if config.access_log else None,
        keepalive_timeout=config.timeout_keep_alive,
        shutdown_timeout=config.timeout_graceful_shutdown,
    )
    try:
        await runner.setup()
    except Exception as exc:
        log.error("Application startup failed", exc_info=exc)
        _error(f"application startup failed: {_describe(exc)}")
        return EXIT_STARTUP
    try:
        site: BaseSite
        if config.uds is not None:
            site = UnixSite(runner, config.uds, ssl_context=ctx, backlog=config.backlog)
        elif config.fd is not None:
            sock = _inherited_socket(config.fd)
            site = SockSite(runner, sock, ssl_context=ctx, backlog=config.backlog)
        else:
            site = TCPSite(
                runner, config.host, config.port, ssl_context=ctx, backlog=config.backlog
            )
        try:
            await site.start()
        except OSError as exc:
            _error(f"cannot listen on {_where(config)}: {exc}")
            return EXIT_ERROR
        listener = site._server
        sockets = list(listener.sockets) if listener is not None else []
        _ready(out, _address_text(config, ctx is not None, sockets), "aiohttp")
        await stop.event.wait()
        return EXIT_OK
    finally:
        await runner.cleanup()
        _remove_uds(config)


async def _serve_asgi(
    app: ASGIApp, config: Config, ctx: ssl.SSLContext | None, stop: _Stop, out: TextIO
) -> int:
    loop = asyncio.get_running_loop()
    lifespan = Lifespan(app)
    try:
        await lifespan.startup()
    except (LifespanFailed, Exception) as exc:
        _error(f"application startup failed: {_describe(exc)}")
        return EXIT_STARTUP
    state = lifespan.state if lifespan.supported else None
    limits = Limits(
        keepalive_timeout=config.timeout_keep_alive,
        shutdown_timeout=config.timeout_graceful_shutdown,
    )
    http = HttpServer(ASGIHandler(app, config.root_path, state=state), limits=limits, loop=loop)
    listener: asyncio.Server | None = None
    try:
        try:
            if config.uds is not None:
                listener = await loop.create_unix_server(
                    http, config.uds, ssl=ctx, backlog=config.backlog
                )
            elif config.fd is not None:
                sock = _inherited_socket(config.fd)
                listener = await loop.create_server(
                    http, sock=sock, ssl=ctx, backlog=config.backlog
                )
            else:
                listener = await loop.create_server(
                    http, config.host, config.port, ssl=ctx, backlog=config.backlog
                )
        except OSError as exc:
            _error(f"cannot listen on {_where(config)}: {exc}")
            return EXIT_ERROR
        _ready(out, _address_text(config, ctx is not None, list(listener.sockets)), "asgi")
        await stop.event.wait()
        return EXIT_OK
    finally:
        if listener is not None:
            listener.close()
        await http.shutdown()
        if listener is not None:
            await listener.wait_closed()
        try:
            await lifespan.shutdown()
        except Exception as exc:
            log.error("Application shutdown failed: %s", _describe(exc))
        _remove_uds(config)


def _where(config: Config) -> str:
    if config.uds is not None:
        return config.uds
    if config.fd is not None:
        return f"fd {config.fd}"
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"{host}:{config.port}"


def _remove_uds(config: Config) -> None:
    if config.uds is None:
        return
    try:
        if stat.S_ISSOCK(os.stat(config.uds).st_mode):
            os.unlink(config.uds)
    except OSError:
        pass


def _ready(out: TextIO, url: str, interface: str) -> None:
    print(f"squall: serving {url} ({interface} interface), Ctrl-C to stop", file=out, flush=True)


def _error(message: str) -> None:
    print(f"squall: {message}", file=sys.stderr, flush=True)


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` (one of :data:`LOG_LEVELS`), access lines included."""
    logging.basicConfig(
        level=LOG_LEVELS[level], format="%(levelname)s:%(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("squall").setLevel(LOG_LEVELS[level])


async def _main(config: Config, out: TextIO) -> int:
    loop = asyncio.get_running_loop()
    stop = _Stop(loop)
    stop.install()
    try:
        try:
            ctx = _ssl_context(config)
            app, _ = await load_app(config)
        except AppLoadError as exc:
            _error(str(exc))
            return exc.status
        if isinstance(app, Application):
            return await _serve_aiohttp(app, config, ctx, stop, out)
        return await _serve_asgi(app, config, ctx, stop, out)
    except AppLoadError as exc:
        _error(str(exc))
        return exc.status
    finally:
        stop.remove()


def run(config: Config, *, out: TextIO | None = None) -> int:
    """Serve ``config.app`` until SIGINT/SIGTERM; return the process exit status (0 when stopped).

    Prints ``squall: serving URL (INTERFACE interface), Ctrl-C to stop`` on ``out`` (stdout)
    once listening.
    """
    configure_logging(config.log_level)
    loop = new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(_main(config, out if out is not None else sys.stdout))
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return EXIT_OK
    finally:
        try:
            _cancel_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
