"""A response's cookies: ``cookies``, ``set_cookie``, ``del_cookie`` and their ``Set-Cookie`` lines.

:class:`CookieMixin` is part of :class:`~squall.web.response.StreamResponse` (and so of every
response class); a response hands :meth:`CookieMixin._cookie_fields` to its exchange with its
other header fields.
"""

from __future__ import annotations

from http.cookies import Morsel, SimpleCookie
from typing import Any


class CookieMixin:
    """The cookies a response sets, kept in a :class:`~http.cookies.SimpleCookie` made on demand."""

    _cookies: SimpleCookie | None = None
    _plain: Any  # StreamResponse's

    @property
    def cookies(self) -> SimpleCookie:
        if self._cookies is None:
            self._cookies = SimpleCookie()
            self._plain = False
        return self._cookies

    def set_cookie(
        self,
        name: str,
        value: str,
        *,
        expires: str | None = None,
        domain: str | None = None,
        max_age: int | str | None = None,
        path: str = "/",
        secure: bool | None = None,
        httponly: bool | None = None,
        version: str | None = None,
        samesite: str | None = None,
        partitioned: bool | None = None,
    ) -> None:
        """Set a cookie, as aiohttp's ``set_cookie`` does (same keywords, same defaults)."""
        cookies = self.cookies
        old = cookies.get(name)
        if old is not None and old.coded_value == "":
            cookies.pop(name, None)
        cookies[name] = value
        c: Morsel[str] = cookies[name]
        if expires is not None:
            c["expires"] = expires
        elif c.get("expires") == "Thu, 01 Jan 1970 00:00:00 GMT":
            del c["expires"]
        if domain is not None:
            c["domain"] = domain
        if max_age is not None:
            c["max-age"] = str(max_age)
        elif "max-age" in c:
            del c["max-age"]
        c["path"] = path
        if secure is not None:
            c["secure"] = secure
        if httponly is not None:
            c["httponly"] = httponly
        if version is not None:
            c["version"] = version
        if samesite is not None:
            c["samesite"] = samesite
        if partitioned:
            c["partitioned"] = True

    def del_cookie(
        self,
        name: str,
        *,
        domain: str | None = None,
        path: str = "/",
        secure: bool | None = None,
        httponly: bool | None = None,
        samesite: str | None = None,
    ) -> None:
        """Ask the client to drop a cookie (an expired, empty one)."""
        self.cookies.pop(name, None)
        self.set_cookie(
            name,
            "",
            max_age=0,
            expires="Thu, 01 Jan 1970 00:00:00 GMT",
            domain=domain,
            path=path,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )

    def _cookie_fields(self) -> list[tuple[str, str]]:
        """The ``Set-Cookie`` header fields of the cookies set on this response."""
        cookies = self._cookies
        if not cookies:
            return []
        return [("Set-Cookie", cookie.output(header="")[1:]) for cookie in cookies.values()]
