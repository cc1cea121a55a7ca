"""squall's HPACK decoder and encoder (http/h2fields.py) against the ``hpack`` library.

The library is the judge: whatever its encoder makes (Huffman or not, indexed or not, the
dynamic table growing and evicting across blocks, table size updates), squall's decoder reads
back the same fields; whatever squall's encoder makes, the library's decoder reads back. The
request checks of RFC 9113 8.2/8.3 are in tests/test_h2_conformance.py, over a real socket.
"""

from __future__ import annotations

import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.http.h2fields import Decoder, HpackError, encode_fields

names = st.sampled_from(
    [b":path", b"user-agent", b"accept", b"cookie", b"x-custom", b"content-type", b"a" * 40]
) | st.binary(min_size=1, max_size=20).map(lambda b: bytes(c % 26 + 97 for c in b))
values = st.binary(max_size=200)
blocks = st.lists(st.lists(st.tuples(names, values), max_size=12), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(blocks, st.booleans(), st.sampled_from([0, 64, 256, 4096]))
def test_decodes_what_hpack_encodes(
    sequence: list[list[tuple[bytes, bytes]]], huffman: bool, table_size: int
) -> None:
    encoder = hpack.Encoder()
    encoder.header_table_size = table_size  # (a size update starts the next block)
    decoder = Decoder(max_list=1 << 20)
    for fields in sequence:
        block = encoder.encode(fields, huffman=huffman)
        assert decoder.decode(block) == fields
        assert not decoder.oversized


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(names, values), max_size=20))
def test_hpack_decodes_what_squall_encodes(fields: list[tuple[bytes, bytes]]) -> None:
    decoder = hpack.Decoder()
    for _ in range(2):  # (stateless: the same bytes, the same fields, every time)
        assert decoder.decode(encode_fields(fields), raw=True) == fields


def test_static_table_pairs_are_one_byte() -> None:
    assert encode_fields([(b":status", b"200")]) == b"\x88"
    assert encode_fields([(b":status", b"204")]) == b"\x89"


def test_dynamic_table_references_and_eviction() -> None:
    encoder = hpack.Encoder()
    decoder = Decoder(max_list=1 << 20)
    fields = [(b":authority", b"example.com"), (b"x-big", b"v" * 3000)]
    first = encoder.encode(fields)
    again = encoder.encode(fields)
    assert len(again) == 2  # two references to the dynamic table
    assert decoder.decode(first) == fields
    assert decoder.decode(again) == fields
    newer = [(b"x-other", b"w" * 3000)]  # evicts the older entries (4096 bytes in all)
    assert decoder.decode(encoder.encode(newer)) == newer
    assert decoder.decode(encoder.encode(fields)) == fields


@pytest.mark.parametrize(
    ("block", "why"),
    [
        (b"\x80", "index 0"),
        (b"\xbe", "past the table: 62 with an empty dynamic table"),
        (b"\xff\x80\x80\x80\x80\x80\x01", "an integer past 2**28"),
        (b"\xff", "a truncated integer"),
        (b"\x40\x05ab", "a truncated string"),
        (b"\x82\x3f\xe1\x1f", "a table size update after a field"),
        (b"\x3f\xe2\x1f", "a table size update above SETTINGS_HEADER_TABLE_SIZE"),
        (b"\x00\x81\xff\x01a", "invalid Huffman (EOS)"),
    ],
)
def test_decoding_errors(block: bytes, why: str) -> None:
    with pytest.raises(HpackError):
        Decoder(max_list=1 << 20).decode(block)


def test_oversized_list_is_flagged_but_the_table_kept_in_step() -> None:
    encoder = hpack.Encoder()
    decoder = Decoder(max_list=1000)
    bomb = [(b"x-a", b"v" * 400)] * 5  # 2,175 bytes as the limit counts them
    assert decoder.decode(encoder.encode(bomb)) == bomb[:2]
    assert decoder.oversized
    small = [(b"x-a", b"v" * 400), (b"x-b", b"1")]
    assert decoder.decode(encoder.encode(small)) == small  # the table still matches
    assert not decoder.oversized
