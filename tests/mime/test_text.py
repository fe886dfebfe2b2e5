"""SEARCH/SORT/THREAD text helpers: decoding, matching, dates, base subject, display names."""

from __future__ import annotations

import base64
import datetime as dt
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhub.mime.structure import parse
from mailhub.mime.text import (
    base_subject,
    base_subject_info,
    body_matches,
    decode_header,
    display_name,
    header_matches,
    sent_date,
    sort_date,
    sort_mailbox,
    subject_of,
    text_matches,
)

CORPUS = pathlib.Path(__file__).parent / "corpus"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"=?UTF-8?B?w4ljaGFudGlsbG9u?= report", "Échantillon report"),
        (b"=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"),
        (b"=?utf-8?q?a_b?= \r\n =?utf-8?q?_c?=", "a b c"),  # RFC 2047 §6.2 gap removal
        (b"=?utf-8?q?x=5Fy?=", "x_y"),
        (b"Gr\xc3\xbc\xc3\x9fe", "Grüße"),  # raw UTF-8
        (b"caf\xe9", "café"),  # raw latin-1/cp1252 fallback
        (b"=?bogus-charset?q?abc?=", "abc"),
        (b"=?utf-8?b?###?=", ""),
        (b"plain", "plain"),
    ],
)
def test_decode_header(raw: bytes, text: str) -> None:
    assert decode_header(raw) == text


def test_header_matching_is_decoded_and_case_insensitive() -> None:
    root = parse((CORPUS / "02-alternative.eml").read_bytes())
    assert header_matches(root.fields, "Subject", "échantillon")
    assert header_matches(root.fields, "SUBJECT", "ÉCHANTILLON REPORT")
    assert not header_matches(root.fields, "Subject", "w4lj")
    assert header_matches(root.fields, "cc", "")  # present
    assert not header_matches(root.fields, "bcc", "")  # absent
    assert subject_of(root.fields) == "Échantillon report"


def test_body_matching_decodes_transfer_encoding_and_charset() -> None:
    data = (CORPUS / "02-alternative.eml").read_bytes()
    root = parse(data)
    assert body_matches(data, root, "CAFÉ AU LAIT")
    assert body_matches(data, root, "soft wrapped")  # QP soft line break removed
    assert not body_matches(data, root, "=C3=A9")
    assert text_matches(data, root, "alice example")  # header part of TEXT
    assert not body_matches(data, root, "alice example")
    nested = (CORPUS / "04-nested-rfc822.eml").read_bytes()
    assert body_matches(nested, parse(nested), "grüße")  # iso-8859-1 QP in an embedded message
    b64 = (
        b"Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode("Zürich".encode("utf-16"))
        + b"\r\n"
    )
    assert body_matches(b64, parse(b64), "zürich")


def test_attachments_are_not_searched_as_text() -> None:
    data = (CORPUS / "03-mixed-attachment.eml").read_bytes()
    root = parse(data)
    assert body_matches(data, root, "invoice attached")
    assert not body_matches(data, root, "AAECAwQF")  # inside the base64 PDF


def test_dates() -> None:
    root = parse((CORPUS / "01-simple.eml").read_bytes())
    assert sent_date(root.fields) == dt.date(1994, 2, 7)  # the date as written, not UTC
    d = sort_date(root.fields)
    assert d == dt.datetime(1994, 2, 8, 5, 52, 25, tzinfo=dt.UTC)
    bad = parse(b"Date: not a date\r\n\r\n")
    assert sent_date(bad.fields) is None and sort_date(bad.fields) is None


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("Re: hello", "hello", True),
        ("RE: Re: re: hello", "hello", True),
        ("Fwd: hello (fwd)", "hello", True),
        ("Fw: [list] hello", "hello", True),
        ("[list] Re: hello", "hello", True),
        ("[fwd: hello]", "hello", True),
        ("[fwd: Re: [x] hello] (fwd)", "hello", True),
        ("Re:  spaced\tout  ", "spaced out", True),
        ("[just a blob]", "[just a blob]", False),
        ("hello", "hello", False),
        ("Re[2]: hello", "hello", True),
        ("Re [x]: hello", "hello", True),
        ("", "", False),
    ],
)
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    assert base_subject_info(subject) == (base, reply)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_base_subject_is_idempotent_and_total(s: str) -> None:
    b = base_subject(s)
    assert base_subject(b) == b


def test_sort_keys() -> None:
    root = parse((CORPUS / "12-groups.eml").read_bytes())
    assert sort_mailbox(root.fields, "from") == "john.q.public"
    assert sort_mailbox(root.fields, "bcc") == "c"  # group markers skipped
    assert display_name(root.fields, "from") == "joe q. public"
    assert display_name(root.fields, "cc") == "boss@nil.test"  # no name: the addr-spec
    assert display_name(root.fields, "reply-to") == ""
    enc = parse(b"From: =?utf-8?q?=C3=89mile?= <e@x.test>\r\n\r\n")
    assert display_name(enc.fields, "from") == "émile"


@pytest.mark.parametrize("charset", [b"US-ASCI\x00I", b"base64", b"zlib", b"rot13", b"\xff", b""])
def test_hostile_charsets_fall_back(charset: bytes) -> None:
    data = b'Content-Type: text/plain; charset="' + charset + b'"\r\n\r\nhello\r\n'
    assert body_matches(data, parse(data), "HELLO")
    assert decode_header(b"=?" + charset + b"?q?hi?=") in ("hi", "=??q?hi?=")


def test_thread_helpers() -> None:
    from mailhub.mime.text import message_id_of, references_of, sort_subject

    root = parse(
        b"Message-ID: junk <a@b>\r\nReferences: <r1@x>\r\n <r2@x> bad\r\n"
        b"In-Reply-To: <p@x>\r\nSubject: Re: [l] Hello World\r\n\r\n"
    )
    assert message_id_of(root.fields) == "a@b"
    assert references_of(root.fields) == ["r1@x", "r2@x"]
    assert sort_subject(root.fields) == "hello world"
    only_irt = parse(b"In-Reply-To: <p@x> <q@x>\r\n\r\n")
    assert references_of(only_irt.fields) == ["p@x"]
    assert message_id_of(only_irt.fields) is None


def test_message_text_reuses_decoding() -> None:
    from mailhub.mime.text import MessageText

    data = (CORPUS / "02-alternative.eml").read_bytes()
    mt = MessageText(data)
    assert mt.body_contains("café") and mt.body_contains("LAIT")
    assert not mt.body_contains("Alice")
    assert mt.text_contains("alice example") and mt.text_contains("wrapped")
    assert mt.header_contains("to", "BOB")
    assert not mt.header_contains("x-none", "")
