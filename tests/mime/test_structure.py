"""MIME structure parser: offsets, sizes, malformed input, limits, properties."""

from __future__ import annotations

import base64
import pathlib
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhub.imap.render import body, bodystructure, envelope
from mailhub.mime.sections import Section, extract, part_numbers
from mailhub.mime.structure import MAX_DEPTH, Part, parse, part_by_number

from .imapsyntax import read

CORPUS = sorted((pathlib.Path(__file__).parent / "corpus").glob("*.eml"))


def check_invariants(data: bytes, root: Part) -> None:
    """Every part lies within the message, children lie inside their parent's body in order."""
    n = len(data)

    def visit(p: Part, lo: int, hi: int) -> None:
        assert lo <= p.header_start <= p.body_start <= p.body_end <= hi <= n
        assert p.lines == data.count(b"\n", p.body_start, p.body_end)
        prev = p.body_start
        for c in p.children:
            assert c.header_start >= prev
            visit(c, p.body_start, p.body_end)
            prev = c.body_end
        if p.message is not None:
            assert p.message.header_start == p.body_start
            visit(p.message, p.body_start, p.body_end)
        if p.is_multipart:
            assert p.children, "a multipart always has at least one part"
        if p.preamble_end >= 0:
            assert p.body_start <= p.preamble_end <= p.children[0].header_start
            assert data.startswith(b"--", p.preamble_end)
        if p.epilogue_start >= 0:
            assert p.children[-1].body_end <= p.epilogue_start <= p.body_end
        assert p.header_start <= p.header_fetch_end <= p.body_start

    visit(root, 0, n)


def check_renders(data: bytes, root: Part) -> None:
    for value in (bodystructure(root), body(root), envelope(root.fields)):
        parsed = read(value)  # raises on malformed IMAP syntax
        assert isinstance(parsed, list)
    env = read(envelope(root.fields))
    assert isinstance(env, list) and len(env) == 10
    assert extract(data, root, Section()) == data


def test_corpus_invariants() -> None:
    for f in CORPUS:
        data = f.read_bytes()
        root = parse(data)
        check_invariants(data, root)
        check_renders(data, root)


def test_lf_only_input_gives_same_shape() -> None:
    """LF-only messages (not what the store serves, but seen in the wild) parse the same way."""
    for f in CORPUS:
        crlf = f.read_bytes()
        lf = crlf.replace(b"\r\n", b"\n")
        a, b = parse(crlf), parse(lf)
        shape_a = [(n, p.type.lower(), p.subtype.lower(), p.lines) for n, p in part_numbers(a)]
        shape_b = [(n, p.type.lower(), p.subtype.lower(), p.lines) for n, p in part_numbers(b)]
        assert shape_a == shape_b, f.name
        check_invariants(lf, b)


def test_offsets_of_alternative() -> None:
    data = (pathlib.Path(__file__).parent / "corpus" / "02-alternative.eml").read_bytes()
    root = parse(data)
    plain, html = root.children
    assert data[plain.body_start : plain.body_end].startswith(b"Caf=C3=A9")
    assert data[plain.body_end : plain.body_end + 2] == b"\r\n"  # belongs to the delimiter
    assert data[html.header_start :].startswith(b"Content-Type: text/html")
    assert data[html.body_start : html.body_end].endswith(b"</html>\r\n")
    assert root.body_end == len(data)  # epilogue included in the multipart body
    assert data[root.body_start : root.preamble_end].startswith(b"This is a multi-part")
    assert data[root.epilogue_start :] == b"\r\nEpilogue text.\r\n"


def test_nested_boundary_prefix_and_missing_close() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
        b"Content-Type: multipart/alternative; boundary=ab\r\n\r\n--ab\r\n\r\ninner\r\n"
        b"--a\r\n\r\nsecond\r\n--a--\r\n"
    )
    root = parse(data)
    check_invariants(data, root)
    inner, second = root.children
    assert inner.is_multipart and len(inner.children) == 1
    assert data[inner.children[0].body_start : inner.children[0].body_end] == b"inner"
    assert data[second.body_start : second.body_end] == b"second"


def test_no_headers_and_empty() -> None:
    for data in (b"", b"\r\n", b"\n", b"x", b"Subject: x", b"--\r\n", b"\r\n\r\n"):
        root = parse(data)
        check_invariants(data, root)
        check_renders(data, root)


def test_deep_nesting_is_capped() -> None:
    depth = 3000
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    data = head + b"\r\nleaf\r\n"
    root = parse(data)
    check_invariants(data, root)
    levels = 0
    p = root
    while p.children:
        p = p.children[0]
        levels += 1
    assert levels <= MAX_DEPTH + 1
    read(bodystructure(root))


def test_deep_rfc822_nesting() -> None:
    data = b"Content-Type: message/rfc822\r\n\r\n" * 2000 + b"Subject: x\r\n\r\nbody\r\n"
    root = parse(data)
    check_invariants(data, root)
    read(bodystructure(root))


def test_many_parts_capped() -> None:
    data = b"Content-Type: multipart/mixed; boundary=z\r\n\r\n" + b"--z\r\n\r\nx\r\n" * 20000
    root = parse(data)
    check_invariants(data, root)
    assert len(root.walk()) <= 10002


def test_large_attachment_is_fast() -> None:
    """A 50 MB message parses in well under a second per 50 MB on this machine."""
    blob = base64.encodebytes(b"\x00\xff" * (18 * 1024 * 1024)).replace(b"\n", b"\r\n")
    data = (
        b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\n\r\ntext\r\n"
        b"--BB\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + blob + b"--BB--\r\n"
    )
    assert len(data) > 48 * 1024 * 1024
    t = time.perf_counter()
    root = parse(data)
    elapsed = time.perf_counter() - t
    assert root.children[1].body_size == len(blob) - 2
    assert elapsed < 3.0, elapsed


def test_part_by_number() -> None:
    data = (pathlib.Path(__file__).parent / "corpus" / "04-nested-rfc822.eml").read_bytes()
    root = parse(data)
    msg_part = part_by_number(root, [2])
    assert msg_part is not None and msg_part.message is not None
    inner_plain = part_by_number(root, [2, 1])
    assert inner_plain is not None and inner_plain.subtype == b"plain"
    assert part_by_number(root, [2, 3]) is None
    assert part_by_number(root, [3]) is None
    assert part_by_number(root, [1, 1]) is None
    simple = parse(b"Subject: x\r\n\r\nhi\r\n")
    assert part_by_number(simple, [1]) is simple
    assert part_by_number(simple, [2]) is None


# -- properties ---------------------------------------------------------------------------

_LINES = st.sampled_from(
    [
        b"",
        b"text line",
        b"Content-Type: multipart/mixed; boundary=b1",
        b'Content-Type: multipart/alternative; boundary="b2"',
        b"Content-Type: multipart/digest; boundary=b1x",
        b"Content-Type: message/rfc822",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: base64",
        b"Content-Transfer-Encoding: quoted-printable",
        b"Content-Disposition: attachment; filename*0*=utf-8''%E2; filename*1=x",
        b"Subject: =?utf-8?q?hi?=",
        b"From: a <b@c>, group: x@y;",
        b"--b1",
        b"--b1--",
        b"--b2",
        b"--b2--",
        b"--b1x",
        b" folded",
        b"\xff\xfe 8-bit",
        b"=?x?=",
    ]
)
_EOL = st.sampled_from([b"\r\n", b"\n", b"\r"])


@st.composite
def mime_like(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(_LINES, _EOL), max_size=40))
    data = b"".join(a + b for a, b in lines)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_parse_never_raises_on_random_bytes(data: bytes) -> None:
    root = parse(data)
    check_invariants(data, root)
    check_renders(data, root)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mime_like())
def test_parse_never_raises_on_mime_like_input(data: bytes) -> None:
    root = parse(data)
    check_invariants(data, root)
    check_renders(data, root)
    for num, part in part_numbers(root):
        assert part_by_number(root, list(num)) is part


def test_headers_without_blank_lines_stay_linear() -> None:
    """Regression: each part's blank-line search used to scan to the end of the message."""
    data = (
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        + b"--B\r\nX: y\r\n" * 9000
        + b"Z" * 2_000_000
    )
    t = time.perf_counter()
    root = parse(data)
    assert time.perf_counter() - t < 5.0
    assert len(root.children) == 9000
    check_invariants(data, root)
