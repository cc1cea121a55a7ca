"""The wire: HTTP/1.x over an asyncio Protocol. Knows bytes, not apps."""

from .exchange import Exchange
from .limits import Limits
from .protocol import HttpProtocol
from .server import HttpServer
from .streams import EMPTY_PAYLOAD, EofStream, StreamReader

__all__ = (
    "EMPTY_PAYLOAD",
    "EofStream",
    "Exchange",
    "HttpProtocol",
    "HttpServer",
    "Limits",
    "StreamReader",
)
