"""squall: a fast asyncio HTTP server and web framework with aiohttp.web's API.

``import squall`` makes ``squall.web`` available, so ``squall.web.Application()`` works without a
separate ``import squall.web``. ``squall.install_as_aiohttp()`` makes ``aiohttp.web`` (and
aiohttp's other server-side modules) squall's, for unmodified aiohttp apps and plugins. When
uvloop is installed, importing squall also makes it the event loop policy (set
``SQUALL_NO_UVLOOP=1`` to keep asyncio's own loop); see docs/guide.md.
"""

__version__ = "0.1.0"

from ._loop import install_uvloop

install_uvloop()

from . import web  # noqa: E402
from .aiohttp_alias import install_as_aiohttp  # noqa: E402
from .http import running as _running  # noqa: E402
from .web.websocket import WSCloseCode, WSMessage, WSMsgType  # noqa: E402  (aiohttp.WSMsgType...)

#: Whether this install runs its request path compiled by mypyc (setup.py) or as Python.
COMPILED: bool = not _running.__file__.endswith(".py")

__all__ = (
    "COMPILED",
    "WSCloseCode",
    "WSMessage",
    "WSMsgType",
    "__version__",
    "install_as_aiohttp",
    "web",
)
