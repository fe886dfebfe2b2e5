"""Our ENVELOPE / BODY / BODYSTRUCTURE / BODY[section] / BINARY answers vs Dovecot's.

The fixtures are Dovecot 2.3's answers for tests/mime/corpus (regenerate them with
``tests/mime/make_fixtures.py``). Each FETCH item is rendered here the way the IMAP FETCH
handler is expected to call this package, then compared byte for byte. Deliberate
differences are listed in DEVIATIONS with the reason; a deviation that disappears fails the
test too, so the list stays honest.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from mailhub.imap.render import body, bodystructure, envelope
from mailhub.mime.sections import (
    SectionError,
    SectionErrorKind,
    binary,
    binary_literal8,
    binary_size,
    extract,
    nul_safe,
    parse_section,
    partial,
)
from mailhub.mime.structure import parse

HERE = pathlib.Path(__file__).parent
FIXTURES = sorted((HERE / "fixtures").glob("*.json"))

# (message stem, item) -> why we answer differently on purpose
DEVIATIONS: dict[tuple[str, str], str] = {
    **{
        (m, "BINARY.PEEK[]"): "BINARY[] of a whole message is served as stored; Dovecot "
        "decodes every part and rewrites its Content-Transfer-Encoding to binary"
        for m in (
            "02-alternative",
            "03-mixed-attachment",
            "04-nested-rfc822",
            "05-signed",
            "10-rfc2231",
            "11-bad-encoding",
            "15-related-inline",
        )
    },
    ("11-bad-encoding", "BINARY.PEEK[1]"): "invalid base64 is decoded leniently (junk skipped) "
    "instead of NO [PARSE]: a sensible answer for malformed MIME",
    ("11-bad-encoding", "BINARY.SIZE[1]"): "same lenient base64 decoding",
    ("11-bad-encoding", "BINARY.PEEK[3]"): "invalid quoted-printable kept literally, "
    "not NO [PARSE]",
    ("11-bad-encoding", "BINARY.SIZE[3]"): "same lenient quoted-printable decoding",
    **{
        ("26-bad-content-types", item): 'an unparsable Content-Type ("text", "/plain") '
        "means text/plain; charset=us-ascii (RFC 2045 §5.2), where Dovecot reports empty "
        'type/subtype strings; an empty disposition type gives NIL, not ("" (...))'
        for item in ("BODYSTRUCTURE", "BODY")
    },
    **{
        ("34-junk-subtype", item): "junk after the subtype makes the Content-Type invalid "
        'for both; we then report text/plain (RFC 2045 §5.2), Dovecot reports "" ""'
        for item in ("BODYSTRUCTURE", "BODY")
    },
    **{
        ("32-not-mime", item): "a message without MIME-Version and Content-Type is not MIME "
        "(RFC 2045 §4): BODYSTRUCTURE ignores its Content-Transfer-Encoding in both servers, "
        "and so does our BINARY; Dovecot's BINARY decodes it anyway (here: NO [PARSE])"
        for item in ("BINARY.PEEK[]", "BINARY.PEEK[1]", "BINARY.SIZE[1]")
    },
    ("26-bad-content-types", "BINARY.PEEK[]"): "BINARY[] served as stored (see above)",
    **{
        (m, item): "HEADER.FIELDS always ends with the end-of-header CRLF; Dovecot leaves it "
        "out when Subject is the last line of a header without a blank line (Subject comes "
        "from its header cache)"
        for m, item in (
            ("20-header-only", "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"),
            (
                "24-lf-in-multipart-preamble-dup-headers",
                "BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]",
            ),
        )
    },
}


def render_item(data: bytes, item: str) -> tuple[str, bytes]:
    """Render one FETCH item as ``(status, response inside FETCH (...))``."""
    root = parse(data)
    if item == "ENVELOPE":
        return "OK", b"ENVELOPE " + envelope(root.fields)
    if item == "BODYSTRUCTURE":
        return "OK", b"BODYSTRUCTURE " + bodystructure(root)
    if item == "BODY":
        return "OK", b"BODY " + body(root)
    if item == "RFC822.SIZE":
        return "OK", b"RFC822.SIZE %d" % len(data)
    m = re.fullmatch(r"(BODY|BINARY)(\.PEEK|\.SIZE)?\[(.*)\](?:<(\d+)(?:\.(\d+))?>)?", item)
    assert m is not None, item
    kind, mod, spec, origin, length = m.groups()
    section = parse_section(spec.encode())
    try:
        if kind == "BODY":
            value = nul_safe(extract(data, root, section))
        elif mod == ".SIZE":
            size = binary_size(data, root, section.part)
            return "OK", b"BINARY.SIZE[%s] %d" % (spec.encode(), size)
        else:
            value = binary(data, root, section.part)
    except SectionError as e:
        assert e.kind is SectionErrorKind.UNKNOWN_CTE
        return "NO [UNKNOWN-CTE]", b""
    name = kind.encode() + b"[" + section.spec() + b"]"
    if origin is not None:
        value = partial(value, int(origin), int(length) if length else None)
        name += b"<%d>" % int(origin)
    if kind == "BINARY":
        lit8 = binary_literal8(root, section.part, value)
        return "OK", name + (b" ~{%d}\r\n" if lit8 else b" {%d}\r\n") % len(value) + value
    return "OK", name + b" {%d}\r\n" % len(value) + value


def _cases() -> list[tuple[str, str, dict[str, str]]]:
    cases = []
    for f in FIXTURES:
        doc = json.loads(f.read_text())
        for item, expected in doc["items"].items():
            cases.append((f.stem, item, expected))
    return cases


CASES = _cases()


def test_fixtures_present() -> None:
    assert len(FIXTURES) >= 20
    assert len(CASES) > 400


@pytest.mark.parametrize(("stem", "item", "expected"), CASES, ids=[f"{s}:{i}" for s, i, _ in CASES])
def test_matches_dovecot(stem: str, item: str, expected: dict[str, str]) -> None:
    data = (HERE / "corpus" / f"{stem}.eml").read_bytes()
    status, ours = render_item(data, item)
    want = expected["response"].encode("utf-8", "surrogateescape")
    same = status == expected["status"] and (status != "OK" or ours == want)
    if (stem, item) in DEVIATIONS:
        assert not same, f"deviation no longer needed: {DEVIATIONS[stem, item]}"
        return
    assert status == expected["status"]
    if status == "OK":
        assert ours == want
