"""Property tests: round trips, chunking invariance, and no exception on any input."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imap_proto_strategies import commands, fetch_atts, search_keys

from mailhub.imap.proto import (
    NEED_DATA,
    PAUSED,
    AuthResponse,
    CommandParser,
    IdleDone,
    Limits,
    NeedContinuation,
    ParseError,
    to_bytes,
)
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.cmdencode import encode_command, encode_search_key
from mailhub.imap.proto.events import Sentinel
from mailhub.imap.proto.fetch import FetchAtt
from mailhub.imap.proto.grammar_fetch import fetch_att
from mailhub.imap.proto.grammar_search import search_key
from mailhub.imap.proto.responses import error_response
from mailhub.imap.proto.tokens import Reader

SMALL = Limits(
    max_line_length=300, max_literal_size=500, max_arg_literal_size=120, max_command_size=1000
)
_ALLOWED = (c.Command, NeedContinuation, ParseError, IdleDone, AuthResponse)


def run(p: CommandParser, chunks: list[bytes]) -> list[object]:
    """Feed ``chunks`` one by one, draining events; PAUSED is handled deterministically."""
    out: list[object] = []
    for chunk in chunks:
        p.feed(chunk)
        while True:
            ev = p.next_event()
            if ev is NEED_DATA:
                break
            if ev is PAUSED:
                last = out[-1] if out else None
                if isinstance(last, c.Idle):
                    p.start_idle()
                elif isinstance(last, (c.Authenticate, AuthResponse)) and len(out) % 3:
                    p.expect_auth_response()
                else:
                    p.resume()
                continue
            assert isinstance(ev, _ALLOWED), ev
            out.append(ev)
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(x, 0), len(data)) for x in cuts})
    pieces, prev = [], 0
    for x in points:
        pieces.append(data[prev:x])
        prev = x
    pieces.append(data[prev:])
    return pieces


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(commands, st.booleans())
def test_parse_encode_round_trip(cmd: c.Command, utf8: bool) -> None:
    wire = encode_command(cmd, utf8=utf8)
    p = CommandParser()
    p.utf8_names = utf8
    p.feed(wire)
    ev = p.next_event()
    assert ev == cmd, (wire, ev)
    nxt = p.next_event()
    assert nxt is (
        PAUSED if isinstance(cmd, (c.Idle, c.Authenticate, c.StartTls, c.Compress)) else NEED_DATA
    )


@given(search_keys)
def test_search_key_round_trip(key: object) -> None:
    wire = encode_search_key(key)  # type: ignore[arg-type]
    r = Reader(wire)
    assert search_key(r, lambda b: b.decode("utf-8", "replace")) == key
    assert r.at_end()


@given(fetch_atts)
def test_fetch_att_round_trip(att: FetchAtt) -> None:
    r = Reader(att.request_name().encode())
    assert fetch_att(r) == att
    assert r.at_end()
    assert "PEEK" not in att.response_name()
    assert "." not in att.response_name().partition("<")[2]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        commands.map(lambda x: encode_command(x))
        | st.binary(max_size=60).map(lambda b: b + b"\r\n"),
        max_size=6,
    ),
    st.lists(st.integers(0, 4000), max_size=12),
)
def test_chunking_invariance(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    whole = run(CommandParser(SMALL), [data])
    pieces = run(CommandParser(SMALL), split(data, cuts))
    bytewise = run(CommandParser(SMALL), [data[i : i + 1] for i in range(len(data))])
    assert whole == pieces == bytewise


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=800), st.lists(st.integers(0, 800), max_size=6))
def test_arbitrary_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    evs = run(CommandParser(SMALL), split(data, cuts))
    for ev in evs:
        if isinstance(ev, ParseError):
            # every error renders to one valid reply line
            line = to_bytes(error_response(ev))
            assert line.endswith(b"\r\n") and line.count(b"\r\n") == 1


_fragments = st.sampled_from(
    [
        b"a1 ",
        b"UID ",
        b"FETCH ",
        b"SEARCH ",
        b"APPEND ",
        b"LOGIN ",
        b"{5}\r\n",
        b"{3+}\r\n",
        b"~{2}\r\n",
        b"(",
        b")",
        b"[",
        b"]",
        b"<0.5>",
        b'"',
        b"\\",
        b"*",
        b"1:*",
        b"$",
        b" ",
        b"\r\n",
        b"\n",
        b"NIL",
        b"BODY.PEEK[HEADER.FIELDS (From)]",
        b"OR ",
        b"NOT ",
        b"INBOX",
        b"&",
        b"-",
        b"\x00",
        b"\xff",
        b"DONE\r\n",
        b"IDLE\r\n",
        b"AUTHENTICATE PLAIN\r\n",
        b"{99999999}\r\n",
        b"{4097+}\r\n",
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_fragments, max_size=40), st.lists(st.integers(0, 400), max_size=6))
def test_grammar_fragments_never_raise(frags: list[bytes], cuts: list[int]) -> None:
    data = b"".join(frags)
    assert run(CommandParser(SMALL), split(data, cuts)) == run(CommandParser(SMALL), [data])


def test_sentinels_are_distinct() -> None:
    assert NEED_DATA is Sentinel.NEED_DATA and PAUSED is Sentinel.PAUSED and NEED_DATA is not PAUSED
