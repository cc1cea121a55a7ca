"""Running squall as a process: the configuration the command line builds, and :func:`run`."""

from .run import AppLoadError, Config, load_app, run

__all__ = ("AppLoadError", "Config", "load_app", "run")
