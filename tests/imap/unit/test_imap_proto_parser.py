"""Framing: literals across packets, limits and recovery, IDLE/AUTHENTICATE/STARTTLS modes."""

from __future__ import annotations

import pytest
from imap_proto_helpers import events

from mailhub.imap.proto import (
    NEED_DATA,
    PAUSED,
    AuthResponse,
    CommandParser,
    IdleDone,
    Limits,
    NeedContinuation,
    ParseError,
)
from mailhub.imap.proto import commands as c

SMALL = Limits(
    max_line_length=1024,
    max_literal_size=2000,
    max_arg_literal_size=100,
    max_command_size=4096,
)


def drain(p: CommandParser) -> list[object]:
    out: list[object] = []
    while True:
        ev = p.next_event()
        if ev is NEED_DATA or ev is PAUSED:
            out.append(ev)
            return out
        out.append(ev)


def test_sync_literal_split_across_packets() -> None:
    p = CommandParser()
    p.feed(b"a1 LOGIN {3}\r")
    assert p.next_event() is NEED_DATA
    p.feed(b"\n")
    assert p.next_event() == NeedContinuation(3, "a1", "LOGIN")
    assert p.next_event() is NEED_DATA
    p.feed(b"j")
    assert p.next_event() is NEED_DATA
    p.feed(b"oe {2}\r\n")
    assert p.next_event() == NeedContinuation(2, "a1", "LOGIN")
    p.feed(b"pw\r\na2 NOOP\r\n")
    assert p.next_event() == c.Login("a1", "joe", "pw")
    assert p.next_event() == c.Noop("a2")
    assert p.next_event() is NEED_DATA


def test_literal_containing_crlf_and_command_text() -> None:
    data = b"a APPEND INBOX {23}\r\nb NOOP\r\nc LOGOUT\r\n\r\n.\r\n\r\nb NOOP\r\n"
    evs = events(data)
    assert isinstance(evs[0], NeedContinuation)
    assert isinstance(evs[1], c.Append)
    assert evs[1].messages[0].data == b"b NOOP\r\nc LOGOUT\r\n\r\n.\r\n"
    assert evs[2] == c.Noop("b")
    assert len(evs) == 3


def test_nonsync_literal_needs_no_continuation() -> None:
    evs = events(b"a LOGIN {3+}\r\njoe {2+}\r\npw\r\n")
    assert evs == [c.Login("a", "joe", "pw")]


def test_binary_literal8_announced() -> None:
    evs = events(b"a APPEND INBOX ~{3}\r\na\x00b\r\n")
    assert evs[0] == NeedContinuation(3, "a", "APPEND", binary=True)
    assert isinstance(evs[1], c.Append) and evs[1].messages[0].binary


def test_bare_lf_and_empty_lines_tolerated() -> None:
    assert events(b"\r\n\r\na NOOP\nb LOGIN {1}\nx y\n") == [
        c.Noop("a"),
        NeedContinuation(1, "b", "LOGIN"),
        c.Login("b", "x", "y"),
    ]


def test_line_too_long_is_skipped_and_connection_survives() -> None:
    p = CommandParser(SMALL)
    p.feed(b"a1 NOOP " + b"x" * 600)
    assert p.next_event() is NEED_DATA
    p.feed(b"y" * 600)  # now over the limit without a line end: error at once
    err = p.next_event()
    assert isinstance(err, ParseError)
    assert (err.tag, err.status, err.code, err.fatal) == ("a1", "BAD", "TOOBIG", False)
    assert p.buffered == 0  # nothing kept
    for _ in range(50):
        p.feed(b"z" * 1000)
        assert p.next_event() is NEED_DATA
        assert p.buffered == 0
    p.feed(b"zz\r\na2 NOOP\r\n")
    assert p.next_event() == c.Noop("a2")


def test_complete_overlong_line_in_one_packet() -> None:
    evs = events(b"a1 NOOP " + b"x" * 2000 + b"\r\na2 NOOP\r\n", limits=SMALL)
    assert isinstance(evs[0], ParseError) and evs[0].tag == "a1" and evs[0].code == "TOOBIG"
    assert evs[1:] == [c.Noop("a2")]


def test_overlong_line_ending_in_nonsync_literal_skips_the_literal() -> None:
    data = b"a1 LOGIN " + b"x" * 2000 + b" {10+}\r\n0123456789\r\na2 NOOP\r\n"
    evs = events(data, limits=SMALL)
    assert [type(e) for e in evs] == [ParseError, c.Noop]


def test_append_too_big_sync_is_no_toobig_without_continuation() -> None:
    evs = events(b"a1 APPEND INBOX {5000}\r\na2 NOOP\r\n", limits=SMALL)
    assert evs[0] == ParseError("a1", "NO", "TOOBIG", "Message too large", command="APPEND")
    assert evs[1] == c.Noop("a2")


def test_append_too_big_nonsync_is_discarded() -> None:
    p = CommandParser(SMALL)
    p.feed(b"a1 APPEND INBOX (\\Seen) {5000+}\r\n")
    err = p.next_event()
    assert isinstance(err, ParseError) and (err.status, err.code) == ("NO", "TOOBIG")
    for _ in range(5):
        p.feed(b"A" * 1000)
        assert p.next_event() is NEED_DATA
        assert p.buffered == 0
    p.feed(b" {3+}\r\nabc\r\na2 NOOP\r\n")  # the rest of the rejected command, then more
    assert p.next_event() == c.Noop("a2")


def test_multiappend_total_limit() -> None:
    evs = events(
        b"a1 APPEND INBOX {1500+}\r\n"
        + b"x" * 1500
        + b" {1500+}\r\n"
        + b"y" * 1500
        + b"\r\na2 NOOP\r\n",
        limits=SMALL,
    )
    assert isinstance(evs[0], ParseError) and (evs[0].status, evs[0].code) == ("NO", "LIMIT")
    assert evs[1:] == [c.Noop("a2")]


def test_argument_literal_too_big_is_bad() -> None:
    evs = events(b"a1 LOGIN joe {500}\r\na2 NOOP\r\n", limits=SMALL)
    assert evs[0] == ParseError("a1", "BAD", "TOOBIG", "Literal too large", command="LOGIN")
    assert evs[1] == c.Noop("a2")


def test_command_size_limit() -> None:
    line = b"a1 SEARCH" + b" TEXT {90+}\r\n" + b"q" * 90
    evs = events(line * 1 + b" ALL\r\na2 NOOP\r\n", limits=SMALL)
    assert isinstance(evs[0], c.Search)
    many = (
        b"a1 SEARCH"
        + b"".join(b" TEXT {90+}\r\n" + b"q" * 90 for _ in range(60))
        + b"\r\na2 NOOP\r\n"
    )
    evs = events(many, limits=SMALL)
    assert isinstance(evs[0], ParseError) and evs[0].code == "TOOBIG"
    assert evs[1:] == [c.Noop("a2")]


def test_literal_minus_semantics() -> None:
    lim = Limits(max_nonsync_literal=4096)
    evs = events(b"a1 APPEND INBOX {4096+}\r\n" + b"m" * 4096 + b"\r\n", limits=lim)
    assert isinstance(evs[0], c.Append)
    evs = events(b"a1 APPEND INBOX {4097+}\r\n" + b"m" * 4097 + b"\r\na2 NOOP\r\n", limits=lim)
    assert evs[0] == ParseError(
        "a1", "BAD", "TOOBIG", "Non-synchronizing literal too large", command="APPEND"
    )
    assert evs[1:] == [c.Noop("a2")]
    # a synchronising literal of the same size is fine
    evs = events(b"a1 APPEND INBOX {4097}\r\n" + b"m" * 4097 + b"\r\n", limits=lim)
    assert isinstance(evs[1], c.Append)


def test_idle_done_with_pipelined_command() -> None:
    p = CommandParser()
    p.feed(b"a1 IDLE\r\n")
    assert p.next_event() == c.Idle("a1")
    assert p.next_event() is PAUSED
    p.start_idle()
    assert p.next_event() is NEED_DATA
    p.feed(b"DONE\r\na2 NOOP\r\n")  # iOS sends its next command right behind DONE
    assert p.next_event() == IdleDone("a1")
    assert p.next_event() == c.Noop("a2")


def test_idle_done_case_insensitive_and_garbage() -> None:
    p = CommandParser()
    p.feed(b"a1 IDLE\r\ndone\r\n")
    assert p.next_event() == c.Idle("a1")
    p.start_idle()
    assert p.next_event() == IdleDone("a1")
    p.feed(b"a2 IDLE\r\na3 NOOP\r\n")
    assert p.next_event() == c.Idle("a2")
    p.start_idle()
    err = p.next_event()
    assert isinstance(err, ParseError) and (err.tag, err.status, err.text) == (
        "a2",
        "BAD",
        "Expected DONE",
    )


def test_idle_refused_resume() -> None:
    p = CommandParser()
    p.feed(b"a1 IDLE\r\na2 NOOP\r\n")
    assert p.next_event() == c.Idle("a1")
    assert p.next_event() is PAUSED
    p.resume()
    assert p.next_event() == c.Noop("a2")


def test_authenticate_exchange() -> None:
    p = CommandParser()
    p.feed(b"a1 AUTHENTICATE LOGIN\r\n")
    assert p.next_event() == c.Authenticate("a1", "LOGIN")
    assert p.next_event() is PAUSED
    p.expect_auth_response()
    p.feed(b"am9l\r\n")
    ev = p.next_event()
    assert isinstance(ev, AuthResponse) and ev.decode() == b"joe" and ev.tag == "a1"
    assert "am9l" not in repr(ev)
    assert p.next_event() is PAUSED
    p.expect_auth_response()
    p.feed(b"*\r\n")
    ev = p.next_event()
    assert isinstance(ev, AuthResponse) and ev.cancelled
    with pytest.raises(ValueError):
        AuthResponse("a1", b"!!").decode()
    p.resume()
    p.feed(b"a2 NOOP\r\n")
    assert p.next_event() == c.Noop("a2")


def test_starttls_buffered_bytes_are_handed_over() -> None:
    p = CommandParser()
    p.feed(b"a1 STARTTLS\r\na2 LOGIN evil pw\r\n")
    assert p.next_event() == c.StartTls("a1")
    assert p.next_event() is PAUSED
    assert p.take_buffered() == b"a2 LOGIN evil pw\r\n"
    assert p.next_event() is NEED_DATA


def test_compress_buffered_bytes_are_handed_over() -> None:
    p = CommandParser()
    p.feed(b"a1 COMPRESS DEFLATE\r\n\x78\x9c")
    assert p.next_event() == c.Compress("a1", "DEFLATE")
    assert p.next_event() is PAUSED
    assert p.take_buffered() == b"\x78\x9c"
    p.feed(b"a2 NOOP\r\n")
    assert p.next_event() == c.Noop("a2")


def test_utf8_mode_applies_to_next_pipelined_command() -> None:
    p = CommandParser()
    p.feed(b'a1 ENABLE UTF8=ACCEPT\r\na2 SELECT "Q&A"\r\n')
    assert p.next_event() == c.Enable("a1", ("UTF8=ACCEPT",))
    p.utf8_names = True  # what the session does once ENABLE succeeded
    assert p.next_event() == c.Select("a2", "Q&A")


def test_errors_keep_parsing_going() -> None:
    evs = events(b"a1 FETCH\r\n* NOOP\r\n\x00\x01\x02\r\na2 NOOP\r\n")
    assert [type(e) for e in evs] == [ParseError, ParseError, ParseError, c.Noop]
    assert [getattr(e, "tag", None) for e in evs[:3]] == ["a1", "*", "*"]


def test_literal_count_overflow_is_not_a_literal() -> None:
    evs = events(b"a1 LOGIN {123456789012345678901234}\r\na2 NOOP\r\n")
    assert isinstance(evs[0], ParseError) and evs[0].status == "BAD"
    assert evs[1] == c.Noop("a2")


def test_no_continuation_for_unknown_commands_or_tags() -> None:
    evs = events(
        b"a1 FROB {5}\r\n+bad LOGIN {5}\r\na2 NOOP {3+}\r\nabc\r\na3 XYZZY {3+}\r\nabc\r\na4 NOOP\r\n"  # noqa: E501
    )
    assert evs[0] == ParseError("a1", "BAD", None, "Unknown command", command="FROB")
    assert evs[1] == ParseError("*", "BAD", None, "Invalid tag", command="LOGIN")
    assert isinstance(evs[2], ParseError) and evs[2].tag == "a2"  # NOOP takes no arguments
    assert evs[3] == ParseError("a3", "BAD", None, "Unknown command", command="XYZZY")
    assert evs[4:] == [c.Noop("a4")]


def test_absurd_nonsync_literal_is_fatal() -> None:
    lim = Limits(max_literal_size=2000, max_discard=10_000)
    evs = events(b"a1 APPEND INBOX {9000+}\r\n", limits=lim)
    assert evs == [ParseError("a1", "NO", "TOOBIG", "Message too large", False, "APPEND")]
    evs = events(b"a1 APPEND INBOX {18446744073709551615+}\r\n", limits=lim)
    assert evs == [ParseError("a1", "NO", "TOOBIG", "Message too large", True, "APPEND")]


def test_line_of_exactly_the_limit_is_accepted_however_it_is_split() -> None:
    """Regression (found by the chunking-invariance property): a line of exactly
    ``max_line_length`` bytes was refused when its CR arrived before its LF."""
    limits = Limits(max_line_length=40)
    line = b"a1 NOOP " + b"x" * 32  # 40 bytes: the command itself is fine to parse or refuse
    assert len(line) == 40
    whole = CommandParser(limits)
    whole.feed(line + b"\r\n")
    split = CommandParser(limits)
    split.feed(line + b"\r")
    assert split.next_event() is NEED_DATA
    split.feed(b"\n")
    first, second = whole.next_event(), split.next_event()
    assert type(first) is type(second)
    assert not (isinstance(second, ParseError) and second.code == "TOOBIG")


def test_skipped_long_line_ending_in_a_literal_is_split_safe() -> None:
    """Regression (chunking-invariance property): when an over-long line's CR and LF came in
    different reads, the non-synchronising literal at its end was not skipped, and its bytes
    were parsed as a command."""
    limits = Limits(max_line_length=40)
    data = b"a1 APPEND INBOX " + b"x" * 40 + b" {2+}\r\n0\n\r\na2 NOOP\r\n"
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        parser = CommandParser(limits)
        got = []
        for chunk in chunks:
            parser.feed(chunk)
            while (ev := parser.next_event()) is not NEED_DATA:
                got.append(ev)
        assert [type(e).__name__ for e in got] == ["ParseError", "Noop"], got
