"""Response encoder: exact wire syntax for every response type, and string/literal choice."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imap_proto_strategies import mailboxes

from mailhub.imap.proto import (
    Atom,
    BodyRef,
    Code,
    Literal,
    MailboxName,
    ParseError,
    ResponseCode,
    encode,
    to_bytes,
)
from mailhub.imap.proto.names import NameOptions, read_mailbox
from mailhub.imap.proto.responses import (
    CapabilityResponse,
    Continuation,
    EnabledResponse,
    ESearchResponse,
    ExistsResponse,
    ExpungeResponse,
    FetchResponse,
    FlagsResponse,
    IdResponse,
    ListResponse,
    NamespaceResponse,
    QuotaResponse,
    QuotaRootResponse,
    RecentResponse,
    SearchResponse,
    SortResponse,
    StatusDataResponse,
    Tagged,
    ThreadNode,
    ThreadResponse,
    Untagged,
    UntaggedData,
    VanishedResponse,
    encode_many,
    error_response,
    fetch_flags,
    fetch_internaldate,
)
from mailhub.imap.proto.tokens import Reader
from mailhub.imap.proto.values import Builder


def test_status_responses_and_codes() -> None:
    assert to_bytes(Tagged("a1", "OK", "done")) == b"a1 OK done\r\n"
    assert to_bytes(Tagged("a1", "NO", "Mailbox exists", ResponseCode.of(Code.ALREADYEXISTS))) == (
        b"a1 NO [ALREADYEXISTS] Mailbox exists\r\n"
    )
    assert to_bytes(Untagged("OK", "Still here", ResponseCode.uidvalidity(3857529045))) == (
        b"* OK [UIDVALIDITY 3857529045] Still here\r\n"
    )
    assert to_bytes(Untagged("BYE", "Autologout")) == b"* BYE Autologout\r\n"
    assert to_bytes(Untagged("PREAUTH", "hi")) == b"* PREAUTH hi\r\n"
    assert to_bytes(Untagged("OK", "x", ResponseCode.permanentflags(["\\Seen", "\\*"]))) == (
        b"* OK [PERMANENTFLAGS (\\Seen \\*)] x\r\n"
    )
    assert to_bytes(Untagged("OK", "x", ResponseCode.capability(["IMAP4rev1", "IMAP4rev2"]))) == (
        b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2] x\r\n"
    )
    assert (
        to_bytes(Tagged("a", "OK", "x", ResponseCode.appenduid(38505, [3955])))
        == b"a OK [APPENDUID 38505 3955] x\r\n"
    )
    assert (
        to_bytes(Tagged("a", "OK", "x", ResponseCode.appenduid(1, [5, 6, 7, 2])))
        == b"a OK [APPENDUID 1 5:7,2] x\r\n"
    )
    assert to_bytes(
        Tagged("a", "OK", "x", ResponseCode.copyuid(38505, [304, 319, 320], [3956, 3957, 3958]))
    ) == (b"a OK [COPYUID 38505 304,319:320 3956:3958] x\r\n")
    assert (
        to_bytes(Tagged("a", "OK", "x", ResponseCode.modified([7, 9, 10])))
        == b"a OK [MODIFIED 7,9:10] x\r\n"
    )
    assert (
        to_bytes(Tagged("a", "NO", "x", ResponseCode.badcharset()))
        == b"a NO [BADCHARSET (US-ASCII UTF-8)] x\r\n"
    )
    assert to_bytes(Tagged("a", "OK", "x", ResponseCode.highestmodseq(715194045007))) == (
        b"a OK [HIGHESTMODSEQ 715194045007] x\r\n"
    )
    assert (
        to_bytes(Tagged("a", "OK", "x", ResponseCode.of(Code.READ_ONLY)))
        == b"a OK [READ-ONLY] x\r\n"
    )
    assert to_bytes(Tagged("a", "OK", "")) == b"a OK OK\r\n"


def test_text_cannot_inject_lines() -> None:
    out = to_bytes(Tagged("a", "NO", "bad\r\n* OK [ALERT] pwned"))
    assert out.count(b"\r\n") == 1
    assert to_bytes(Untagged("OK", "caf\u00e9")) == b"* OK caf?\r\n"
    assert to_bytes(Untagged("OK", "caf\u00e9"), utf8=True) == "* OK café\r\n".encode()


def test_continuations() -> None:
    assert to_bytes(Continuation()) == b"+ Ready\r\n"
    assert to_bytes(Continuation("idling")) == b"+ idling\r\n"
    assert to_bytes(Continuation(data=b"")) == b"+ \r\n"
    assert to_bytes(Continuation(data=b"Username:")) == b"+ VXNlcm5hbWU6\r\n"


def test_error_response() -> None:
    assert (
        to_bytes(error_response(ParseError("a1", "NO", "CANNOT", "nope")))
        == b"a1 NO [CANNOT] nope\r\n"
    )
    assert to_bytes(
        error_response(ParseError("a1", "NO", "BADCHARSET (US-ASCII UTF-8)", "cs"))
    ) == (b"a1 NO [BADCHARSET (US-ASCII UTF-8)] cs\r\n")
    assert to_bytes(error_response(ParseError("*", "BAD", None, "garbage"))) == b"* BAD garbage\r\n"


def test_simple_untagged() -> None:
    assert to_bytes(CapabilityResponse(("IMAP4rev1", "IDLE"))) == b"* CAPABILITY IMAP4rev1 IDLE\r\n"
    assert to_bytes(EnabledResponse(("CONDSTORE",))) == b"* ENABLED CONDSTORE\r\n"
    assert to_bytes(EnabledResponse()) == b"* ENABLED\r\n"
    assert to_bytes(ExistsResponse(23)) == b"* 23 EXISTS\r\n"
    assert to_bytes(RecentResponse(0)) == b"* 0 RECENT\r\n"
    assert to_bytes(ExpungeResponse(3)) == b"* 3 EXPUNGE\r\n"
    assert (
        to_bytes(FlagsResponse(("\\Answered", "\\Seen", "$Forwarded")))
        == b"* FLAGS (\\Answered \\Seen $Forwarded)\r\n"
    )
    assert to_bytes(FlagsResponse(())) == b"* FLAGS ()\r\n"
    assert to_bytes(VanishedResponse((41, 43, 42, 300))) == b"* VANISHED 41:43,300\r\n"
    assert to_bytes(VanishedResponse((1, 2), earlier=True)) == b"* VANISHED (EARLIER) 1:2\r\n"
    assert (
        to_bytes(UntaggedData("XFOO", (1, None, "a b", Atom("x")))) == b'* XFOO 1 NIL "a b" x\r\n'
    )


def test_list_responses() -> None:
    assert (
        to_bytes(ListResponse(("\\HasNoChildren",), "/", "INBOX"))
        == b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n'
    )
    assert to_bytes(ListResponse(("\\Noselect",), None, "")) == b'* LIST (\\Noselect) NIL ""\r\n'
    assert to_bytes(ListResponse((), "/", "Entwürfe")) == b'* LIST () "/" "Entw&APw-rfe"\r\n'
    assert (
        to_bytes(ListResponse((), "/", "Entwürfe"), utf8=True)
        == '* LIST () "/" "Entwürfe"\r\n'.encode()
    )
    assert to_bytes(ListResponse((), "/", "Q&A")) == b'* LIST () "/" "Q&-A"\r\n'
    assert to_bytes(ListResponse((), "/", "Q&A"), utf8=True) == b'* LIST () "/" "Q&A"\r\n'
    ext = ListResponse(
        ("\\Subscribed",),
        "/",
        "Foo",
        (("CHILDINFO", ("SUBSCRIBED",)), ("OLDNAME", (MailboxName("Bär"),))),
    )
    assert (
        to_bytes(ext)
        == b'* LIST (\\Subscribed) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED") "OLDNAME" ("B&AOQ-r"))\r\n'
    )
    assert (
        to_bytes(ListResponse(("\\Sent",), "/", "Sent", kind="XLIST"))
        == b'* XLIST (\\Sent) "/" "Sent"\r\n'
    )
    assert to_bytes(ListResponse((), "/", "a", kind="LSUB")) == b'* LSUB () "/" "a"\r\n'
    assert to_bytes(ListResponse((), "/", 'q"uo\\te')) == b'* LIST () "/" "q\\"uo\\\\te"\r\n'


def test_status_search_sort() -> None:
    assert to_bytes(StatusDataResponse("blurdybloop", (("MESSAGES", 231), ("UIDNEXT", 44292)))) == (
        b'* STATUS "blurdybloop" (MESSAGES 231 UIDNEXT 44292)\r\n'
    )
    assert to_bytes(SearchResponse((2, 3, 6))) == b"* SEARCH 2 3 6\r\n"
    assert to_bytes(SearchResponse(())) == b"* SEARCH\r\n"
    assert (
        to_bytes(SearchResponse((2, 5), modseq=917162500)) == b"* SEARCH 2 5 (MODSEQ 917162500)\r\n"
    )
    assert to_bytes(SortResponse((5, 3, 4))) == b"* SORT 5 3 4\r\n"


def test_esearch() -> None:
    r = ESearchResponse.from_numbers("A282", False, [2, 10, 11], ["MIN", "COUNT"])
    assert to_bytes(r) == b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n'
    r = ESearchResponse.from_numbers("A283", True, [4, 5, 6, 10], [])
    assert to_bytes(r) == b'* ESEARCH (TAG "A283") UID ALL 4:6,10\r\n'
    r = ESearchResponse.from_numbers("A284", False, [], ["MIN", "MAX", "ALL"])
    assert to_bytes(r) == b'* ESEARCH (TAG "A284")\r\n'
    r = ESearchResponse.from_numbers("A285", False, [], ["COUNT"])
    assert to_bytes(r) == b'* ESEARCH (TAG "A285") COUNT 0\r\n'
    r = ESearchResponse.from_numbers("t", True, [3, 1, 2], ["ALL", "MAX"], modseq=9, ordered=True)
    assert to_bytes(r) == b'* ESEARCH (TAG "t") UID MAX 3 ALL 3,1,2 MODSEQ 9\r\n'
    assert to_bytes(ESearchResponse(None, False)) == b"* ESEARCH\r\n"


def test_thread() -> None:
    tree = (
        ThreadNode(2),
        ThreadNode(
            3,
            (
                ThreadNode(
                    6,
                    (
                        ThreadNode(4, (ThreadNode(23),)),
                        ThreadNode(44, (ThreadNode(7, (ThreadNode(96),)),)),
                    ),
                ),
            ),
        ),
    )
    assert to_bytes(ThreadResponse(tree)) == b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"
    dummy = ThreadNode(None, (ThreadNode(3), ThreadNode(5, (ThreadNode(8),))))
    assert to_bytes(ThreadResponse((dummy,))) == b"* THREAD ((3)(5 8))\r\n"
    assert to_bytes(ThreadResponse(())) == b"* THREAD\r\n"


def test_fetch_response_and_streaming_body() -> None:
    when = datetime.datetime(
        1996, 7, 17, 2, 44, 25, tzinfo=datetime.timezone(datetime.timedelta(hours=-7))
    )
    r = FetchResponse(
        12,
        (
            ("FLAGS", fetch_flags(["\\Seen"])),
            ("INTERNALDATE", fetch_internaldate(when)),
            ("RFC822.SIZE", 4286),
            ("MODSEQ", 624140003),
            ("UID", 7),
        ),
    )
    assert to_bytes(r) == (
        b'* 12 FETCH (FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" RFC822.SIZE 4286'
        b" MODSEQ (624140003) UID 7)\r\n"
    )
    assert fetch_internaldate(0.0) == "01-Jan-1970 00:00:00 +0000"

    async def chunks() -> AsyncIterator[bytes]:
        yield b"Hello, "
        yield b"World"

    ref = BodyRef(12, chunks)
    pieces = encode(FetchResponse(1, (("UID", 5), ("BODY[]", ref), ("FLAGS", ()))))
    assert pieces == [b"* 1 FETCH (UID 5 BODY[] {12}\r\n", ref, b" FLAGS ())\r\n"]
    with pytest.raises(ValueError):
        to_bytes(FetchResponse(1, (("BODY[]", ref),)))

    async def collect() -> bytes:
        return b"".join([x async for x in ref.chunks()])

    assert asyncio.run(collect()) == b"Hello, World"
    bin_ref = BodyRef(3, chunks, binary=True)
    assert (
        encode(FetchResponse(1, (("BINARY[1]", bin_ref),)))[0] == b"* 1 FETCH (BINARY[1] ~{3}\r\n"
    )
    envelope = ("Wed, 17 Jul 1996", "Hi", ((None, None, "joe", "example.org"),), None)
    assert to_bytes(FetchResponse(2, (("ENVELOPE", envelope),))) == (
        b'* 2 FETCH (ENVELOPE ("Wed, 17 Jul 1996" "Hi" ((NIL NIL "joe" "example.org")) NIL))\r\n'
    )


def test_string_quoting_vs_literal() -> None:
    def enc(v: object, utf8: bool = False) -> bytes:
        b = Builder(utf8)
        b.value(v)  # type: ignore[arg-type]
        return b"".join(p for p in b.finish() if isinstance(p, bytes))

    assert enc("plain") == b'"plain"'
    assert enc("") == b'""'
    assert enc(None) == b"NIL"
    assert enc(42) == b"42"
    assert enc('a"b\\c') == b'"a\\"b\\\\c"'
    assert enc("two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert enc("x" * 2000).startswith(b"{2000}\r\n")
    assert enc("Jörg") == b"{5}\r\nJ\xc3\xb6rg"  # 8-bit goes as a literal for rev1
    assert enc("Jörg", utf8=True) == b'"J\xc3\xb6rg"'
    assert enc(b"\xff\xfe", utf8=True) == b"{2}\r\n\xff\xfe"  # not UTF-8: literal
    assert enc(b"a\x00b") == b"~{3}\r\na\x00b"
    assert enc(Literal(b"x")) == b"{1}\r\nx"
    assert enc(Literal(b"x", binary=True)) == b"~{1}\r\nx"
    assert enc((1, (2, "x"), [])) == b'(1 (2 "x") ())'
    with pytest.raises(TypeError):
        enc(True)
    with pytest.raises(TypeError):
        enc(object())


def test_namespace_id_quota() -> None:
    assert to_bytes(NamespaceResponse()) == b'* NAMESPACE (("" "/")) NIL NIL\r\n'
    assert (
        to_bytes(NamespaceResponse((("", "/"),), (("~", "/"),), None))
        == b'* NAMESPACE (("" "/")) (("~" "/")) NIL\r\n'
    )
    assert to_bytes(IdResponse(None)) == b"* ID NIL\r\n"
    assert (
        to_bytes(IdResponse((("name", "mailhub"), ("os", None))))
        == b'* ID ("name" "mailhub" "os" NIL)\r\n'
    )
    assert to_bytes(QuotaResponse("", (("STORAGE", 10, 512), ("MESSAGE", 3, 100)))) == (
        b'* QUOTA "" (STORAGE 10 512 MESSAGE 3 100)\r\n'
    )
    assert to_bytes(QuotaRootResponse("INBOX", ("",))) == b'* QUOTAROOT "INBOX" ""\r\n'
    assert to_bytes(QuotaRootResponse("Archiv", ())) == b'* QUOTAROOT "Archiv"\r\n'


def test_encode_many_coalesces() -> None:
    pieces = list(encode_many([ExistsResponse(i) for i in range(1, 4)]))
    assert pieces == [b"* 1 EXISTS\r\n* 2 EXISTS\r\n* 3 EXISTS\r\n"]
    big = list(encode_many(ExpungeResponse(1) for _ in range(20000)))
    assert 1 < len(big) < 10
    assert b"".join(p for p in big if isinstance(p, bytes)) == b"* 1 EXPUNGE\r\n" * 20000


@given(st.binary(max_size=1200), st.booleans())
def test_any_string_reads_back(data: bytes, utf8: bool) -> None:
    b = Builder(utf8)
    b.value(data)
    wire = b"".join(p for p in b.finish() if isinstance(p, bytes))
    r = Reader(wire)
    if wire.startswith(b"~"):
        assert r.literal(allow_binary=True) == (data, True)
    else:
        assert r.string() == data
    assert r.at_end()


@given(mailboxes, st.booleans())
def test_mailbox_names_read_back(name: str, utf8: bool) -> None:
    b = Builder(utf8)
    b.value(MailboxName(name))
    wire = b"".join(p for p in b.finish() if isinstance(p, bytes))
    assert read_mailbox(Reader(wire), NameOptions(utf8=utf8)) == name


def test_tagged_line_is_what_write_produces() -> None:
    """The Builder-free encoding of tagged replies, remembered per text, equals write()."""
    from mailhub.imap.proto.codes import Code, ResponseCode
    from mailhub.imap.proto.responses import Tagged

    cases = [
        Tagged("a1", "OK", "NOOP completed"),
        Tagged("a2", "OK", "NOOP completed"),  # the remembered tail, another tag
        Tagged("b", "NO", "Mailbox doesn't exist", ResponseCode.of(Code.NONEXISTENT)),
        Tagged("c", "BAD", "line\r\nbreak"),
        Tagged("d", "OK", ""),
        Tagged("e", "NO", "naïve"),
    ]
    for utf8 in (False, True, False):
        for resp in cases:
            b = Builder(utf8)
            resp.write(b)
            assert resp.line(utf8) == bytes(b.buf), (resp, utf8)
