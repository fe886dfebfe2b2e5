"""The C-speed fast paths of ENVELOPE rendering give exactly the answers of the full code.

``parse_addresses`` answers simple address lists with a regex and ``quote.string`` /
``string_for_humans`` decide with byte scans; both were byte-by-byte loops (kept here, and
in ``address._parse_addresses``, as the reference) and must stay byte-for-byte the same,
since ENVELOPE fixtures are Dovecot's own answers.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailhub.imap.render import quote
from mailhub.mime.address import _parse_addresses, parse_addresses

_ADDR_CHARS = b'ab.-_+= \t<>@,;:"()[]\\\x80\xff\x0b0'


def _ref_string(value: bytes) -> bytes:
    if b"\x00" in value:
        value = value.replace(b"\x00", b"\x80")
    specials = 0
    for c in value:
        if c == 0x22 or c == 0x5C:
            specials += 1
            if specials > 4:
                return quote.literal(value)
        elif c in (0x0D, 0x0A) or c >= 0x80:
            return quote.literal(value)
    return quote.quoted(value)


def _ref_modify(value: bytes) -> bool:
    modify = False
    last_lwsp = True
    for c in value:
        if c == 0 or c in (0x0D, 0x0A, 0x09, 0x22, 0x5C):
            modify = True
        if c in b" \t\r\n":
            if last_lwsp:
                modify = True
            last_lwsp = True
        else:
            last_lwsp = False
    if value and last_lwsp:
        modify = True
    return modify


def _ref_for_humans(value: bytes) -> bytes:
    if not _ref_modify(value):
        return _ref_string(value)
    return quote.string_for_humans(value)  # the rewriting branch is unchanged


def _bytes_of(alphabet: bytes, max_size: int = 40) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(list(alphabet)), max_size=max_size).map(bytes)


@settings(max_examples=3000)
@given(_bytes_of(_ADDR_CHARS))
def test_address_fast_path_matches_parser(value: bytes) -> None:
    assert parse_addresses(value) == _parse_addresses(value)


@settings(max_examples=500)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"", b"Ann", b"Ann  B.", b"\xc3\xa9t\xc3\xa9", b"=?utf-8?q?x?="]),
            st.sampled_from([b"a", b"a.b", b"a+tag", b".a..b."]),
            st.sampled_from([b"x.test", b"x", b"a-b.example.org"]),
            st.booleans(),
        ),
        max_size=4,
    )
)
def test_address_fast_path_on_realistic_lists(
    parts: list[tuple[bytes, bytes, bytes, bool]],
) -> None:
    items = [
        (n + b" <" + lo + b"@" + h + b">") if angle else (lo + b"@" + h)
        for n, lo, h, angle in parts
    ]
    value = b", ".join(items)
    assert parse_addresses(value) == _parse_addresses(value)


def test_address_fast_path_is_taken_for_the_common_shape() -> None:
    got = parse_addresses(b"Sender  0 <s0@remote.test>, b@c")
    assert [(a.name, a.mailbox, a.host) for a in got] == [
        (b"Sender 0", b"s0", b"remote.test"),
        (None, b"b", b"c"),
    ]


@settings(max_examples=3000)
@given(_bytes_of(b'ab "\\\t\r\n\x00\x80\xff', 30))
def test_string_matches_byte_loop(value: bytes) -> None:
    assert quote.string(value) == _ref_string(value)
    assert quote.string_for_humans(value) == _ref_for_humans(value)


def _ref_envelope(fields: list[tuple[bytes, bytes]]) -> bytes:
    """ENVELOPE as it was rendered before the one-pass version."""
    from mailhub.imap.render.envelope import _ADDR_FIELDS, envelope_fields, render_addresses
    from mailhub.imap.render.quote import nstring_for_humans, nstring_nolf
    from mailhub.mime import headers as H

    lists = envelope_fields(fields)
    out = [
        nstring_nolf(H.last_value(fields, b"date")),
        nstring_for_humans(H.last_value(fields, b"subject", keep_folding=True)),
    ]
    out.extend(render_addresses(lists[name]) for name in _ADDR_FIELDS)
    out.append(nstring_nolf(H.last_value(fields, b"in-reply-to")))
    out.append(nstring_nolf(H.last_value(fields, b"message-id")))
    return b"(" + b" ".join(out) + b")"


_NAMES = [b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc", b"date", b"subject",
          b"in-reply-to", b"message-id", b"x-other"]  # fmt: skip


@settings(max_examples=2000)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_NAMES),
            st.one_of(
                _bytes_of(_ADDR_CHARS, 30),
                st.sampled_from([b" A <a@b>", b"", b" ", b" x@y,\r\n\tz@w", b" (c) a@b"]),
            ),
        ),
        max_size=12,
    )
)
def test_envelope_one_pass_matches_reference(fields: list[tuple[bytes, bytes]]) -> None:
    from mailhub.imap.render.envelope import envelope

    assert envelope(fields) == _ref_envelope(fields)
    assert envelope(fields) == _ref_envelope(fields)  # the second answer comes from memos


@settings(max_examples=3000)
@given(_bytes_of(b"ab:\r\n \t\x0bX-", 60))
def test_split_fields_without_folding_matches_the_general_loop(block: bytes) -> None:
    from mailhub.mime.headers import _split_folded, split_fields

    assert split_fields(block) == _split_folded(block)
