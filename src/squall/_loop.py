"""Choosing the event loop: uvloop when it is installed, unless the user opted out."""

from __future__ import annotations

import asyncio
import os
import sys
import warnings

_installed = False


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def install_uvloop() -> bool:
    """Make uvloop the default event loop policy if it is installed and the user allows it.

    Only replaces asyncio's own default policy, never one the user has set. Returns whether
    uvloop is now the policy.
    """
    global _installed
    if _installed:
        return True
    if os.environ.get("SQUALL_NO_UVLOOP") or sys.implementation.name != "cpython":
        return False
    try:
        import uvloop
    except ImportError:
        return False
    with warnings.catch_warnings():
        # asyncio's policy API is deprecated from 3.14 on; it still works until 3.16.
        warnings.simplefilter("ignore", DeprecationWarning)
        policy = asyncio.get_event_loop_policy()
        if type(policy) is not asyncio.DefaultEventLoopPolicy:
            return isinstance(policy, uvloop.EventLoopPolicy)
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    _installed = True
    return True


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop of the installed policy (uvloop when available)."""
    install_uvloop()
    return asyncio.new_event_loop()
