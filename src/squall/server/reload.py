"""``--reload`` (development): watch Python files and have the supervisor restart the worker.

The watching is :mod:`watchfiles` (the optional extra ``squall[reload]``), in a daemon thread of
the supervisor; each batch of changes calls ``notify``, which wakes the supervisor to replace the
worker as on SIGHUP (the new worker is started first, so a file saved with an error leaves the old
one serving until the next change fixes it).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from .config import EXIT_USAGE, Config
from .loading import ServerError

__all__ = ("start_reloader",)

log = logging.getLogger("squall.server")


def start_reloader(config: Config, notify: Callable[[], None]) -> Callable[[], None]:
    """Start watching ``config.reload_dirs`` (``app_dir`` if none); return the function to stop.

    Raises :class:`ServerError` when watchfiles is not installed or a directory is missing.
    """
    try:
        import watchfiles
    except ImportError:
        raise ServerError(
            "--reload needs watchfiles, which is not installed: pip install watchfiles"
            " (or squall's [reload] extra, docs/install.md)",
            EXIT_USAGE,
        ) from None
    dirs = [os.path.abspath(d) for d in (config.reload_dirs or [config.app_dir])]
    for path in dirs:
        if not os.path.isdir(path):
            raise ServerError(f"--reload-dir {path}: not a directory", EXIT_USAGE)
    stop = threading.Event()
    ready = threading.Event()

    def watch() -> None:
        changes = watchfiles.watch(
            *dirs,
            watch_filter=watchfiles.PythonFilter(),
            debounce=200,
            stop_event=stop,
            yield_on_timeout=True,
            rust_timeout=500,
            raise_interrupt=False,
        )
        for batch in changes:
            ready.set()  # the first (empty) batch: the watch is in place
            if batch:
                log.debug("Changed: %s", ", ".join(sorted(path for _, path in batch)))
                notify()

    thread = threading.Thread(target=watch, name="squall-reload", daemon=True)
    thread.start()
    ready.wait(5.0)
    log.info("Watching %s for changes", ", ".join(dirs))

    def stop_watching() -> None:
        stop.set()
        thread.join(2.0)

    return stop_watching
