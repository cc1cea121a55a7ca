"""Running squall as a process: the configuration the command line builds, and :func:`run`.

One process (:mod:`.run`, :mod:`.serve`), or a supervisor (:mod:`.supervisor`) over worker
processes (:mod:`.worker`) sharing the listening sockets of :mod:`.sockets`.
"""

from .config import Config
from .loading import AppLoadError, ServerError, load_app
from .run import run

__all__ = ("AppLoadError", "Config", "ServerError", "load_app", "run")
