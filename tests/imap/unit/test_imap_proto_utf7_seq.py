"""Modified UTF-7 and sequence sets: examples from the RFCs plus hypothesis round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhub.imap.proto import utf7
from mailhub.imap.proto.sequence import MAX_NUMBER, SequenceSet, format_numbers

# ---- modified UTF-7 (RFC 3501 §5.1.3) -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("INBOX", "INBOX"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("A&B", "A&-B"),
        ("&", "&-"),
        ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
        ("😀", "&2D3eAA-"),
        ("", ""),
    ],
)
def test_utf7_known_values(text: str, wire: str) -> None:
    assert utf7.encode(text) == wire
    assert utf7.decode(wire) == text
    assert utf7.decode(wire.encode()) == text


@pytest.mark.parametrize(
    "bad",
    [
        "A&B",  # unterminated shift
        "&Jjo",  # unterminated
        "&AGE-",  # shifted printable ASCII ("a")
        "&U,BTFw-&ZeVnLIqe-",  # adjacent shifts must be merged
        "&U,BTF-",  # non-zero padding bits / broken length
        "&2D0-",  # lone high surrogate
        "caf\u00e9",  # raw 8-bit
        "a\tb",  # control character
        "&!!-",  # bad base64 character
        "&U,BTFwA-",  # superfluous base64 character
    ],
)
def test_utf7_strict_decode_errors(bad: str) -> None:
    with pytest.raises(utf7.UTF7Error):
        utf7.decode(bad)


def test_utf7_rejects_8bit_bytes() -> None:
    with pytest.raises(utf7.UTF7Error):
        utf7.decode("Entwürfe".encode())


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(_text)
def test_utf7_round_trip(text: str) -> None:
    wire = utf7.encode(text)
    assert wire.isascii()
    assert all(0x20 <= ord(c) <= 0x7E for c in wire)
    assert utf7.decode(wire) == text


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30))
def test_utf7_decode_is_canonical(wire: str) -> None:
    """Whatever decodes must re-encode to exactly the same spelling (one name, one wire form)."""
    try:
        text = utf7.decode(wire)
    except utf7.UTF7Error:
        return
    assert utf7.encode(text) == wire


# ---- sequence sets (RFC 9051 §9, RFC 5182) -----------------------------------------------


def test_sequence_parse_forms() -> None:
    s = SequenceSet.parse("1,3:5,*:7,9:*,$")
    assert s.ranges == ((1, 1), (3, 5), (None, 7), (9, None))
    assert s.saved
    assert str(s) == "1,3:5,*:7,9:*,$"
    with pytest.raises(ValueError):
        s.resolve(10)
    assert s.with_saved([2]).resolve(10) == [1, 2, 3, 4, 5, 7, 8, 9, 10]


def test_sequence_star_and_reversed_ranges() -> None:
    assert SequenceSet.parse("5:2").resolve(10) == [2, 3, 4, 5]
    assert SequenceSet.parse("*").resolve(7) == [7]
    assert SequenceSet.parse("3:*").resolve(2) == [2]  # 3:* with 2 messages is 2:3 -> {2}
    assert SequenceSet.parse("1:*").resolve(0) == []
    assert SequenceSet.parse("4,100").resolve(10) == [4]
    assert SequenceSet.parse("4,100").resolve(10, clip=False) == [4, 100]
    assert SequenceSet.parse("4,100").max_explicit() == 100
    assert SequenceSet.parse("2:4").contains(3, 10)
    assert not SequenceSet.parse("2:4").contains(5, 10)
    assert SequenceSet.parse("1:*").uses_star


@pytest.mark.parametrize(
    "bad", ["", "0", "1:0", "a", "1,,2", "1:", ":1", "01", "4294967296", "1:2:3", "-1"]
)
def test_sequence_invalid(bad: str) -> None:
    with pytest.raises(ValueError):
        SequenceSet.parse(bad)


def test_format_numbers_and_of() -> None:
    assert format_numbers([5, 1, 2, 3, 9, 10, 3]) == "1:3,5,9:10"
    assert str(SequenceSet.of([1, 2, 3, 7])) == "1:3,7"
    assert format_numbers([]) == ""


_num = st.integers(1, MAX_NUMBER) | st.none()
_ranges = st.lists(st.tuples(_num, _num), min_size=1, max_size=8)


@given(_ranges, st.booleans())
def test_sequence_round_trip(ranges: list[tuple[int | None, int | None]], saved: bool) -> None:
    s = SequenceSet(tuple(ranges), saved)
    assert SequenceSet.parse(str(s)) == s


@given(st.lists(st.integers(1, 500), max_size=60), st.integers(0, 600))
def test_sequence_of_resolves_to_input(nums: list[int], largest: int) -> None:
    s = SequenceSet.of(nums) if nums else None
    if s is None:
        return
    assert s.resolve(max(nums)) == sorted(set(nums))
    assert s.resolve(largest) == sorted(n for n in set(nums) if n <= largest)


@given(_ranges, st.integers(0, 50))
def test_sequence_resolve_matches_contains(
    ranges: list[tuple[int | None, int | None]], largest: int
) -> None:
    small = [(a if a is None else a % 60 + 1, b if b is None else b % 60 + 1) for a, b in ranges]
    s = SequenceSet(tuple(small))
    got = s.resolve(largest)
    assert got == sorted(set(got))
    assert got == [n for n in range(1, largest + 1) if s.contains(n, largest)]
