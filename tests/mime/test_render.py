"""ENVELOPE/BODYSTRUCTURE string encoding and address parsing edge cases."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailhub.imap.render import bodystructure, envelope
from mailhub.imap.render.quote import nstring, string, string_for_humans
from mailhub.mime.address import Address, parse_addresses
from mailhub.mime.structure import parse

from .imapsyntax import read


def test_string_forms() -> None:
    assert string(b"abc") == b'"abc"'
    assert string(b'a"b\\c') == b'"a\\"b\\\\c"'
    assert string(b'"""""') == b'{5}\r\n"""""'  # more than four specials: literal
    assert string(b"caf\xc3\xa9") == b"{5}\r\ncaf\xc3\xa9"
    assert string(b"a\r\nb") == b"{4}\r\na\r\nb"
    assert nstring(None) == b"NIL"
    assert string(b"") == b'""'


def test_string_for_humans() -> None:
    assert string_for_humans(b"plain text") == b'"plain text"'
    assert string_for_humans(b"  a \t b  ") == b"{3}\r\na b"
    assert string_for_humans(b"   ") == b'""'
    assert string_for_humans(b'say "hi"') == b'{8}\r\nsay "hi"'
    assert string_for_humans(b"x\x00y") == b"{3}\r\nx\x80y"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_strings_always_read_back(value: bytes) -> None:
    for enc in (string(value), string_for_humans(value)):
        got = read(b"(" + enc + b")")
        assert isinstance(got, list) and isinstance(got[0], bytes)
    got = read(b"(" + string(value) + b")")
    assert isinstance(got, list)
    assert got[0] == value.replace(b"\x00", b"\x80")


def test_addresses() -> None:
    a = parse_addresses(b'"Last, First" <f.l@example.com>, x@y.z (c), g: ;')
    assert a == [
        Address(b"Last, First", None, b"f.l", b"example.com"),
        Address(b"c", None, b"x", b"y.z"),
        Address(None, None, b"g", None),
        Address(None, None, None, None),
    ]
    assert parse_addresses(b"") == []
    assert parse_addresses(b",,,") == []
    assert parse_addresses(b"<a@[10.0.0.1]>") == [Address(None, None, b"a", b"[10.0.0.1]")]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_address_parser_total(value: bytes) -> None:
    for a in parse_addresses(value):
        assert isinstance(a, Address)
    head = b"From: " + value.replace(b"\r", b"").replace(b"\n", b" ") + b"\r\n\r\n"
    root = parse(head)
    env = read(envelope(root.fields))
    assert isinstance(env, list) and len(env) == 10


def test_bodystructure_for_message_without_embedded_headers() -> None:
    data = b"Content-Type: message/rfc822\r\n\r\n"
    out = bodystructure(parse(data))
    assert out.startswith(b'("message" "rfc822" NIL NIL NIL "7bit" 0 ')
    read(out)
