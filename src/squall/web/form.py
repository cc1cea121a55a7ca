"""``request.post()`` for multipart/form-data: fields as text, files spooled to temporary files."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from multidict import CIMultiDictProxy, MultiDict

from ..http.streams import StreamReader
from .exceptions import HTTPRequestEntityTooLarge
from .multipart import BodyPartReader, MultipartError, MultipartReader

__all__ = ("MAX_FIELDS", "FileField", "read_form", "too_many_fields")

MAX_FIELDS = 1000
"""Most fields ``post()`` takes (aiohttp's default ``client_max_fields``); beyond them: 413."""

SPOOL_MAX_SIZE = 1024**2
"""An uploaded file stays in memory up to this size, then moves to a temporary file (as aiohttp):
a form of many small files does not use a file descriptor per file."""


@dataclass(frozen=True, slots=True)
class FileField:
    """An uploaded file of a multipart form, as aiohttp's ``FileField``."""

    name: str
    filename: str
    file: IO[bytes]
    content_type: str
    headers: CIMultiDictProxy[str]


def too_many_fields(max_fields: int) -> HTTPRequestEntityTooLarge:
    return HTTPRequestEntityTooLarge(
        max_fields, text=f"Maximum number of form fields {max_fields} exceeded."
    )


async def read_form(
    reader: MultipartReader, body: StreamReader, max_size: int, max_fields: int = MAX_FIELDS
) -> MultiDict[Any]:
    """The fields of a multipart/form-data body in order, as aiohttp's ``post()`` gives them.

    A part with a filename becomes a :class:`FileField`; a text part (no Content-Type, or
    ``text/*``) a ``str`` in its charset (else the form's ``_charset_``, else UTF-8); any other
    part a ``bytearray``. More than ``max_size`` body bytes (0: no limit) or ``max_fields``
    fields raise 413; on any error the files spooled so far are closed.
    """
    out: MultiDict[Any] = MultiDict()
    try:
        while (part := await reader.next()) is not None:
            if 0 < max_size < body.total_bytes:
                raise HTTPRequestEntityTooLarge(max_size)
            if 0 < max_fields <= len(out):
                raise too_many_fields(max_fields)
            if not isinstance(part, BodyPartReader):
                raise MultipartError("To decode nested multipart you need to use custom reader")
            name = part.name
            if name is None:
                raise MultipartError("Multipart field missing name.")
            ctype = part.headers.get("Content-Type")
            if part.filename:
                file = await _spool(part, body, max_size)
                ctype = ctype or "application/octet-stream"
                out.add(name, FileField(name, part.filename, file, ctype, part.headers))
                continue
            value = bytearray()
            while chunk := await part.read_chunk(65536):
                if 0 < max_size < body.total_bytes:
                    raise HTTPRequestEntityTooLarge(max_size)
                value += part.decode(chunk)
            if ctype is None or ctype.startswith("text/"):
                charset = part.get_charset(default="utf-8")
                try:
                    out.add(name, value.decode(charset))
                except (LookupError, UnicodeDecodeError) as exc:
                    raise MultipartError(f"Field {name!r} is not valid {charset}: {exc}") from None
            else:
                out.add(name, value)
    except BaseException:
        for field in out.values():
            if isinstance(field, FileField):
                field.file.close()
        raise
    return out


async def _spool(part: BodyPartReader, body: StreamReader, max_size: int) -> IO[bytes]:
    """The decoded content of ``part`` in a file positioned at its start.

    Once the file has moved to disk, writes go through the default executor.
    """
    tmp: IO[bytes] = tempfile.SpooledTemporaryFile(SPOOL_MAX_SIZE)  # noqa: SIM115 (returned)
    loop = asyncio.get_running_loop()
    on_disk = False
    try:
        while chunk := await part.read_chunk(65536):
            if 0 < max_size < body.total_bytes:
                raise HTTPRequestEntityTooLarge(max_size)
            data = part.decode(chunk)
            on_disk = on_disk or tmp.tell() + len(data) > SPOOL_MAX_SIZE
            if on_disk:
                await loop.run_in_executor(None, tmp.write, data)
            else:
                tmp.write(data)
        if on_disk:
            await loop.run_in_executor(None, tmp.seek, 0)
        else:
            tmp.seek(0)
    except BaseException:
        tmp.close()
        raise
    return tmp
