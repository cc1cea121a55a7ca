"""squall: a fast asyncio HTTP server and web framework with aiohttp.web's API.

``import squall`` makes ``squall.web`` available, so ``squall.web.Application()`` works without a
separate ``import squall.web``. ``squall.install_as_aiohttp()`` makes ``aiohttp.web`` (and
aiohttp's other server-side modules) squall's, for unmodified aiohttp apps and plugins. Importing
squall leaves asyncio's event loop policy alone: ``run_app``, the command line and
squall's pytest plugin run on uvloop when it is installed (:func:`new_event_loop`), while a program
that runs its own loop chooses it; see docs/guide.md.
"""

__version__ = "0.1.0"

from . import web
from ._loop import new_event_loop
from .aiohttp_alias import install_as_aiohttp
from .http import running as _running
from .web.websocket import WSCloseCode, WSMessage, WSMsgType  # (aiohttp.WSMsgType...)

#: Whether this install runs its request path compiled by mypyc (setup.py) or as Python.
COMPILED: bool = not _running.__file__.endswith(".py")

__all__ = (
    "COMPILED",
    "WSCloseCode",
    "WSMessage",
    "WSMsgType",
    "__version__",
    "install_as_aiohttp",
    "new_event_loop",
    "web",
)
