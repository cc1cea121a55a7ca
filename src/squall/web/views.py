"""Class-based views: ``web.View`` hands a request to its method named after the HTTP method."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from .exceptions import HTTPMethodNotAllowed

if TYPE_CHECKING:
    from .request import Request
    from .response import StreamResponse

__all__ = ("AbstractView", "View")


class AbstractView(abc.ABC):
    """Base of class-based views."""

    def __init__(self, request: Request) -> None:
        self._request = request

    @property
    def request(self) -> Request:
        return self._request

    @abc.abstractmethod
    def __await__(self) -> Any: ...


class View(AbstractView):
    """A class-based view: the method named after the HTTP method handles the request."""

    async def _iter(self) -> StreamResponse:
        method = getattr(self, self.request.method.lower(), None)
        if self.request.method not in _VIEW_METHODS or method is None:
            self._raise_allowed_methods()
        assert method is not None
        resp: StreamResponse = await method()
        return resp

    def __await__(self) -> Any:
        return self._iter().__await__()

    def _raise_allowed_methods(self) -> None:
        allowed = {m for m in _VIEW_METHODS if hasattr(self, m.lower())}
        raise HTTPMethodNotAllowed(self.request.method, allowed)


_VIEW_METHODS = frozenset(
    ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE")
)
