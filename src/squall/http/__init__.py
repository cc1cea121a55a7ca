"""The wire: HTTP/1.x over an asyncio Protocol. Knows bytes, not apps."""

from .limits import Limits
from .message import RawRequest
from .protocol import HttpProtocol
from .server import HttpServer
from .streams import EMPTY_PAYLOAD, EofStream, StreamReader

__all__ = (
    "EMPTY_PAYLOAD",
    "EofStream",
    "HttpProtocol",
    "HttpServer",
    "Limits",
    "RawRequest",
    "StreamReader",
)
