"""HTTP/2 field blocks: HPACK (RFC 7541) both ways, and a request's fields checked (RFC 9113 8).

The decoder keeps the connection's dynamic table and turns a header block into
``(name, value)`` byte pairs; the ``hpack`` library's tables are its data (the static table and
the Huffman code), but the decoding loop is ours so that it compiles with the request path: a
header block of a repeated request is a handful of one-byte table references, and decoding it
must cost about as much as reading them.

The encoder is stateless: each response field is sent as a static-table reference or a literal
"without indexing", never added to a dynamic table. Responses then cost no table bookkeeping on
either side, the encoded form of a field can be cached, and the peer's
SETTINGS_HEADER_TABLE_SIZE never matters (our table stays empty).

:func:`request_fields` checks what RFC 9113 8.2 and 8.3 require of a request (pseudo-header
fields, lower-case names, no connection-specific fields) and gathers what an
:class:`~.exchange.Exchange` is made of.
"""

from __future__ import annotations

import re
from typing import Final

from hpack.exceptions import HPACKDecodingError
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

__all__ = (
    "Decoder",
    "HpackError",
    "Malformed",
    "RequestFields",
    "check_trailers",
    "encode_fields",
    "request_fields",
)

Pair = tuple[bytes, bytes]

STATIC: Final[tuple[Pair, ...]] = tuple(HeaderTable.STATIC_TABLE)
_STATIC_LEN: Final = len(STATIC)
_STATIC_PAIR: Final[dict[Pair, int]] = {}
_STATIC_NAME: Final[dict[bytes, int]] = {}
for _i, _pair in enumerate(STATIC, 1):
    _STATIC_PAIR.setdefault(_pair, _i)
    _STATIC_NAME.setdefault(_pair[0], _i)

ENTRY_OVERHEAD: Final = 32  # RFC 7541 4.1: an entry's size is its name, its value, and 32


class HpackError(Exception):
    """A header block that cannot be decoded: the connection's COMPRESSION_ERROR."""


class Decoder:
    """One connection's HPACK decoder: its dynamic table, and a bound on a block's fields.

    ``decode`` raises :class:`HpackError` on any encoding error. A block whose fields add up to
    more than ``max_list`` bytes (names, values and 32 each, as SETTINGS_MAX_HEADER_LIST_SIZE
    counts) is still decoded to the end, so that the dynamic table stays in step with the
    peer's, but the fields past the limit are dropped and ``oversized`` is set.
    """

    __slots__ = ("allowed_size", "max_list", "max_size", "oversized", "size", "table")

    def __init__(self, max_list: int, table_size: int = 4096) -> None:
        self.table: list[Pair] = []  # oldest first: index 62 is the last entry
        self.size = 0
        self.max_size = table_size  # as the peer last set it (a dynamic table size update)
        self.allowed_size = table_size  # our SETTINGS_HEADER_TABLE_SIZE: its upper bound
        self.max_list = max_list
        self.oversized = False

    def decode(self, block: bytes) -> list[Pair]:
        """The fields of a whole header block, in order."""
        fields: list[Pair] = []
        listed = 0
        self.oversized = False
        pos = 0
        end = len(block)
        while pos < end:
            byte = block[pos]
            if byte & 0x80:  # indexed field
                index, pos = _integer(block, pos, 0x7F)
                pair = self._get(index)
            elif byte & 0x40:  # literal, added to the table
                pair, pos = self._literal(block, pos, 0x3F)
                self._add(pair)
            elif byte & 0x20:  # dynamic table size update: only before the first field
                if fields or listed:
                    raise HpackError("A dynamic table size update after a field")
                size, pos = _integer(block, pos, 0x1F)
                if size > self.allowed_size:
                    raise HpackError(f"A dynamic table size of {size} > {self.allowed_size}")
                self.max_size = size
                self._evict(0)
                continue
            else:  # literal not added to the table ("without indexing", "never indexed")
                pair, pos = self._literal(block, pos, 0x0F)
            listed += len(pair[0]) + len(pair[1]) + ENTRY_OVERHEAD
            if listed > self.max_list:
                self.oversized = True
            else:
                fields.append(pair)
        return fields

    def _literal(self, block: bytes, pos: int, mask: int) -> tuple[Pair, int]:
        """A literal field: its name indexed (the prefix ``mask``) or a string, then its value."""
        index, pos = _integer(block, pos, mask)
        if index:
            name = self._get(index)[0]
        else:
            name, pos = _string(block, pos)
        value, pos = _string(block, pos)
        return (name, value), pos

    def _get(self, index: int) -> Pair:
        if index <= _STATIC_LEN:
            if index == 0:
                raise HpackError("Index 0")
            return STATIC[index - 1]
        table = self.table
        back = index - _STATIC_LEN
        if back > len(table):
            raise HpackError(f"Index {index} past the table's end")
        return table[len(table) - back]

    def _add(self, pair: Pair) -> None:
        size = len(pair[0]) + len(pair[1]) + ENTRY_OVERHEAD
        if size > self.max_size:  # RFC 7541 4.4: the table is emptied, the entry not added
            self.table.clear()
            self.size = 0
            return
        self._evict(size)
        self.table.append(pair)
        self.size += size

    def _evict(self, room: int) -> None:
        table = self.table
        limit = self.max_size - room
        drop = 0
        size = self.size
        while size > limit:
            pair = table[drop]
            size -= len(pair[0]) + len(pair[1]) + ENTRY_OVERHEAD
            drop += 1
        if drop:
            del table[:drop]
        self.size = size


def _integer(block: bytes, pos: int, mask: int) -> tuple[int, int]:
    """An integer with an N-bit prefix (``mask`` = 2**N - 1) at ``pos``; and the position after."""
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    end = len(block)
    while True:
        if pos >= end:
            raise HpackError("A truncated integer")
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise HpackError("An integer too large")


def _string(block: bytes, pos: int) -> tuple[bytes, int]:
    if pos >= len(block):
        raise HpackError("A truncated string")
    huffman = block[pos] & 0x80
    length, pos = _integer(block, pos, 0x7F)
    end = pos + length
    if end > len(block):
        raise HpackError("A truncated string")
    data = block[pos:end]
    if huffman:
        try:
            data = decode_huffman(data)
        except HPACKDecodingError as exc:
            raise HpackError(str(exc)) from None
    return data, end


# -- encoding -----------------------------------------------------------------------------

_ENCODED: Final[dict[Pair, bytes]] = {}
_ENCODED_MAX: Final = 2048


def encode_fields(fields: list[Pair]) -> bytes:
    """A header block for ``fields`` (lower-case names, values checked already)."""
    out = bytearray()
    cache = _ENCODED
    for pair in fields:
        data = cache.get(pair)
        if data is None:
            data = _encode_pair(pair)
            if len(cache) >= _ENCODED_MAX:  # (values that change, as Date, refill it)
                cache.clear()
            cache[pair] = data
        out += data
    return bytes(out)


def _encode_pair(pair: Pair) -> bytes:
    index = _STATIC_PAIR.get(pair)
    if index is not None:
        return bytes((0x80 | index,))
    name, value = pair
    index = _STATIC_NAME.get(name)
    if index is not None:
        return _encode_integer(index, 0x0F, 0x00) + _encode_string(value)
    return b"\x00" + _encode_string(name) + _encode_string(value)


def _encode_integer(value: int, mask: int, first: int) -> bytes:
    if value < mask:
        return bytes((first | value,))
    out = bytearray((first | mask,))
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode_string(data: bytes) -> bytes:
    return _encode_integer(len(data), 0x7F, 0x00) + data


# -- a request's fields (RFC 9113 8.2, 8.3) -----------------------------------------------


class Malformed(Exception):
    """A request that breaks RFC 9113 8: its stream is reset with PROTOCOL_ERROR."""


# Field names: lower-case tokens (RFC 9113 8.2.1); values: no NUL, CR or LF, no white space
# at either end.
_bad_name: Final = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9a-z]").search
_bad_value: Final = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$").search
_bad_method: Final = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]").search
_CONNECTION_SPECIFIC: Final = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
_GOOD_NAMES: Final[set[bytes]] = set()  # names seen valid (bounded)


class RequestFields:
    """What a request's header block says: the pseudo-header fields, the others in order
    (Cookie crumbs joined into one field, RFC 9113 8.2.3), and the declared body length."""

    __slots__ = ("authority", "fields", "length", "method", "path", "scheme")

    def __init__(self) -> None:
        self.method = b""
        self.scheme = b""
        self.path = b""
        self.authority = b""
        self.fields: list[Pair] = []
        self.length = -1  # Content-Length, or -1


def request_fields(pairs: list[Pair]) -> RequestFields:
    """Check and sort a request's decoded fields; raises :class:`Malformed`."""
    head = RequestFields()
    fields = head.fields
    cookies: list[bytes] = []
    regular = False
    seen = 0
    for name, value in pairs:
        if name[:1] == b":":
            if regular:
                raise Malformed("A pseudo-header field after a regular one")
            if name == b":method":
                bit = 1
                head.method = value
            elif name == b":path":
                bit = 2
                head.path = value
            elif name == b":scheme":
                bit = 4
                head.scheme = value
            elif name == b":authority":
                bit = 8
                head.authority = value
            else:
                raise Malformed(f"The pseudo-header field {name!r}")
            if seen & bit:
                raise Malformed(f"A second {name!r}")
            seen |= bit
            if _bad_value(value):
                raise Malformed(f"An invalid value of {name!r}")
            continue
        regular = True
        if name not in _GOOD_NAMES:
            if not name or _bad_name(name):
                raise Malformed(f"The field name {name!r}")
            if name in _CONNECTION_SPECIFIC:
                raise Malformed(f"The connection-specific field {name!r}")
            if len(_GOOD_NAMES) < 512:
                _GOOD_NAMES.add(name)
        if value and _bad_value(value):
            raise Malformed(f"An invalid value of {name!r}")
        if name == b"cookie":
            cookies.append(value)
            continue
        if name == b"te" and value != b"trailers":
            raise Malformed("TE other than 'trailers'")
        if name == b"content-length":
            if not value.isdigit() or (head.length >= 0 and int(value) != head.length):
                raise Malformed(f"Content-Length {value!r}")
            head.length = int(value)
        fields.append((name, value))
    if cookies:
        fields.append((b"cookie", b"; ".join(cookies)))
    method = head.method
    if not seen & 1 or not method or _bad_method(method):
        raise Malformed("No valid :method")
    if method == b"CONNECT":
        if seen & 6 or not seen & 8:
            raise Malformed("CONNECT takes :authority only")
    elif seen & 6 != 6:
        raise Malformed("No :scheme or :path")
    else:
        path = head.path
        if path[:1] != b"/" and not (path == b"*" and method == b"OPTIONS"):
            raise Malformed(f"The :path {path!r}")
    return head


def check_trailers(pairs: list[Pair]) -> None:
    """Trailer fields follow the same rules, and carry no pseudo-header field."""
    for name, value in pairs:
        if name not in _GOOD_NAMES and (
            not name or _bad_name(name) or name in _CONNECTION_SPECIFIC
        ):
            raise Malformed(f"The trailer field {name!r}")
        if value and _bad_value(value):
            raise Malformed(f"An invalid value of {name!r}")
