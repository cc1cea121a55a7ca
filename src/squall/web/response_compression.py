"""A response's compression: ``enable_compression`` and the choice of a content coding.

:class:`CompressionMixin` is part of :class:`~squall.web.response.StreamResponse`; the codings
themselves (and the compressor) are in ``web/compression.py``.
"""

from __future__ import annotations

import warnings
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from ..http.exchange import NO_BODY_STATUSES
from .compression import (
    COMPRESSION_PREFERENCE,
    EXECUTOR_THRESHOLD,
    Compressor,
    ContentCoding,
    available,
    negotiate,
    vary_on_encoding,
)

if TYPE_CHECKING:
    from multidict import CIMultiDict

    from .request import BaseRequest


class CompressionMixin:
    """Compress the body with a coding forced or negotiated from Accept-Encoding."""

    _compression = False
    _compression_force: ContentCoding | None = None
    _compression_strategy: int | None = None
    # Set while the body is compressed as it is written; _send_body is then False, so the plain
    # write path stays as it is and write()/write_eof() hand the body to the compressor instead.
    _compressor: Compressor | None = None
    _zlib_executor_size: int | None = EXECUTOR_THRESHOLD  # Response(zlib_executor_size=...)
    _zlib_executor: Executor | None = None
    # StreamResponse's
    _status: int
    _send_body: bool
    _async_send: bool
    _plain: Any  # StreamResponse's
    if TYPE_CHECKING:

        @property
        def headers(self) -> CIMultiDict[str]: ...

    @property
    def compression(self) -> bool:
        return self._compression

    def enable_compression(
        self, force: bool | ContentCoding | None = None, strategy: int | None = None
    ) -> None:
        """Compress the body: with ``force``, or with the coding Accept-Encoding allows.

        ``strategy`` is zlib's (``zlib.Z_DEFAULT_STRATEGY`` when None). A negotiated response also
        gets ``Vary: Accept-Encoding``. Takes effect when the response is prepared.
        """
        if isinstance(force, bool):
            warnings.warn("Using boolean for force is deprecated #3318", DeprecationWarning, 2)
            force = ContentCoding.deflate if force else ContentCoding.identity
        elif force is not None and not isinstance(force, ContentCoding):
            raise AssertionError("force should one of None, bool or ContentEncoding")
        elif force is not None and not available(force):
            raise RuntimeError(
                f"Cannot compress with {force.value}: install "
                + ("brotli (or brotlicffi)" if force is ContentCoding.br else "zstandard")
            )
        self._compression = True
        self._compression_force = force
        self._compression_strategy = strategy
        self._async_send = True
        self._plain = False

    def _select_coding(self, request: BaseRequest) -> ContentCoding | None:
        """The coding to compress with (None: none), with the headers that announce it.

        Statuses that carry no body (1xx, 204, 304) are left untouched.
        """
        status = self._status
        if status < 200 or status in NO_BODY_STATUSES:
            return None
        coding = self._compression_force
        if coding is None:
            vary_on_encoding(self.headers)
            accept = ", ".join(request.headers.getall("Accept-Encoding", ()))
            preference = _preference(request)
            coding = negotiate(accept, preference)
        if coding is None or coding is ContentCoding.identity:
            return None
        headers = self.headers
        headers["Content-Encoding"] = coding.value
        headers.popall("Content-Length", None)
        return coding

    def _start_compressor(self, coding: ContentCoding) -> None:
        """After the head: compress the body as it is written (unless none is sent)."""
        if self._send_body:
            self._compressor = Compressor(
                coding, self._compression_strategy, self._zlib_executor_size, self._zlib_executor
            )
            self._send_body = False


def _preference(request: BaseRequest) -> Any:
    """The application's coding preference, if it has one (web.Server's requests have no
    application; a unit test's stand-in application, a Mock, holds no settings)."""
    app: Any = request.app
    if app is None:
        return None
    try:
        return request.config_dict.get(COMPRESSION_PREFERENCE)
    except TypeError:
        return None
