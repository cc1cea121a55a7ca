"""What ``squall MODULE:APP`` runs: one serving process, or a supervisor over worker processes.

:func:`run` takes a :class:`Config`. With one worker (and none of ``max_requests``,
``max_worker_memory``, ``max_worker_lifetime``, ``reload``) it serves in this process: bind (or
take the inherited or systemd socket), import the application, tell an aiohttp-style
:class:`squall.web.Application` from an ASGI callable, serve until SIGINT/SIGTERM, shut down
gracefully. Otherwise a :class:`~.supervisor.Supervisor` runs the workers. Every expected
failure (import, bind, TLS files, startup) ends as one ``squall: ...`` line on stderr and a
non-zero exit status, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TextIO

from .. import COMPILED
from .._loop import new_event_loop
from .config import EXIT_OK, Config, configure_logging
from .loading import AppLoadError, ServerError, load_app
from .serve import Hooks, StopSignals, remove_uds, serve, ssl_context
from .sockets import address_text, listen_sockets

__all__ = ("AppLoadError", "Config", "fallback_note", "load_app", "ready_line", "run")

log = logging.getLogger("squall.server")

SIGHUP_IGNORED = (
    "SIGHUP ignored: one process has no workers to replace (with --workers 2 or more, "
    "SIGHUP restarts the workers one by one)"
)


def ready_line(url: str, interface: str, workers: int = 0) -> str:
    """The line printed once serving: ``squall: serving URL (INTERFACE interface, BUILD), ...``.

    BUILD is ``compiled`` or ``pure Python`` (``squall.COMPILED``): a build that fell back to
    Python shows it where the server starts, not only in pip's verbose output.
    """
    many = f", {workers} workers" if workers > 1 else ""
    build = "compiled" if COMPILED else "pure Python"
    return f"squall: serving {url} ({interface} interface{many}, {build}), Ctrl-C to stop"


# setup.py's FALLBACK_NOTE: the reason a build that meant to compile installed pure Python.
FALLBACK_NOTE = Path(__file__).resolve().parents[1] / "_build_fallback.txt"


def fallback_note() -> str | None:
    """What to log at start-up when compiling failed as squall was built (pip hides the build's
    own warning unless run with -v), else None: a pure-Python build asked for, or compiled."""
    if COMPILED:
        return None
    try:
        reason = FALLBACK_NOTE.read_text().strip()
    except OSError:
        return None
    return (
        f"this squall is pure Python, about 25% slower, because compiling failed when it was"
        f" built: {reason}. docs/install.md ('Which build you got') says how to get the"
        " compiled build"
    )


def error(message: str) -> None:
    """Print ``squall: message`` on stderr."""
    print(f"squall: {message}", file=sys.stderr, flush=True)


async def _serve_here(config: Config, out: TextIO) -> int:
    loop = asyncio.get_running_loop()
    stop = StopSignals(loop)
    stop.install()
    # SIGHUP means "restart the workers" to the supervisor; here, where there are none, it must
    # not kill the server (its default action), e.g. on `systemctl reload` (docs/deployment.md).
    hangup = getattr(signal, "SIGHUP", None)  # not on Windows
    if hangup is not None:
        loop.add_signal_handler(hangup, log.warning, SIGHUP_IGNORED)
    try:
        sockets = listen_sockets(config)
        tls = config.ssl_certfile is not None

        def ready(interface: str) -> None:
            print(ready_line(address_text(sockets, tls), interface), file=out, flush=True)
            if note := fallback_note():
                log.warning(note)

        try:
            return await serve(config, sockets, Hooks(stop.event, ready))
        finally:
            for sock in sockets:
                sock.close()
            remove_uds(config.uds)
    except ServerError as exc:
        error(str(exc))
        return exc.status
    finally:
        if hangup is not None:
            loop.remove_signal_handler(hangup)
        stop.remove()


def run(config: Config, *, out: TextIO | None = None) -> int:
    """Serve ``config.app`` until SIGINT/SIGTERM; return the process exit status (0 when stopped).

    Prints ``squall: serving URL (INTERFACE interface, BUILD), Ctrl-C to stop`` on ``out`` (stdout)
    once listening (with all workers ready, under a supervisor).
    """
    configure_logging(config.log_level, config.access_log_format)
    out = out if out is not None else sys.stdout
    try:
        ssl_context(config)  # again in each process that serves; a bad file fails here, once
    except ServerError as exc:
        error(str(exc))
        return exc.status
    if config.supervised:
        from .supervisor import Supervisor

        try:
            return Supervisor(config, out).run()
        except KeyboardInterrupt:  # a SIGINT before the supervisor took the signals
            return EXIT_OK
    return run_loop(_serve_here(config, out))


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on a new loop (uvloop when installed), then cancel what is left and close.

    A KeyboardInterrupt (a signal before the handlers were installed) counts as a clean stop.
    """
    loop = new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        try:
            cancel_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def cancel_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on ``loop`` and let it unwind."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
