"""StaticResource: the files of a directory under a URL prefix (``router.add_static``).

No request leaves the directory. The routing path is normalised before it is matched, so ``..``
segments (also percent-encoded ones) cannot climb above the prefix; the file name left is joined
to the directory, resolved, and refused with 404 unless it is still inside it: an encoded ``/``,
a symlink pointing out (unless ``follow_symlinks``), an absolute name, a NUL byte. Directories
answer 403, or an index page with ``show_index``. Answers are aiohttp's, status for status.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yarl import URL

from .exceptions import HTTPForbidden, HTTPNotFound
from .fileresponse import DEFAULT_CHUNK_SIZE, FileResponse
from .matchinfo import UrlMappingMatchInfo, matched
from .resources import PrefixResource, _quote_path, _unquote_path_safe
from .response import Response, StreamResponse
from .routes import AbstractRoute, ResourceRoute

if TYPE_CHECKING:
    from .request import Request

__all__ = ("StaticResource",)


class StaticResource(PrefixResource):
    """Serve the files under ``directory`` at ``prefix``: GET and HEAD, one route each."""

    VERSION_KEY = "v"

    def __init__(
        self,
        prefix: str,
        directory: str | os.PathLike[str],
        *,
        name: str | None = None,
        expect_handler: Callable[[Request], Awaitable[Any]] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        show_index: bool = False,
        follow_symlinks: bool = False,
        append_version: bool = False,
    ) -> None:
        super().__init__(prefix, name=name)
        try:
            root = Path(directory).expanduser().resolve(strict=True)
        except FileNotFoundError as exc:
            raise ValueError(f"'{directory}' does not exist") from exc
        if not root.is_dir():
            raise ValueError(f"'{directory}' is not a directory")
        self._directory = root
        self._show_index = show_index
        self._chunk_size = chunk_size
        self._follow_symlinks = follow_symlinks
        self._expect_handler = expect_handler
        self._append_version = append_version
        self._routes = {
            method: ResourceRoute(
                method, self._handle, resource=self, expect_handler=expect_handler
            )
            for method in ("GET", "HEAD")
        }
        self._allowed_methods = set(self._routes)

    # -- URLs -----------------------------------------------------------------------------

    def url_for(  # type: ignore[override]
        self, *, filename: str | os.PathLike[str], append_version: bool | None = None
    ) -> URL:
        """The URL of ``filename``; with ``append_version``, ``?v=`` the hash of its content."""
        if append_version is None:
            append_version = self._append_version
        name = str(filename).lstrip("/")
        url = URL.build(path=self._prefix, encoded=True) / name
        if append_version:
            path = self._inside(self._directory.joinpath(name))
            if path is not None and path.is_file():
                url = url.with_query({self.VERSION_KEY: _content_hash(path)})
        return url

    def get_info(self) -> dict[str, Any]:
        return {"directory": self._directory, "prefix": self._prefix, "routes": self._routes}

    def set_options_route(self, handler: Callable[[Request], Awaitable[StreamResponse]]) -> None:
        """Answer OPTIONS too (CORS preflight) with ``handler``."""
        if "OPTIONS" in self._routes:
            raise RuntimeError("OPTIONS route was set already")
        self._routes["OPTIONS"] = ResourceRoute(
            "OPTIONS", handler, resource=self, expect_handler=self._expect_handler
        )
        self._allowed_methods.add("OPTIONS")

    # -- matching -------------------------------------------------------------------------

    def _resolve(self, method: str, path: str) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        # Normalised first: "/static/../x" is not under "/static", whatever the file system says.
        normalised = os.path.normpath(path)
        if normalised != self._prefix and not normalised.startswith(self._prefix2):
            return None, set()
        if method not in self._allowed_methods:
            return None, self._allowed_methods
        filename = _unquote_path_safe(path[len(self._prefix) + 1 :])
        return matched(self._routes[method], {"filename": filename}), self._allowed_methods

    def __len__(self) -> int:
        return len(self._routes)

    def __iter__(self) -> Iterator[AbstractRoute]:
        return iter(self._routes.values())

    # -- answering ------------------------------------------------------------------------

    async def _handle(self, request: Request) -> StreamResponse:
        filename = request.match_info["filename"]
        if "\x00" in filename or Path(filename).is_absolute():
            raise HTTPNotFound()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._response_for, filename)

    def _inside(self, path: Path) -> Path | None:
        """``path`` resolved, or None when that leaves the directory (or cannot be resolved)."""
        try:
            if self._follow_symlinks:  # the URL may not climb out, but a symlink may point out
                normalised = Path(os.path.normpath(path))
                normalised.relative_to(self._directory)
                return normalised.resolve()
            resolved = path.resolve()
            resolved.relative_to(self._directory)
        except (ValueError, RuntimeError, OSError):  # outside; a symlink loop; name too long...
            return None
        return resolved

    def _response_for(self, filename: str) -> StreamResponse:
        """Runs in a thread: it touches the file system."""
        path = self._inside(self._directory.joinpath(filename))
        if path is None:
            raise HTTPNotFound()
        try:
            is_dir = path.is_dir()
        except PermissionError as exc:
            raise HTTPForbidden() from exc
        except OSError as exc:  # a name too long...: aiohttp answers 500
            raise HTTPNotFound() from exc
        if is_dir:
            if not self._show_index:
                raise HTTPForbidden()
            try:
                page = self._index_page(path)
            except PermissionError as exc:
                raise HTTPForbidden() from exc
            return Response(text=page, content_type="text/html")
        return FileResponse(path, chunk_size=self._chunk_size)

    def _index_page(self, directory: Path) -> str:
        """The HTML list of a directory's entries, as aiohttp's ``show_index`` page."""
        title = f"Index of /{html.escape(directory.relative_to(self._directory).as_posix())}"
        items = []
        for entry in sorted(directory.iterdir()):
            url = _quote_path(f"{self._prefix}/{entry.relative_to(self._directory).as_posix()}")
            label = f"{entry.name}/" if entry.is_dir() else entry.name
            items.append(f'<li><a href="{url}">{html.escape(label)}</a></li>')
        listing = "\n".join(items)
        return (
            f"<html>\n<head>\n<title>{title}</title>\n</head>\n"
            f"<body>\n<h1>{title}</h1>\n<ul>\n{listing}\n</ul>\n</body>\n</html>"
        )

    def __repr__(self) -> str:
        name = f"'{self.name}'" if self.name is not None else ""
        return f"<StaticResource {name} {self._prefix} -> {self._directory!r}>"


def _content_hash(path: Path) -> str:
    """``?v=`` value: the urlsafe base64 of the SHA-256 of the file's bytes (aiohttp's)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii")
