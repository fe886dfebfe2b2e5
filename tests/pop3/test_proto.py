"""Unit and property tests of the sans-I/O POP3 layer (no sockets, no store)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhub.pop3 import proto
from mailhub.pop3.proto import (
    LINE_TOO_LONG,
    Auth,
    Capa,
    Dele,
    DotStuffer,
    LineBuffer,
    List,
    Noop,
    ParseError,
    Pass,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    TopFilter,
    Uidl,
    User,
    Utf8,
    parse_command,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"QUIT\r\n", Quit()),
        (b"quit\r\n", Quit()),
        (b"STAT\r\n", Stat()),
        (b"NOOP\n", Noop()),
        (b"RSET\r\n", Rset()),
        (b"CAPA\r\n", Capa()),
        (b"STLS\r\n", Stls()),
        (b"UTF8\r\n", Utf8()),
        (b"LIST\r\n", List()),
        (b"LIST 3\r\n", List(3)),
        (b"UIDL\r\n", Uidl()),
        (b"uidl 12\r\n", Uidl(12)),
        (b"RETR 1\r\n", Retr(1)),
        (b"DELE 42\r\n", Dele(42)),
        (b"TOP 1 0\r\n", Top(1, 0)),
        (b"TOP 7 10\r\n", Top(7, 10)),
        (b"USER bob@example.org\r\n", User("bob@example.org")),
        (b"PASS secret with spaces \r\n", Pass("secret with spaces ")),
        (b"PASS \xc3\xa9t\xc3\xa9\r\n", Pass("\u00e9t\u00e9")),
        (b"AUTH\r\n", Auth()),
        (b"AUTH plain\r\n", Auth("PLAIN")),
        (b"AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n", Auth("PLAIN", "AGJvYgBzZWNyZXQ=")),
    ],
)
def test_parse_valid(line: bytes, expected: proto.Command) -> None:
    assert parse_command(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        b"\r\n",
        b"FOO\r\n",
        b"RETRIEVE 1\r\n",
        b"RETR\r\n",
        b"RETR 0\r\n",
        b"RETR -1\r\n",
        b"RETR 1 2\r\n",
        b"RETR x\r\n",
        b"RETR 12345678901\r\n",
        b"DELE\r\n",
        b"LIST 1 2\r\n",
        b"LIST 0\r\n",
        b"TOP 1\r\n",
        b"TOP 1 -1\r\n",
        b"TOP 0 1\r\n",
        b"STAT now\r\n",
        b"USER\r\n",
        b"PASS\r\n",
        b"USER \xff\xfe\r\n",
        b"AUTH PLAIN a b\r\n",
        b"APOP bob 0123456789abcdef\r\n",
        b"\x00\x01\r\n",
    ],
)
def test_parse_invalid(line: bytes) -> None:
    result = parse_command(line)
    assert isinstance(result, ParseError)
    assert result.text


def test_password_is_hidden_in_repr() -> None:
    assert "hunter2" not in repr(Pass("hunter2"))
    assert "AGJvYg" not in repr(Auth("PLAIN", "AGJvYgBzZWNyZXQ="))


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_parser_never_raises(line: bytes) -> None:
    result = parse_command(line)
    assert isinstance(result, ParseError | proto.Command)


_VERBS = st.sampled_from(["list", "uidl", "retr", "dele", "top"])


@given(_VERBS, st.integers(1, 2**31), st.integers(0, 10**6), st.sampled_from(["\r\n", "\n", ""]))
def test_numbers_roundtrip(verb: str, msg: int, lines: int, eol: str) -> None:
    if verb == "top":
        line = f"{verb.upper()} {msg} {lines}{eol}"
        assert parse_command(line.encode()) == Top(msg, lines)
    else:
        cls = {"list": List, "uidl": Uidl, "retr": Retr, "dele": Dele}[verb]
        assert parse_command(f"{verb} {msg}{eol}".encode()) == cls(msg)


@given(
    st.text(
        st.characters(min_codepoint=0x20, exclude_categories=("Cs",)), min_size=1, max_size=100
    ).filter(lambda s: s != "\x7f" and "\x7f" not in s)
)
def test_pass_keeps_whole_rest_of_line(password: str) -> None:
    assert parse_command(b"PASS " + password.encode() + b"\r\n") == Pass(password)


def test_status_lines() -> None:
    assert proto.ok("hi") == b"+OK hi\r\n"
    assert proto.ok() == b"+OK\r\n"
    assert proto.err("locked", proto.CODE_IN_USE) == b"-ERR [IN-USE] locked\r\n"
    assert proto.err("a\r\nb") == b"-ERR a  b\r\n"


def test_multiline_stuffs_and_terminates() -> None:
    assert proto.multiline([b"1 20", b".odd"]) == b"1 20\r\n..odd\r\n.\r\n"
    assert proto.multiline([]) == b".\r\n"


def _unstuff(wire: bytes) -> bytes:
    """What a client gets back: drop the terminator, then one leading dot of each line."""
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    body = wire[: -len(b".\r\n")]
    lines = body.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


_LINE = st.binary(max_size=20).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_LINE = st.one_of(_LINE, _LINE.map(lambda b: b"." + b), st.just(b"."), st.just(b".."))
_MESSAGE = st.lists(_LINE, max_size=20).map(lambda ls: b"".join(x + b"\r\n" for x in ls))


@given(_MESSAGE, st.lists(st.integers(0, 200), max_size=8))
def test_dot_stuffer_roundtrip_any_chunking(message: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(message)) for c in cuts})
    pieces = [message[a:b] for a, b in zip([0, *points], [*points, len(message)], strict=True)]
    stuffer = DotStuffer()
    wire = b"".join(stuffer.feed(p) for p in pieces) + stuffer.finish()
    # No line of the wire form may be a lone "." except the terminator.
    assert b"\r\n.\r\n" not in wire[:-3]
    assert not wire[:-3].startswith(b".\r\n")
    assert _unstuff(wire) == message


def test_dot_stuffer_unterminated_last_line() -> None:
    stuffer = DotStuffer()
    wire = stuffer.feed(b"Subject: x\r\n\r\n.no newline") + stuffer.finish()
    assert wire == b"Subject: x\r\n\r\n..no newline\r\n.\r\n"


def test_dot_stuffer_dot_across_chunk_boundary() -> None:
    stuffer = DotStuffer()
    wire = stuffer.feed(b"a\r\n") + stuffer.feed(b".b\r\n") + stuffer.finish()
    assert wire == b"a\r\n..b\r\n.\r\n"
    stuffer = DotStuffer()
    wire = stuffer.feed(b"a\r") + stuffer.feed(b"\n.b\r\n") + stuffer.finish()
    assert wire == b"a\r\n..b\r\n.\r\n"


_MSG = b"From: a\r\nSubject: b\r\n\r\nline1\r\nline2\r\n\r\nline4\r\n"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (0, b"From: a\r\nSubject: b\r\n\r\n"),
        (1, b"From: a\r\nSubject: b\r\n\r\nline1\r\n"),
        (3, b"From: a\r\nSubject: b\r\n\r\nline1\r\nline2\r\n\r\n"),
        (100, _MSG),
    ],
)
def test_top_filter(lines: int, expected: bytes) -> None:
    f = TopFilter(lines)
    assert f.feed(_MSG) == expected


@given(
    st.lists(st.sampled_from([b"H: v", b"", b"body", b".x"]), max_size=15),
    st.integers(0, 6),
    st.lists(st.integers(0, 120), max_size=6),
)
def test_top_filter_chunking_invariant(lines: list[bytes], n: int, cuts: list[int]) -> None:
    message = b"".join(x + b"\r\n" for x in lines)
    whole = TopFilter(n).feed(message)
    points = sorted({min(c, len(message)) for c in cuts})
    f = TopFilter(n)
    got = b""
    for a, b in zip([0, *points], [*points, len(message)], strict=True):
        got += f.feed(message[a:b])
    assert got == whole
    # Reference: header lines up to the first blank, then n body lines.
    if b"" in lines:
        idx = lines.index(b"")
        ref = lines[: idx + 1 + n]
    else:
        ref = lines
    assert whole == b"".join(x + b"\r\n" for x in ref)


def test_line_buffer_splits_and_limits() -> None:
    buf = LineBuffer(1024)
    buf.feed(b"STAT\r\nLI")
    assert buf.next_line() == b"STAT\r\n"
    assert buf.next_line() is None
    buf.feed(b"ST\r\n")
    assert buf.next_line() == b"LIST\r\n"
    buf.feed(b"A" * 2000)
    assert buf.next_line() is LINE_TOO_LONG
    buf.feed(b"B" * 10 + b"\r\nNOOP\r\n")
    assert buf.next_line() == b"NOOP\r\n"
    assert buf.next_line() is None


def test_line_buffer_long_line_arriving_whole() -> None:
    buf = LineBuffer(1024)
    buf.feed(b"X" * 1500 + b"\r\nQUIT\r\n")
    assert buf.next_line() is LINE_TOO_LONG
    assert buf.next_line() == b"QUIT\r\n"


def test_line_buffer_clear_drops_pipelined_input() -> None:
    buf = LineBuffer(1024)
    buf.feed(b"STLS\r\nUSER injected\r\n")
    assert buf.next_line() == b"STLS\r\n"
    buf.clear()
    assert buf.next_line() is None


@given(st.lists(st.binary(max_size=50), max_size=30))
def test_line_buffer_fuzz(chunks: list[bytes]) -> None:
    buf = LineBuffer(1024)
    total = b"".join(chunks)
    out = []
    for c in chunks:
        buf.feed(c)
        while (line := buf.next_line()) is not None:
            out.append(line)
    assert all(isinstance(x, bytes) for x in out)
    assert b"".join(out) == total[: total.rfind(b"\n") + 1] if b"\n" in total else out == []


@given(_MESSAGE, st.lists(st.integers(0, 200), max_size=8))
def test_dot_stuffer_parts_equal_replace(message: bytes, cuts: list[int]) -> None:
    """The zero-copy slices say exactly what a plain bytes.replace would."""
    points = sorted({min(c, len(message)) for c in cuts})
    pieces = [message[a:b] for a, b in zip([0, *points], [*points, len(message)], strict=True)]
    stuffer = DotStuffer()
    wire = b"".join(b"".join(stuffer.feed_parts(p)) for p in pieces) + stuffer.finish()
    expected = (b"\r\n" + message).replace(b"\r\n.", b"\r\n..")[2:]
    assert wire == expected + (b".\r\n" if not message or message.endswith(b"\n") else b"")


def test_dot_stuffer_many_dot_lines_falls_back_to_copy() -> None:
    message = b"".join(b".%d\r\n" % i for i in range(500))
    stuffer = DotStuffer()
    parts = stuffer.feed_parts(message)
    assert len(parts) < 200
    assert b"".join(parts) == b"".join(b"..%d\r\n" % i for i in range(500))
