"""Sans-I/O parts of ingest: the reply table, address splitting, trace headers, DATA reading.

These need no store; everything that touches mail goes through real listeners elsewhere.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Callable

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhub.config import DeliverySettings, Settings
from mailhub.errors import MailError, MailErrorKind
from mailhub.ingest.delivery import (
    DeliveryAgent,
    ReceivedInfo,
    _message_id,
    reply_for,
    split_address,
)
from mailhub.ingest.smtp import IngestProtocol, read_data

SETTINGS = Settings(hostname="mx.example.test")


def test_reply_table_covers_every_kind() -> None:
    for kind in MailErrorKind:
        reply = reply_for(kind, SETTINGS, "a@b.test")
        code, enhanced, _ = reply.split(" ", 2)
        assert code[0] in "45" and len(code) == 3
        # RFC 3463: the enhanced code's class matches the reply class.
        assert enhanced[0] == code[0]
        assert "<a@b.test>" in reply


def test_reply_table_values() -> None:
    assert reply_for(MailErrorKind.NOTFOUND, SETTINGS).startswith("550 5.1.1 ")
    assert reply_for(MailErrorKind.TEMP, SETTINGS).startswith("451 4.3.0 ")
    assert reply_for(MailErrorKind.TOOBIG, SETTINGS).startswith("552 5.3.4 ")
    assert reply_for(MailErrorKind.NOQUOTA, SETTINGS).startswith("452 4.2.2 ")
    perm = Settings(delivery=DeliverySettings(over_quota="permanent"))
    err = MailError(MailErrorKind.NOQUOTA, "full")
    assert reply_for(err, perm, "x@y.test").startswith("552 5.2.2 <x@y.test> ")


def test_reply_never_contains_line_breaks() -> None:
    reply = reply_for(MailErrorKind.NOTFOUND, SETTINGS, "evil\r\n250 ok@x.test")
    assert "\r" not in reply and "\n" not in reply


@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="@<>"),
        min_size=1,
    ),
    st.from_regex(r"[A-Za-z0-9-]{1,20}(\.[A-Za-z]{2,5}){1,2}", fullmatch=True),
)
def test_split_address_roundtrip(local: str, domain: str) -> None:
    addr = f"{local}@{domain}".strip()
    stripped_local = addr.rpartition("@")[0]
    if any(ord(c) < 32 or ord(c) == 127 for c in addr) or not stripped_local:
        with pytest.raises(MailError):
            split_address(addr)
        return
    got_local, got_domain = split_address(addr)
    assert got_domain == domain.lower()
    assert got_local == stripped_local


@pytest.mark.parametrize("bad", ["", "nobody", "@x.test", "a@", "a\r\n@x.test"])
def test_split_address_rejects(bad: str) -> None:
    with pytest.raises(MailError) as info:
        split_address(bad)
    assert info.value.kind is MailErrorKind.BADNAME


def _agent() -> DeliveryAgent:
    return DeliveryAgent(store=None, directory=None, settings=SETTINGS)  # type: ignore[arg-type]


@given(
    sender=st.one_of(st.none(), st.just("<>"), st.text(max_size=40)),
    rcpt=st.text(min_size=1, max_size=40),
    helo=st.one_of(st.none(), st.text(max_size=30)),
    crlf=st.booleans(),
)
@settings(max_examples=200)
def test_trace_headers_parse_and_never_inject(
    sender: str | None, rcpt: str, helo: str | None, crlf: bool
) -> None:
    """Whatever the envelope holds, the headers are well-formed and exactly the three we add."""
    eol = b"\r\n" if crlf else b"\n"
    body = b"Subject: hi" + eol + eol + b"body" + eol
    received = ReceivedInfo("ESMTP", helo=helo, peer_ip="192.0.2.1", queue_id="ABC")
    head = _agent().trace_headers(body, sender, rcpt, received)
    # Line endings follow the message (a pipe from Postfix gives LF).
    assert (b"\r\n" in head) == crlf
    msg = email.message_from_bytes(head + body, policy=email.policy.compat32)
    names = [k.lower() for k in msg]
    expected = ["delivered-to", "received", "subject"]
    if sender is not None:
        expected.insert(0, "return-path")
    assert names == expected
    if sender == "<>":
        assert msg["Return-Path"] == "<>"


def test_trace_header_content() -> None:
    data = b"Message-ID: <m1@x.test>\r\nSubject: x\r\n\r\nhello\r\n"
    head = _agent().trace_headers(
        data, "alice@a.test", "bob@b.test", ReceivedInfo("LMTP", "mta.test", "127.0.0.1", "Q1")
    )
    text = head.decode()
    assert text.startswith("Return-Path: <alice@a.test>\r\nDelivered-To: bob@b.test\r\n")
    assert (
        "Received: from mta.test ([127.0.0.1])\r\n\tby mx.example.test (mailhub) with LMTP id Q1"
        in text
    )
    assert "for <bob@b.test>;" in text
    assert _message_id(data) == "<m1@x.test>"
    assert _message_id(b"Subject: x\r\n\r\nMessage-ID: <body@x>\r\n") is None


def _dot_stuff(message: bytes) -> bytes:
    if not message:
        return b".\r\n"
    out = []
    for line in message.split(b"\r\n")[:-1]:
        out.append((b"." + line) if line.startswith(b".") else line)
    return b"\r\n".join(out) + b"\r\n.\r\n"


def _read(
    wire: bytes, limit: int | None = None, line_limit: int = 65536
) -> tuple[bytes | None, str, bytes]:
    async def run() -> tuple[bytes | None, str, bytes]:
        reader = asyncio.StreamReader(limit=line_limit)
        reader.feed_data(wire + b"NEXT\r\n")
        reader.feed_eof()
        content, error = await read_data(reader, limit)
        rest = await reader.read()
        return content, error, rest

    return asyncio.run(run())


_lines = st.lists(
    st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")), max_size=30
)


@given(_lines)
@settings(max_examples=300)
def test_read_data_roundtrip(lines: list[bytes]) -> None:
    """RFC 5321 §4.5.2: dot-stuffing undone exactly; pipelined commands after the dot stay."""
    message = b"".join(line + b"\r\n" for line in lines)
    content, error, rest = _read(_dot_stuff(message))
    assert error == ""
    assert content == message
    assert rest == b"NEXT\r\n"


@given(st.binary(max_size=300))
def test_read_data_only_crlf_dot_crlf_ends(noise: bytes) -> None:
    """Bare LF "." LF is data, not the end (SMTP smuggling)."""
    body = noise.replace(b"\r", b"") + b"\n.\n" + b"after\r\n"
    content, error, rest = _read(_dot_stuff(body))
    assert error == "" and content == body and rest == b"NEXT\r\n"


def test_read_data_too_big_reads_to_the_end() -> None:
    message = b"x" * 70 + b"\r\n"
    content, error, rest = _read(_dot_stuff(message * 100), limit=1000)
    assert content is None and error.startswith("552 5.3.4")
    assert rest == b"NEXT\r\n"


def test_read_data_long_lines_in_chunks() -> None:
    """Lines longer than the reader's buffer are read in chunks, intact (Dovecot accepts them)."""
    message = b"a" * 5000 + b"\r\nshort\r\n" + b"." * 3000 + b"\r\n"
    content, error, rest = _read(_dot_stuff(message), line_limit=1024)
    assert error == "" and content == message
    assert rest == b"NEXT\r\n"


@given(st.binary(max_size=3000), st.integers(min_value=16, max_value=512))
@settings(max_examples=200)
def test_read_data_any_bytes_any_buffer(payload: bytes, buffer: int) -> None:
    """Whatever the bytes and wherever the reader's buffer splits them, the round trip holds."""
    message = payload + b"\r\n" if payload else b""
    if b"\r\n.\r\n" in b"\r\n" + message:
        message = message.replace(b"\r\n.\r\n", b"\r\n..\r\n")
    content, error, rest = _read(_dot_stuff(message), line_limit=buffer)
    assert error == ""
    assert content == message
    assert rest == b"NEXT\r\n"


# -- address parsing: the fast path must agree with aiosmtpd's RFC 5322 parser ----------------

_ADDR_CHARS = "abcXYZ09.-_+=?!#$%&'*/^`{|}~@<>()[]\\\":;, \té"


def _both_parsers(arg: str, limit: int = 0) -> tuple[object, object]:
    """(fast, aiosmtpd's) result; an exception counts as a result (aiosmtpd raises on "<")."""
    proto = IngestProtocol.__new__(IngestProtocol)  # _getaddr only reads local_part_limit
    proto.local_part_limit = limit

    def outcome(parse: Callable[[SMTP, str], object]) -> object:
        try:
            return parse(proto, arg)
        except Exception as exc:
            return type(exc)

    return outcome(IngestProtocol._getaddr), outcome(SMTP._getaddr)


@given(
    st.one_of(
        st.text(alphabet=_ADDR_CHARS, max_size=40),
        st.text(alphabet=_ADDR_CHARS, max_size=40).map(lambda t: "<" + t),
        st.tuples(
            st.from_regex(r"[A-Za-z0-9.=?_+-]{0,12}", fullmatch=True),
            st.from_regex(r"[A-Za-z0-9.=?-]{0,12}", fullmatch=True),
            st.sampled_from(["", " SIZE=100", " BODY=8BITMIME", "x", ">", " ", "\t"]),
        ).map(lambda t: f"<{t[0]}@{t[1]}>{t[2]}"),
    ),
    st.sampled_from([0, 3, 64]),
)
@settings(max_examples=1500)
def test_fast_address_parser_agrees_with_aiosmtpd(arg: str, limit: int) -> None:
    fast, full = _both_parsers(arg, limit)
    assert fast == full


@pytest.mark.parametrize(
    "arg",
    [
        "<sender@remote.test>",
        "<sender@remote.test> SIZE=10240 BODY=8BITMIME",
        "<>",
        "<a.b.c@d.e.f>",
        "<a..b@c.d>",
        "<.a@c.d>",
        "<a@c..d>",
        '<"quoted local"@x.test>',
        "<a@[127.0.0.1]>",
        "<=?utf-8?q?x?=@x.test>",
        "<a@b>x",
        " <a@b>",
        "a@b",
        "<@relay.test:a@b.test>",
        "<üser@x.test>",
    ],
)
def test_fast_address_parser_examples(arg: str) -> None:
    fast, full = _both_parsers(arg)
    assert fast == full
    assert _both_parsers(arg, limit=1)[0] == _both_parsers(arg, limit=1)[1]
