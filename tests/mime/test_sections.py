"""BODY[section] / BINARY extraction: spec parsing, forms, partials, decoding, properties."""

from __future__ import annotations

import base64
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhub.mime.sections import (
    Section,
    SectionError,
    SectionErrorKind,
    binary,
    binary_literal8,
    binary_range,
    binary_size,
    decode_body,
    extract,
    parse_section,
    partial,
    section_range,
)
from mailhub.mime.structure import parse

CORPUS = pathlib.Path(__file__).parent / "corpus"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (b"", Section()),
        (b"HEADER", Section((), "HEADER")),
        (b"text", Section((), "TEXT")),
        (b"1", Section((1,))),
        (b"1.2.3", Section((1, 2, 3))),
        (b"1.2.MIME", Section((1, 2), "MIME")),
        (b"2.HEADER", Section((2,), "HEADER")),
        (b"HEADER.FIELDS (From To)", Section((), "HEADER.FIELDS", (b"From", b"To"))),
        (b"1.HEADER.FIELDS.NOT (X-A)", Section((1,), "HEADER.FIELDS.NOT", (b"X-A",))),
    ],
)
def test_parse_section(spec: bytes, expected: Section) -> None:
    assert parse_section(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        b"MIME",
        b"0",
        b"1.0",
        b"1..2",
        b"HEADER.FIELDS",
        b"HEADER.FIELDS ()",
        b"1HEADER",
        b"TEXT (A)",
        b"FOO",
        b"1.",
        b"01",
    ],
)
def test_parse_section_rejects(spec: bytes) -> None:
    with pytest.raises(SectionError) as e:
        parse_section(spec)
    assert e.value.kind is SectionErrorKind.SYNTAX


def test_section_spec_echo() -> None:
    s = parse_section(b"1.HEADER.FIELDS (from x-y)")
    assert s.spec() == b"1.HEADER.FIELDS (FROM X-Y)"


def test_header_fields_keep_folding_and_order() -> None:
    data = b"To: a@b,\r\n c@d\r\nSubject: s\r\nX-A: 1\r\nto: e@f\r\n\r\nbody\r\n"
    root = parse(data)
    got = extract(data, root, parse_section(b"HEADER.FIELDS (TO)"))
    assert got == b"To: a@b,\r\n c@d\r\nto: e@f\r\n\r\n"
    got = extract(data, root, parse_section(b"HEADER.FIELDS.NOT (to x-a)"))
    assert got == b"Subject: s\r\n\r\n"
    assert extract(data, root, parse_section(b"HEADER.FIELDS (NOPE)")) == b"\r\n"


def test_ranges_are_contiguous_slices() -> None:
    data = (CORPUS / "04-nested-rfc822.eml").read_bytes()
    root = parse(data)
    for spec in (b"", b"HEADER", b"TEXT", b"1", b"1.MIME", b"2", b"2.HEADER", b"2.TEXT", b"2.1"):
        sec = parse_section(spec)
        rng = section_range(root, sec)
        assert rng is not None
        assert extract(data, root, sec) == data[rng[0] : rng[1]]
    assert extract(data, root, parse_section(b"2.HEADER")).startswith(b"From: Original")
    assert extract(data, root, parse_section(b"2.1")) == b"Gr=FC=DFe\r\n"
    assert section_range(root, parse_section(b"HEADER.FIELDS (A)")) is None
    assert extract(data, root, parse_section(b"1.HEADER")) == b""  # not a message part
    assert extract(data, root, parse_section(b"7")) == b""


def test_partial() -> None:
    assert partial(b"0123456789", 2, 3) == b"234"
    assert partial(b"0123456789", 8, 10) == b"89"
    assert partial(b"0123456789", 20, 5) == b""
    assert partial(b"0123456789", 3, None) == b"3456789"


def test_binary_decodes() -> None:
    payload = bytes(range(256))
    data = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(payload).replace(b"\n", b"\r\n")
        + b"--x\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\na=3Db=\r\nc\r\n"
        b"--x\r\nContent-Transfer-Encoding: x-gzip\r\n\r\nzz\r\n--x--\r\n"
    )
    root = parse(data)
    assert binary(data, root, (1,)) == payload
    assert binary_size(data, root, (1,)) == 256
    assert binary_literal8(root, (1,), payload)
    assert binary(data, root, (2,)) == b"a=bc"
    with pytest.raises(SectionError) as e:
        binary(data, root, (3,))
    assert e.value.kind is SectionErrorKind.UNKNOWN_CTE
    with pytest.raises(SectionError):
        binary_size(data, root, (3,))
    assert binary(data, root, ()) == data
    assert binary(data, root, (9,)) == b""


def test_decode_body_lenient() -> None:
    assert decode_body(b"aGVs\r\nbG8=\r\n", b"base64") == b"hello"
    assert decode_body(b"a!G@V#s$bG8", b"BASE64") == b"hello"
    assert decode_body(b"abc", b"x-unknown", strict=False) == b"abc"
    assert decode_body(b"caf=C3=A9", b"quoted-printable") == "café".encode()


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=1500),
    st.sampled_from(
        [b"", b"HEADER", b"TEXT", b"1", b"1.MIME", b"2", b"1.1", b"2.HEADER", b"1.2.TEXT"]
    ),
)
def test_sections_never_raise_and_stay_in_bounds(data: bytes, spec: bytes) -> None:
    root = parse(data)
    sec = parse_section(spec)
    got = extract(data, root, sec)
    assert got in data
    rng = section_range(root, sec)
    assert rng is not None and 0 <= rng[0] <= rng[1] <= len(data)
    assert extract(data, root, Section()) == data
    hdr = extract(data, root, parse_section(b"HEADER"))
    text = extract(data, root, parse_section(b"TEXT"))
    assert hdr + text == data
    for part in ((), (1,), (2,), (1, 1)):
        try:
            binary(data, root, part)
        except SectionError as e:
            assert e.kind is SectionErrorKind.UNKNOWN_CTE


def test_quoted_printable_trailing_blanks_are_padding() -> None:
    assert decode_body(b"Some text. \r\nnext\t\r\nend  ", b"quoted-printable") == (
        b"Some text.\r\nnext\r\nend"
    )
    assert decode_body(b"keep=20\r\n", b"quoted-printable") == b"keep \r\n"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1500))
def test_serialised_tree_serves_the_same_sections(data: bytes) -> None:
    """dumps/loads keep everything BODY[section] and BINARY need (offsets, types, CTE)."""
    from mailhub.mime.sections import filter_header, header_range, part_numbers
    from mailhub.mime.structure import dumps, loads

    root = parse(data)
    copy = loads(dumps(root))
    assert copy is not None
    nums = [n for n, _ in part_numbers(root)]
    assert nums == [n for n, _ in part_numbers(copy)]
    for num in [(), *nums]:
        for text in (None, "MIME", "HEADER", "TEXT"):
            if text == "MIME" and not num:
                continue
            sec = Section(num, text)
            assert section_range(copy, sec) == section_range(root, sec)
        fsec = Section(num, "HEADER.FIELDS", (b"subject",))
        rng = header_range(copy, fsec)
        got = b"" if rng is None else filter_header(data[rng[0] : rng[1]], fsec)
        assert got == extract(data, root, fsec)
        try:
            want: bytes | None = binary(data, root, num)
        except SectionError:
            want = None
        try:
            assert binary(data, copy, num) == want
        except SectionError:
            assert want is None
        start, end, enc = binary_range(copy, num)
        try:
            raw = data[start:end]
            assert (raw if enc is None else decode_body(raw, enc)) == want
        except SectionError:
            assert want is None
    assert loads(b"not json") is None
    assert loads(b"[1,2]") is None
