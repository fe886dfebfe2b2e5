"""The parse cache answers exactly what the full grammar answers, for any line."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imap_proto_strategies import commands, seqsets, tags

from mailhub.imap.proto import CommandParser, Limits, ParseError, parse_cache
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.cmdencode import encode_command
from mailhub.imap.proto.grammar import parse_command
from mailhub.imap.proto.names import NameOptions
from mailhub.imap.proto.parse_cache import parse_command_cached
from mailhub.imap.proto.sequence import SequenceSet
from mailhub.imap.proto.tokens import BadSyntax, Refused

OPTS = (NameOptions(utf8=False), NameOptions(utf8=True))


def outcome(fn: object, line: bytes, opts: NameOptions) -> object:
    """A parse result, or the error it raised (type and text), for comparing two parsers."""
    try:
        return fn(line, opts)  # type: ignore[operator]
    except (BadSyntax, Refused) as exc:
        return (type(exc), str(exc), getattr(exc, "code", None))


def one_line(cmd: c.Command, utf8: bool) -> bytes | None:
    wire = encode_command(cmd, utf8=utf8)
    return None if wire.count(b"\r\n") != 1 else wire[:-2]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(commands, tags, st.booleans())
def test_a_repeated_shape_parses_as_the_grammar_does(
    cmd: c.Command, other_tag: str, utf8: bool
) -> None:
    line = one_line(cmd, utf8)
    if line is None:
        return  # literals never reach the cache
    opts = OPTS[utf8]
    first = outcome(parse_command_cached, line, opts)
    assert first == outcome(parse_command, line, opts)
    again = line.replace(cmd.tag.encode(), other_tag.encode(), 1)
    assert outcome(parse_command_cached, again, opts) == outcome(parse_command, again, opts)


@settings(max_examples=300)
@given(commands, seqsets, st.booleans())
def test_a_new_sequence_set_in_a_known_shape_is_parsed_for_this_line(
    cmd: c.Command, seqset: SequenceSet, utf8: bool
) -> None:
    if not hasattr(cmd, "seqset"):
        return
    opts = OPTS[utf8]
    changed = dataclasses.replace(cmd, seqset=SequenceSet(seqset.ranges))  # type: ignore[type-var]
    for variant in (cmd, changed):
        line = one_line(variant, utf8)
        if line is None:
            return
        assert outcome(parse_command_cached, line, opts) == outcome(parse_command, line, opts)


_line_bytes = st.sampled_from(
    [b"a", b"UID", b"FETCH", b"STORE", b"SEARCH", b"NOOP", b"1:*", b"0", b"$", b"1,2",
     b"(FLAGS)", b"+FLAGS", b"(\\Seen)", b"INBOX", b"\"x\"", b" ", b"*", b"+", b"{3}",
     b"COPY", b"MOVE", b"UNSEEN", b"BODY.PEEK[]", b"\x00", b"\xff", b"STATUS", b"(MESSAGES)"]
)  # fmt: skip


@settings(max_examples=1500)
@given(st.lists(_line_bytes, min_size=1, max_size=7), st.booleans())
def test_any_line_gets_the_same_answer_or_error(words: list[bytes], utf8: bool) -> None:
    line = b" ".join(words)
    opts = OPTS[utf8]
    expected = outcome(parse_command, line, opts)
    assert outcome(parse_command_cached, line, opts) == expected
    assert outcome(parse_command_cached, line, opts) == expected  # from the cache this time


def test_login_is_never_kept() -> None:
    parse_command_cached(b'a1 LOGIN "alice" "s3cret-pass"', NameOptions())
    parse_command_cached(b"a2 AUTHENTICATE PLAIN AGFsaWNlAHMzY3JldA==", NameOptions())
    kept = repr(parse_cache._shapes)
    assert "s3cret" not in kept and "AGFsaWNl" not in kept


def test_the_cache_stays_bounded() -> None:
    for i in range(parse_cache.MAX_SHAPES * 2):
        parse_command_cached(f"t SEARCH SUBJECT x{i}".encode(), NameOptions())
    assert len(parse_cache._shapes) <= parse_cache.MAX_SHAPES


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"t1 FETCH 0 (FLAGS)\r\n", "BAD"),
        (b"t2 UID STORE 1:x +FLAGS (\\Seen)\r\n", "BAD"),
        (b"t3 FETCH 1 (NOSUCH)\r\n", "BAD"),
        (b"t4 NOOP extra\r\n", "BAD"),
    ],
)
def test_errors_keep_their_tag_through_the_parser(line: bytes, status: str) -> None:
    p = CommandParser(Limits())
    for _ in range(2):  # the second time the shape may be cached: same answer
        p.feed(line)
        ev = p.next_event()
        assert isinstance(ev, ParseError)
        assert ev.tag == line.split(b" ")[0].decode()
        assert ev.status == status


def test_lines_of_one_shape_share_one_entry() -> None:
    parse_cache._shapes.clear()
    a = parse_command_cached(b"a1 UID FETCH 1:5 (FLAGS)", NameOptions())
    b = parse_command_cached(b"b22 UID FETCH 7,9:* (FLAGS)", NameOptions())
    assert len(parse_cache._shapes) == 1
    assert isinstance(b, c.Fetch) and isinstance(a, c.Fetch)
    assert (b.tag, b.seqset, b.atts, b.uid) == ("b22", SequenceSet.parse("7,9:*"), a.atts, True)
