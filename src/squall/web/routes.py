"""Routes: a handler bound to one HTTP method, and the resource (path) it belongs to.

Views, resources and match info are in ``views.py``, ``resources.py`` and ``matchinfo.py``; the
router that holds them all is ``routing.py``.
"""

from __future__ import annotations

import abc
import functools
import inspect
import re
import warnings
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from yarl import URL

from .exceptions import HTTPExpectationFailed
from .views import AbstractView

if TYPE_CHECKING:
    from .request import Request
    from .resources import AbstractResource
    from .response import StreamResponse

__all__ = ("AbstractRoute", "ResourceRoute")

Handler = Callable[["Request"], Awaitable["StreamResponse"]]

METH_ANY = "*"
HTTP_METHOD_RE = re.compile(r"^[0-9A-Za-z!#\$%&'\*\+\-\.\^_`\|~]+$")


async def _default_expect_handler(request: Request) -> None:
    """Refuse expectations other than 100-continue (sent lazily, on the first body read)."""
    expect = request.headers.get("Expect", "")
    if request.version == (1, 1) and expect.lower() != "100-continue":
        raise HTTPExpectationFailed(text=f"Unknown Expect: {expect}")


class AbstractRoute(abc.ABC):
    """A handler bound to one method."""

    def __init__(
        self,
        method: str,
        handler: Any,
        *,
        expect_handler: Callable[[Request], Awaitable[Any]] | None = None,
        resource: AbstractResource | None = None,
    ) -> None:
        if expect_handler is None:
            expect_handler = _default_expect_handler
        method = method.upper()
        if not HTTP_METHOD_RE.match(method):
            raise ValueError(f"{method} is not allowed HTTP method")
        if not callable(handler):
            raise TypeError(f"Handler {handler!r} should be callable")
        if isinstance(handler, type) and issubclass(handler, AbstractView):
            pass
        elif not inspect.iscoroutinefunction(handler):
            warnings.warn(
                "Bare functions are deprecated, use async ones", DeprecationWarning, stacklevel=4
            )
            handler = _wrap_plain(handler)
        self._method = method
        self._handler = handler
        self._expect_handler = expect_handler
        self._resource = resource

    @property
    def method(self) -> str:
        return self._method

    @property
    def handler(self) -> Handler:
        return self._handler  # type: ignore[no-any-return]

    @property
    def resource(self) -> AbstractResource | None:
        return self._resource

    @property
    @abc.abstractmethod
    def name(self) -> str | None: ...

    @abc.abstractmethod
    def get_info(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def url_for(self, *args: str, **kwargs: str) -> URL: ...

    async def handle_expect_header(self, request: Request) -> StreamResponse | None:
        return await self._expect_handler(request)


def _wrap_plain(handler: Callable[..., Any]) -> Handler:
    @functools.wraps(handler)  # (route.handler keeps the function's name and docstring)
    async def wrapped(request: Request) -> StreamResponse:
        result = handler(request)
        if inspect.isawaitable(result):
            result = await result
        return result  # type: ignore[no-any-return]

    return wrapped


class ResourceRoute(AbstractRoute):
    """A route that belongs to a resource."""

    def __repr__(self) -> str:
        return f"<ResourceRoute [{self.method}] {self._resource} -> {self.handler!r}"

    @property
    def name(self) -> str | None:
        return self._resource.name if self._resource is not None else None

    def url_for(self, *args: str, **kwargs: str) -> URL:
        assert self._resource is not None
        return self._resource.url_for(*args, **kwargs)

    def get_info(self) -> dict[str, Any]:
        assert self._resource is not None
        return self._resource.get_info()
