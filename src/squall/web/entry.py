"""``python -m squall.web [-H HOST] [-P PORT] [-U PATH] package.module:init_func [args...]``.

aiohttp's ``python -m aiohttp.web``: ``init_func`` gets the arguments this parser does not know
and returns the Application (or an awaitable of one), which is served with ``run_app``.
Bad arguments and entry points end with argparse's usage error (status 2), naming what was
found. As aiohttp's, it is ``web.main`` and finds ``ArgumentParser``, ``import_module`` and
``run_app`` in the ``web`` module when it runs (tests patch them there).
"""

from __future__ import annotations

import inspect
import logging
import socket
from argparse import ArgumentParser

from .run import NotAnApplication

__all__ = ("build_parser", "main")


def build_parser() -> ArgumentParser:
    """The argument parser of ``python -m squall.web``."""
    from .. import web

    parser: ArgumentParser = web.ArgumentParser(
        description="squall.web Application server", prog="squall.web"
    )
    parser.add_argument(
        "entry_func",
        help="Callable returning the `squall.web.Application` instance to run. "
        "Should be specified in the 'module:function' syntax.",
        metavar="entry-func",
    )
    parser.add_argument(
        "-H", "--hostname", help="TCP/IP hostname to serve on (default: localhost)", default=None
    )
    parser.add_argument(
        "-P",
        "--port",
        help="TCP/IP port to serve on (default: %(default)r)",
        type=int,
        default=8080,
    )
    parser.add_argument(
        "-U",
        "--path",
        help="Unix file system path to serve on. Can be combined with hostname "
        "to serve on both Unix and TCP.",
    )
    return parser


def _found(obj: object) -> str:
    if obj is None:
        return "None (no 'return app'?)"
    cls = type(obj)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    return f"an object of type {name}"


def main(argv: list[str]) -> None:
    """Parse ``argv``, call the entry function with the rest of it, run the app until stopped."""
    from .. import web

    parser = build_parser()
    args, extra_argv = parser.parse_known_args(argv)

    mod_name, _, func_name = args.entry_func.partition(":")
    if not mod_name or not func_name:
        parser.error("'entry-func' not in 'module:function' syntax")
    if mod_name.startswith("."):
        parser.error("relative module names not supported")
    try:
        module = web.import_module(mod_name)
    except ImportError as exc:
        parser.error(f"unable to import {mod_name}: {exc}")
    try:
        func = getattr(module, func_name)
    except AttributeError:
        parser.error(f"module {mod_name!r} has no attribute {func_name!r}")

    if args.path is not None and not hasattr(socket, "AF_UNIX"):  # pragma: no cover - Unix
        parser.error("file system paths not supported by your operating environment")

    logging.basicConfig(level=logging.DEBUG)

    if args.path and args.hostname is None:  # a Unix socket only
        host, port = None, None
    else:
        host, port = args.hostname or "localhost", args.port

    entry = args.entry_func
    if isinstance(func, web.Application):
        parser.error(
            f"{entry} is an Application, not a function returning one: "
            f"serve it with 'squall {entry}', or name its init function here"
        )
    if not callable(func):
        parser.error(f"{entry} is {_found(func)}, not a function returning an Application")
    made = func(extra_argv)
    if made is None:
        parser.error(f"{entry} returned {_found(made)}, not a squall.web.Application")
    try:
        web.run_app(made, host=host, port=port, path=args.path)
    except NotAnApplication as exc:
        what = f"an awaitable of {_found(exc.found)}" if inspect.isawaitable(made) else _found(made)
        parser.error(f"{entry} returned {what}, not a squall.web.Application")
    parser.exit(message="Stopped\n")
