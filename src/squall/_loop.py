"""Choosing the event loop where squall runs it: uvloop when it is installed, unless opted out.

Nothing here changes asyncio's global event loop policy: ``run_app``, the command line, the
server's own loop and squall's pytest plugin make their loop with :func:`new_event_loop`, and a
program that runs its own loop (``asyncio.run(main())``) gets asyncio's, as under aiohttp.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings


def uvloop_allowed() -> bool:
    """Whether squall's loop is uvloop's: installed, CPython, and ``SQUALL_NO_UVLOOP`` unset."""
    if os.environ.get("SQUALL_NO_UVLOOP") or sys.implementation.name != "cpython":
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _policy_is_default() -> bool:
    """Whether the program left asyncio's event loop policy as it was (no policy API: yes)."""
    with warnings.catch_warnings():
        # asyncio's policy API is deprecated from 3.14 on, to be removed in 3.16.
        warnings.simplefilter("ignore", DeprecationWarning)
        default = getattr(asyncio, "DefaultEventLoopPolicy", None)
        get_policy = getattr(asyncio, "get_event_loop_policy", None)
        if default is None or get_policy is None:
            return True
        return type(get_policy()) is default


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of squall's choice, not set as the current one.

    uvloop's when it is installed (and ``SQUALL_NO_UVLOOP`` is unset), made directly, without
    touching the event loop policy; a policy the program set itself is honoured instead (its
    ``new_event_loop()``); otherwise asyncio's. Usable as a ``loop_factory``
    (``asyncio.Runner(loop_factory=squall.new_event_loop)``).
    """
    if uvloop_allowed() and _policy_is_default():
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
