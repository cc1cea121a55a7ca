"""FileResponse: a file sent with its validators, conditional requests and single byte ranges.

What aiohttp's FileResponse answers, answered the same way: the file (or a ``.br``/``.gz``
sibling the client accepts) is looked at and opened in the default executor; ETag is
``"<mtime_ns hex>-<size hex>"``; If-Match/If-Unmodified-Since fail with 412, If-None-Match/
If-Modified-Since give 304, a single ``Range`` gives 206 and anything else in ``Range`` 416. The
body goes out with ``os.sendfile`` where the transport allows (``squall.http.sendfile``).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import pathlib
import re
import stat
from dataclasses import dataclass
from mimetypes import MimeTypes
from typing import TYPE_CHECKING, Any, Final

from ..http.sendfile import read_file
from .headers import ETAG_ANY, ETag, parse_http_date
from .response import LooseHeaders, StreamResponse

if TYPE_CHECKING:
    from .request import BaseRequest

__all__ = ("FileResponse",)

DEFAULT_CHUNK_SIZE: Final = 256 * 1024

# Types by extension only: with the encodings map empty, "x.tar.gz" is application/gzip (not a
# gzip-encoded tar), as aiohttp has it.
_TYPES = MimeTypes()
_TYPES.encodings_map.clear()
for _type, _ext in (
    ("application/gzip", ".gz"),
    ("application/x-brotli", ".br"),
    ("application/x-bzip2", ".bz2"),
    ("application/x-compress", ".Z"),
    ("application/x-xz", ".xz"),
):
    _TYPES.add_type(_type, _ext)

# Pre-compressed siblings, in the order they are preferred.
_SIBLINGS: Final = ((".br", "br"), (".gz", "gzip"))

_SEND, _FORBIDDEN, _PRECONDITION_FAILED, _NOT_MODIFIED = range(4)


def guess_type(path: pathlib.Path) -> str:
    """The Content-Type for a file name (``application/octet-stream`` when unknown)."""
    # Only the name: a relative path starting "data:" must not be read as a data URL.
    return _TYPES.guess_type("/" + path.name)[0] or "application/octet-stream"


def _etag(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


def _etag_matches(value: str, tags: tuple[ETag, ...], *, weak: bool) -> bool:
    if len(tags) == 1 and tags[0].value == ETAG_ANY:
        return True
    return any(tag.value == value and (weak or not tag.is_weak) for tag in tags)


_CODING = re.compile(r"\s*([^\s;,]+)\s*(?:;\s*q\s*=\s*([0-9.]+))?[^,]*(?:,|$)")


def accepted_codings(header: str) -> frozenset[str]:
    """The content codings an Accept-Encoding value allows (those not refused with ``q=0``)."""
    codings = set()
    for match in _CODING.finditer(header.lower()):
        coding, quality = match.groups()
        try:
            if quality is not None and float(quality) == 0:
                continue
        except ValueError:
            pass
        codings.add("gzip" if coding == "x-gzip" else coding)
    return frozenset(codings)


@dataclass(frozen=True, slots=True)
class _Conditions:
    """The request's preconditions, read on the loop and judged in the executor."""

    if_match: tuple[ETag, ...] | None
    if_unmodified_since: datetime.datetime | None
    if_none_match: tuple[ETag, ...] | None
    if_modified_since: datetime.datetime | None

    def outcome(self, st: os.stat_result) -> int:
        """RFC 9110 13.2.2 order: If-Match, If-Unmodified-Since, If-None-Match, then IMS."""
        etag = _etag(st)
        if self.if_match is not None:
            if not _etag_matches(etag, self.if_match, weak=False):
                return _PRECONDITION_FAILED
        elif self.if_unmodified_since is not None and (
            st.st_mtime > self.if_unmodified_since.timestamp()
        ):
            return _PRECONDITION_FAILED
        if self.if_none_match is not None:
            if _etag_matches(etag, self.if_none_match, weak=True):
                return _NOT_MODIFIED
        elif self.if_modified_since is not None and (
            st.st_mtime <= self.if_modified_since.timestamp()
        ):
            return _NOT_MODIFIED
        return _SEND


@dataclass(slots=True)
class _Opened:
    outcome: int
    st: os.stat_result
    fd: int = -1
    coding: str | None = None


def _open(path: pathlib.Path, codings: frozenset[str], conditions: _Conditions) -> _Opened:
    """Pick the file (or a sibling), judge the preconditions and open it. Runs in a thread."""
    chosen = path
    coding = None
    st = None
    for suffix, name in _SIBLINGS:
        if name in codings:
            sibling = path.with_name(path.name + suffix)
            try:
                sibling_st = sibling.lstat()  # a sibling is never a symlink, only a plain file
            except OSError:
                continue
            if stat.S_ISREG(sibling_st.st_mode):
                chosen, coding, st = sibling, name, sibling_st
                break
    if st is None:
        st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        return _Opened(_FORBIDDEN, st)
    outcome = conditions.outcome(st)
    if outcome != _SEND:
        return _Opened(outcome, st, coding=coding)
    # O_NONBLOCK: should the name have become a FIFO meanwhile, open() must not wait for a writer.
    fd = os.open(chosen, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)  # what we send is what we describe, even if the name moved on
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return _Opened(_FORBIDDEN, st)
    return _Opened(_SEND, st, fd, coding)


def _close_when_done(future: asyncio.Future[_Opened]) -> None:
    """The request was cancelled while the file was being opened: close what got opened."""
    if not future.cancelled() and future.exception() is None and future.result().fd >= 0:
        os.close(future.result().fd)


class FileResponse(StreamResponse):
    """A response that sends the file at ``path`` (aiohttp's ``web.FileResponse``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        status: int = 200,
        reason: str | None = None,
        headers: LooseHeaders | None = None,
    ) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        self._path = pathlib.Path(path)
        self._chunk_size = chunk_size

    async def prepare(self, request: BaseRequest) -> Any:
        """Look at the file, then send the head and (unless HEAD, 304, ...) the body."""
        if self._req is not None or self._eof_sent:
            return None
        conditions = _Conditions(
            request.if_match,
            request.if_unmodified_since,
            request.if_none_match,
            request.if_modified_since,
        )
        codings = accepted_codings(request.headers.get("Accept-Encoding", ""))
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(None, _open, self._path, codings, conditions)
        try:
            opened = await asyncio.shield(job)
        except asyncio.CancelledError:
            job.add_done_callback(_close_when_done)
            raise
        except PermissionError:
            return await self._answer(request, 403)
        except (OSError, ValueError):  # missing, a symlink loop, a NUL in the name...
            return await self._answer(request, 404)
        if opened.outcome == _FORBIDDEN:  # a directory, a socket, a device...
            return await self._answer(request, 403)
        if opened.outcome == _PRECONDITION_FAILED:
            return await self._answer(request, 412, length=0)
        if opened.outcome == _NOT_MODIFIED:
            self.etag = _etag(opened.st)
            self.last_modified = opened.st.st_mtime
            return await self._answer(request, 304)
        try:
            await self._send(request, opened.fd, opened.st, opened.coding)
        finally:
            os.close(opened.fd)
        return None

    async def _answer(self, request: BaseRequest, status: int, length: int | None = None) -> None:
        self.set_status(status)
        await self._send_head(request, length)

    async def _send_head(self, request: BaseRequest, length: int | None) -> None:
        """StreamResponse.prepare, with the body length known when it is."""
        # enable_compression(): the length is the compressed one, unknown (as in aiohttp).
        coding = self._select_coding(request) if self._compression else None
        await request._prepare_hook(self)
        self._req = request
        exchange = self._exchange = request._exchange
        self._begin(exchange, -1 if coding is not None or length is None else length)
        exchange.send_head()
        if coding is not None:
            self._start_compressor(coding)

    async def _send(
        self, request: BaseRequest, fd: int, st: os.stat_result, coding: str | None
    ) -> None:
        size = st.st_size
        etag = _etag(st)
        start, count = 0, size
        if _range_applies(request.headers.get("If-Range"), etag, st.st_mtime):
            try:
                rng = request.http_range
            except ValueError:  # malformed, several ranges, start after end
                return await self._unsatisfiable(request, size)
            if rng.start is not None:
                start = rng.start
                if start < 0:  # the last -start bytes
                    start = max(size + start, 0)
                    count = size - start
                else:
                    count = min(size if rng.stop is None else rng.stop, size) - start
                if start >= size:
                    return await self._unsatisfiable(request, size)
                self.set_status(206)
        headers = self.headers
        if "Content-Type" not in headers:
            self.content_type = guess_type(self._path)
        if coding is not None:
            headers["Content-Encoding"] = coding
            headers["Vary"] = "Accept-Encoding"
            self._compression = False  # already compressed
        self.etag = etag
        self.last_modified = st.st_mtime
        headers["Accept-Ranges"] = "bytes"
        if self._status == 206:
            headers["Content-Range"] = f"bytes {start}-{start + count - 1}/{size}"
        await self._send_head(request, count)
        if count and self._compressor is not None:
            async for data in read_file(fd, start, count, self._chunk_size):
                await self.write(data)
        elif count and self._send_body:
            assert self._exchange is not None
            await self._exchange.send_file(fd, start, count, self._chunk_size)
            self._body_length = count
        await StreamResponse.write_eof(self)

    async def _unsatisfiable(self, request: BaseRequest, size: int) -> None:
        self.headers["Content-Range"] = f"bytes */{size}"
        await self._answer(request, 416)


def _range_applies(if_range: str | None, etag: str, mtime: float) -> bool:
    """If-Range: the Range header counts only while the client's copy is current.

    A date (aiohttp's rule): current if not older than the file; an unparsable date does not
    stop the range. An entity tag must match the file's exactly (a weak tag never does).
    """
    if if_range is None:
        return True
    value = if_range.strip()
    if value[:1] == '"' or value[:2] == "W/":
        return value == f'"{etag}"'
    date = parse_http_date(value)
    return date is None or mtime <= date.timestamp()
