"""``run_app``: serve an application until SIGINT/SIGTERM, then shut down gracefully."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from ssl import SSLContext
from typing import Any

from .._loop import new_event_loop
from .access_log import AccessLogger, access_logger
from .app import Application
from .runner import AppRunner, BaseSite, GracefulExit, SockSite, TCPSite, UnixSite

__all__ = ("NotAnApplication", "run_app")


class NotAnApplication(TypeError):
    """``run_app()`` was given (or its awaitable gave) something other than an Application."""

    def __init__(self, found: object) -> None:
        super().__init__(
            f"run_app() needs a squall.web.Application or an awaitable of one, got {found!r}"
        )
        self.found = found


async def _run_app(
    app: Application | Awaitable[Application],
    *,
    host: str | Iterable[str] | None = None,
    port: int | None = None,
    path: str | Path | Iterable[str | Path] | None = None,
    sock: socket.socket | Iterable[socket.socket] | None = None,
    ssl_context: SSLContext | None = None,
    print: Callable[..., None] | None = print,
    backlog: int = 128,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
    **kwargs: Any,
) -> None:
    if asyncio.iscoroutine(app) or isinstance(app, Awaitable):
        app = await app
    if not isinstance(app, Application):
        raise NotAnApplication(app)
    runner = AppRunner(app, **kwargs)
    await runner.setup()
    sites: list[BaseSite] = []
    try:
        tcp = dict(
            ssl_context=ssl_context,
            backlog=backlog,
            reuse_address=reuse_address,
            reuse_port=reuse_port,
        )
        if host is not None:
            for h in [host] if isinstance(host, str) else list(host):
                sites.append(TCPSite(runner, h, port, **tcp))  # type: ignore[arg-type]
        elif (path is None and sock is None) or port is not None:
            sites.append(TCPSite(runner, port=port, **tcp))  # type: ignore[arg-type]
        if path is not None:
            for p in [path] if isinstance(path, (str, Path)) else list(path):
                sites.append(UnixSite(runner, p, ssl_context=ssl_context, backlog=backlog))
        if sock is not None:
            for s in [sock] if isinstance(sock, socket.socket) else list(sock):
                sites.append(SockSite(runner, s, ssl_context=ssl_context, backlog=backlog))
        for site in sites:
            await site.start()
        if print:
            names = sorted(str(s.name) for s in runner.sites)
            print(
                "======== Running on {} ========\n(Press CTRL+C to quit)".format(", ".join(names))
            )
        while True:
            await asyncio.sleep(3600)
    finally:
        await runner.cleanup()


def run_app(
    app: Application | Awaitable[Application],
    *,
    host: str | Iterable[str] | None = None,
    port: int | None = None,
    path: str | Path | Iterable[str | Path] | None = None,
    sock: socket.socket | Iterable[socket.socket] | None = None,
    shutdown_timeout: float = 60.0,
    keepalive_timeout: float = 75.0,
    ssl_context: SSLContext | None = None,
    print: Callable[..., None] | None = print,
    backlog: int = 128,
    access_log_class: type[AccessLogger] = AccessLogger,
    access_log_format: str = AccessLogger.LOG_FORMAT,
    access_log: logging.Logger | None = access_logger,
    handle_signals: bool = True,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
    handler_cancellation: bool = False,
    loop: asyncio.AbstractEventLoop | None = None,
    **kwargs: Any,
) -> None:
    """Run an application until interrupted, as aiohttp's ``run_app`` (uvloop when installed)."""
    if loop is None:
        loop = new_event_loop()
    if loop.get_debug() and access_log is not None and access_log.name == "squall.access":
        # As aiohttp: in debug mode make the access log visible unless configured otherwise.
        if access_log.level == logging.NOTSET:
            access_log.setLevel(logging.DEBUG)
        if not access_log.hasHandlers():
            access_log.addHandler(logging.StreamHandler())
    main = loop.create_task(
        _run_app(
            app,
            host=host,
            port=port,
            path=path,
            sock=sock,
            shutdown_timeout=shutdown_timeout,
            keepalive_timeout=keepalive_timeout,
            ssl_context=ssl_context,
            print=print,
            backlog=backlog,
            access_log_class=access_log_class,
            access_log_format=access_log_format,
            access_log=access_log,
            handle_signals=handle_signals,
            reuse_address=reuse_address,
            reuse_port=reuse_port,
            handler_cancellation=handler_cancellation,
            **kwargs,
        )
    )
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            main.cancel()
            loop.run_until_complete(asyncio.gather(main, return_exceptions=True))
            _cancel_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
