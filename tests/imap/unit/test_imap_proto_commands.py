"""Every command of RFC 9051 / RFC 3501 and the extensions parses into exact typed fields."""

from __future__ import annotations

import datetime

import pytest
from imap_proto_helpers import error, parse

from mailhub.imap.proto import REGISTRY, State, spec_for
from mailhub.imap.proto import commands as c
from mailhub.imap.proto import search as sk
from mailhub.imap.proto.fetch import MACROS, FetchAtt, Section
from mailhub.imap.proto.grammar import PARSERS
from mailhub.imap.proto.sequence import SequenceSet

S = SequenceSet.parse


def test_registry_and_parsers_cover_each_other() -> None:
    assert set(REGISTRY) == set(PARSERS)
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.states and State.LOGOUT not in spec.states
        assert issubclass(spec.type, c.Command)
    # Dovecot's flags: FETCH uses seqs, UID FETCH may break them, EXPUNGE breaks them.
    assert REGISTRY["FETCH"].uses_seqs and not REGISTRY["FETCH"].breaks_seqs
    assert REGISTRY["UID FETCH"].breaks_seqs and not REGISTRY["UID FETCH"].uses_seqs
    assert REGISTRY["EXPUNGE"].breaks_seqs
    assert REGISTRY["ENABLE"].states == frozenset({State.AUTHENTICATED})
    assert REGISTRY["LOGIN"].states == frozenset({State.NOT_AUTHENTICATED})
    assert REGISTRY["CAPABILITY"].states == frozenset(
        {State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED}
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a CAPABILITY", c.Capability("a")),
        (b"a noop", c.Noop("a")),
        (b"a LOGOUT", c.Logout("a")),
        (b"a STARTTLS", c.StartTls("a")),
        (b"a NAMESPACE", c.Namespace("a")),
        (b"a IDLE", c.Idle("a")),
        (b"a CHECK", c.Check("a")),
        (b"a CLOSE", c.Close("a")),
        (b"a UNSELECT", c.Unselect("a")),
        (b"a EXPUNGE", c.Expunge("a")),
        (b"a UID EXPUNGE 3:5,7", c.Expunge("a", uid=True, uids=S("3:5,7"))),
        (b"a COMPRESS deflate", c.Compress("a", "DEFLATE")),
    ],
)
def test_simple_commands(line: bytes, expected: c.Command) -> None:
    cmd = parse(line + b"\r\n")
    assert cmd == expected
    assert spec_for(cmd).type is type(expected)


def test_bare_commands_reject_arguments() -> None:
    assert error(b"a NOOP x\r\n").status == "BAD"
    assert error(b"a CAPABILITY \r\n").status == "BAD"


def test_login_forms() -> None:
    cmd = parse(b'x1 LOGIN "joe@example.org" "p\\"w\\\\d"\r\n')
    assert cmd == c.Login("x1", "joe@example.org", 'p"w\\d')
    cmd = parse(b"x2 login joe {5}\r\nsecrt\r\n")
    assert cmd == c.Login("x2", "joe", "secrt")
    assert "secrt" not in repr(cmd)
    cmd = parse(b"x3 LOGIN joe {4+}\r\nw\xc3\xb6d\r\n")
    assert cmd == c.Login("x3", "joe", "wöd")


def test_authenticate_with_and_without_initial_response() -> None:
    assert parse(b"a AUTHENTICATE plain\r\n") == c.Authenticate("a", "PLAIN", None)
    assert parse(b"a AUTHENTICATE PLAIN AGpvZQBwdw==\r\n") == c.Authenticate(
        "a", "PLAIN", b"\0joe\0pw"
    )
    assert parse(b"a AUTHENTICATE PLAIN =\r\n") == c.Authenticate("a", "PLAIN", b"")
    assert error(b"a AUTHENTICATE PLAIN AGpvZQ=x\r\n").status == "BAD"


def test_enable_and_id() -> None:
    assert parse(b"a ENABLE utf8=accept CONDSTORE\r\n") == c.Enable(
        "a", ("UTF8=ACCEPT", "CONDSTORE")
    )
    assert parse(b"a ID NIL\r\n") == c.Id("a", None)
    assert parse(b'a ID ("name" "Thunderbird" "version" NIL)\r\n') == c.Id(
        "a", (("name", "Thunderbird"), ("version", None))
    )
    assert parse(b"a ID ()\r\n") == c.Id("a", ())
    assert error(b'a ID ("name")\r\n').status == "BAD"
    assert error(b"a ENABLE\r\n").status == "BAD"


def test_select_examine_with_condstore_qresync() -> None:
    assert parse(b"a SELECT inbox\r\n") == c.Select("a", "INBOX")
    cmd = parse(b"a EXAMINE Archive/2020 (CONDSTORE)\r\n")
    assert cmd == c.Select("a", "Archive/2020", readonly=True, condstore=True)
    assert cmd.name == "EXAMINE" and spec_for(cmd).name == "EXAMINE"
    cmd = parse(b"a SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))\r\n")
    assert cmd == c.Select(
        "a", "INBOX", qresync=c.QResyncParams(67890007, 90060115194045000, S("41:211,214:541"))
    )
    cmd = parse(b"a SELECT INBOX (QRESYNC (1 2 1:9 (1,5 3,9)) CONDSTORE)\r\n")
    assert isinstance(cmd, c.Select)
    assert cmd.condstore
    assert cmd.qresync == c.QResyncParams(1, 2, S("1:9"), (S("1,5"), S("3,9")))
    cmd = parse(b"a SELECT INBOX (QRESYNC (1 2 (1,5 3,9)))\r\n")
    assert isinstance(cmd, c.Select)
    assert cmd.qresync == c.QResyncParams(1, 2, None, (S("1,5"), S("3,9")))
    assert error(b"a SELECT INBOX (FOO)\r\n").status == "BAD"
    assert error(b"a SELECT INBOX (QRESYNC (0 2))\r\n").status == "BAD"


def test_mailbox_commands() -> None:
    assert parse(b"a CREATE Work/\r\n") == c.Create("a", "Work")
    assert parse(b"a CREATE Sent (USE (\\sent))\r\n") == c.Create("a", "Sent", ("\\Sent",))
    assert parse(b"a DELETE old\r\n") == c.Delete("a", "old")
    assert parse(b'a RENAME "a b" {3}\r\nx/y\r\n') == c.Rename("a", "a b", "x/y")
    assert parse(b"a SUBSCRIBE inbox/Sub\r\n") == c.Subscribe("a", "INBOX/Sub")
    assert parse(b"a UNSUBSCRIBE &ZeVnLIqe-\r\n") == c.Unsubscribe("a", "日本語")
    assert parse(
        b"a STATUS Drafts (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT HIGHESTMODSEQ APPENDLIMIT)\r\n"  # noqa: E501
    ) == c.Status(
        "a",
        "Drafts",
        (
            "MESSAGES",
            "UIDNEXT",
            "UIDVALIDITY",
            "UNSEEN",
            "DELETED",
            "SIZE",
            "RECENT",
            "HIGHESTMODSEQ",
            "APPENDLIMIT",
        ),
    )
    assert error(b"a STATUS Drafts (BOGUS)\r\n").status == "BAD"
    assert parse(b'a GETQUOTA ""\r\n') == c.GetQuota("a", "")
    assert parse(b"a GETQUOTAROOT INBOX\r\n") == c.GetQuotaRoot("a", "INBOX")
    assert parse(b'a SETQUOTA "" (STORAGE 512 message 100)\r\n') == c.SetQuota(
        "a", "", (("STORAGE", 512), ("MESSAGE", 100))
    )
    assert parse(b'a SETQUOTA "" ()\r\n') == c.SetQuota("a", "", ())


def test_list_forms() -> None:
    assert parse(b'a LIST "" *\r\n') == c.List("a", "", ("*",))
    assert parse(b'a LIST "" %/]x\r\n') == c.List("a", "", ("%/]x",))
    cmd = parse(
        b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" "%") RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n'  # noqa: E501
    )
    assert cmd == c.List(
        "a",
        "",
        ("INBOX", "%"),
        selection=("SUBSCRIBED", "RECURSIVEMATCH"),
        return_opts=("CHILDREN", "SPECIAL-USE"),
        status_items=("MESSAGES", "UNSEEN"),
        return_status=True,
        extended=True,
    )
    cmd = parse(b'a LIST (SPECIAL-USE) "" *\r\n')
    assert cmd == c.List("a", "", ("*",), selection=("SPECIAL-USE",), extended=True)
    assert parse(b'a LIST "" * RETURN ()\r\n') == c.List("a", "", ("*",), extended=True)
    assert error(b'a LIST (RECURSIVEMATCH) "" *\r\n').status == "BAD"
    assert error(b'a LIST (BOGUS) "" *\r\n').status == "BAD"
    assert parse(b'a LSUB "" %\r\n') == c.Lsub("a", "", "%")
    assert parse(b'a XLIST "" *\r\n') == c.XList("a", "", "*")


def test_append_forms() -> None:
    cmd = parse(
        b'a APPEND saved-messages (\\Seen $Label1) "07-Feb-1994 21:52:25 -0800" {5}\r\nhello\r\n'
    )
    assert cmd == c.Append(
        "a",
        "saved-messages",
        (
            c.AppendMessage(
                b"hello",
                ("\\Seen", "$Label1"),
                datetime.datetime(
                    1994, 2, 7, 21, 52, 25, tzinfo=datetime.timezone(datetime.timedelta(hours=-8))
                ),
            ),
        ),
    )
    cmd = parse(
        b'a APPEND INBOX " 7-Feb-1994 21:52:25 +0000" {2+}\r\nab {1+}\r\nc ~{3}\r\nx\x00y UTF8 (~{2+}\r\n\xc3\xa9)\r\n'  # noqa: E501
    )
    assert isinstance(cmd, c.Append)
    assert [m.data for m in cmd.messages] == [b"ab", b"c", b"x\x00y", b"\xc3\xa9"]
    assert [m.binary for m in cmd.messages] == [False, False, True, True]
    assert [m.utf8 for m in cmd.messages] == [False, False, False, True]
    assert cmd.messages[0].date is not None and cmd.messages[1].date is None
    assert "hello" not in repr(parse(b"a APPEND INBOX {5}\r\nhello\r\n"))
    assert error(b"a APPEND INBOX\r\n").status == "BAD"
    assert error(b"a APPEND INBOX {3}\r\na\x00b\r\n").status == "BAD"  # NUL needs literal8


def test_append_bad_date() -> None:
    assert error(b'a APPEND INBOX "31-Feb-2020 00:00:00 +0000" {1}\r\nx\r\n').status == "BAD"
    assert error(b'a APPEND INBOX "01-Feb-2020 00:00:00 +9900" {1}\r\nx\r\n').status == "BAD"


def test_fetch_every_attribute() -> None:
    line = (
        b"a FETCH 1:3,* (FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT ENVELOPE BODY"  # noqa: E501
        b" BODYSTRUCTURE UID MODSEQ BODY[] BODY.PEEK[1.2.HEADER] BODY[HEADER.FIELDS (From To)]<0.1024>"  # noqa: E501
        b' BODY[1.HEADER.FIELDS.NOT ("X-Spam")] BODY[2.MIME] BODY[TEXT]<10.5> BINARY[1] BINARY.PEEK[]<0.10>'  # noqa: E501
        b" BINARY.SIZE[2])\r\n"
    )
    cmd = parse(line)
    assert isinstance(cmd, c.Fetch)
    assert cmd.seqset == S("1:3,*") and not cmd.uid
    assert cmd.atts == (
        FetchAtt("FLAGS"),
        FetchAtt("INTERNALDATE"),
        FetchAtt("RFC822"),
        FetchAtt("RFC822.HEADER"),
        FetchAtt("RFC822.SIZE"),
        FetchAtt("RFC822.TEXT"),
        FetchAtt("ENVELOPE"),
        FetchAtt("BODY"),
        FetchAtt("BODYSTRUCTURE"),
        FetchAtt("UID"),
        FetchAtt("MODSEQ"),
        FetchAtt("BODY", Section()),
        FetchAtt("BODY", Section((1, 2), "HEADER"), peek=True),
        FetchAtt("BODY", Section((), "HEADER.FIELDS", ("From", "To")), (0, 1024)),
        FetchAtt("BODY", Section((1,), "HEADER.FIELDS.NOT", ("X-Spam",))),
        FetchAtt("BODY", Section((2,), "MIME")),
        FetchAtt("BODY", Section((), "TEXT"), (10, 5)),
        FetchAtt("BINARY", Section((1,))),
        FetchAtt("BINARY", Section(), (0, 10), peek=True),
        FetchAtt("BINARY.SIZE", Section((2,))),
    )
    names = [a.response_name() for a in cmd.atts[11:]]
    assert names == [
        "BODY[]",
        "BODY[1.2.HEADER]",
        "BODY[HEADER.FIELDS (From To)]<0>",
        "BODY[1.HEADER.FIELDS.NOT (X-Spam)]",
        "BODY[2.MIME]",
        "BODY[TEXT]<10>",
        "BINARY[1]",
        "BINARY[]<0>",
        "BINARY.SIZE[2]",
    ]
    assert [a.sets_seen for a in cmd.atts[11:]] == [
        True,
        False,
        True,
        True,
        True,
        True,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize("macro", ["ALL", "FAST", "FULL", "all"])
def test_fetch_macros(macro: str) -> None:
    cmd = parse(b"a FETCH 1 " + macro.encode() + b"\r\n")
    assert isinstance(cmd, c.Fetch)
    assert cmd.atts == MACROS[macro.upper()]


def test_fetch_single_att_and_modifiers() -> None:
    assert parse(b"a UID FETCH 1:* FLAGS\r\n") == c.Fetch(
        "a", uid=True, seqset=S("1:*"), atts=(FetchAtt("FLAGS"),)
    )
    cmd = parse(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n")
    assert cmd == c.Fetch(
        "a", uid=True, seqset=S("1:*"), atts=(FetchAtt("FLAGS"),), changedsince=12345, vanished=True
    )
    # iOS has sent CHANGEDSINCE 0: valid syntax (number, not nz-number)
    cmd = parse(b"a FETCH 1:* (FLAGS) (CHANGEDSINCE 0)\r\n")
    assert isinstance(cmd, c.Fetch) and cmd.changedsince == 0
    assert error(b"a FETCH 1:* (FLAGS) (VANISHED)\r\n").status == "BAD"
    assert error(b"a FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n").status == "BAD"


@pytest.mark.parametrize(
    "bad",
    [
        b"a FETCH 1 (BOGUS)",
        b"a FETCH 1 BODY[1.]",
        b"a FETCH 1 BODY[MIME]",
        b"a FETCH 1 BINARY[HEADER]",
        b"a FETCH 1 BINARY.SIZE[1]<0.5>",
        b"a FETCH 1 BODY[TEXT]<0.0>",
        b"a FETCH 1 BODY[HEADER.FIELDS ()]",
        b"a FETCH 0 FLAGS",
        b"a FETCH 1 ()",
        b"a FETCH 1",
        b"a FETCH FLAGS",
        b"a FETCH 1 RFC822.HEADER[]",
    ],
)
def test_fetch_errors(bad: bytes) -> None:
    err = error(bad + b"\r\n")
    assert err.status == "BAD" and err.tag == "a"


def test_store_forms() -> None:
    assert parse(b"a STORE 2:4 +FLAGS (\\Deleted)\r\n") == c.Store(
        "a", seqset=S("2:4"), mode="add", flags=("\\Deleted",)
    )
    assert parse(b"a UID STORE 1 -FLAGS.SILENT \\seen $Junk\r\n") == c.Store(
        "a", uid=True, seqset=S("1"), mode="remove", silent=True, flags=("\\Seen", "$Junk")
    )
    assert parse(b"a STORE 1 (UNCHANGEDSINCE 320162338) FLAGS.SILENT ()\r\n") == c.Store(
        "a", seqset=S("1"), silent=True, flags=(), unchangedsince=320162338
    )
    assert error(b"a STORE 1 +FLAGZ (\\Seen)\r\n").status == "BAD"
    assert error(b"a STORE 1 (FOO 1) FLAGS ()\r\n").status == "BAD"


def test_copy_move() -> None:
    assert parse(b"a COPY 2:4 MEETING\r\n") == c.Copy("a", seqset=S("2:4"), mailbox="MEETING")
    assert parse(b"a UID COPY $ Trash\r\n") == c.Copy("a", uid=True, seqset=S("$"), mailbox="Trash")
    assert parse(b"a MOVE 1 inbox\r\n") == c.Move("a", seqset=S("1"), mailbox="INBOX")
    cmd = parse(b"a UID MOVE 42:69 foo\r\n")
    assert cmd == c.Move("a", uid=True, seqset=S("42:69"), mailbox="foo")
    assert spec_for(cmd).name == "UID MOVE"


def test_search_every_key() -> None:
    line = (
        b"a SEARCH ALL ANSWERED BCC b BEFORE 1-Feb-1994 BODY x CC c DELETED DRAFT FLAGGED FROM f"
        b' HEADER X-Foo bar KEYWORD $Junk LARGER 100 NEW NOT SEEN OLD ON "2-Mar-2020" OR 1 2 RECENT'
        b" SEEN SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000 SINCE 1-Jan-2000"
        b" SMALLER 5 SUBJECT s TEXT t TO t2 UID 1:* UNANSWERED UNDELETED UNDRAFT UNFLAGGED"
        b" UNKEYWORD k UNSEEN 1,2:* $ (ALL) YOUNGER 60 OLDER 3600 MODSEQ 5"
        b' MODSEQ "/flags/\\\\draft" all 620162338'
    )
    cmd = parse(line + b"\r\n")
    assert isinstance(cmd, c.Search)
    d = datetime.date
    assert cmd.criteria == sk.And(
        (
            sk.AllKey(),
            sk.FlagKey("\\Answered"),
            sk.HeaderKey("Bcc", "b"),
            sk.DateKey("before", d(1994, 2, 1)),
            sk.TextKey("x", True),
            sk.HeaderKey("Cc", "c"),
            sk.FlagKey("\\Deleted"),
            sk.FlagKey("\\Draft"),
            sk.FlagKey("\\Flagged"),
            sk.HeaderKey("From", "f"),
            sk.HeaderKey("X-Foo", "bar"),
            sk.FlagKey("$Junk"),
            sk.SizeKey("larger", 100),
            sk.And((sk.FlagKey("\\Recent"), sk.FlagKey("\\Seen", False))),
            sk.Not(sk.FlagKey("\\Seen")),
            sk.FlagKey("\\Recent", False),
            sk.DateKey("on", d(2020, 3, 2)),
            sk.Or(sk.SeqKey(S("1")), sk.SeqKey(S("2"))),
            sk.FlagKey("\\Recent"),
            sk.FlagKey("\\Seen"),
            sk.DateKey("before", d(2000, 1, 1), sent=True),
            sk.DateKey("on", d(2000, 1, 1), sent=True),
            sk.DateKey("since", d(2000, 1, 1), sent=True),
            sk.DateKey("since", d(2000, 1, 1)),
            sk.SizeKey("smaller", 5),
            sk.HeaderKey("Subject", "s"),
            sk.TextKey("t", False),
            sk.HeaderKey("To", "t2"),
            sk.SeqKey(S("1:*"), uid=True),
            sk.FlagKey("\\Answered", False),
            sk.FlagKey("\\Deleted", False),
            sk.FlagKey("\\Draft", False),
            sk.FlagKey("\\Flagged", False),
            sk.FlagKey("k", False),
            sk.FlagKey("\\Seen", False),
            sk.SeqKey(S("1,2:*")),
            sk.SeqKey(S("$")),
            sk.And((sk.AllKey(),)),
            sk.WithinKey(False, 60),
            sk.WithinKey(True, 3600),
            sk.ModSeqKey(5),
            sk.ModSeqKey(620162338, "/flags/\\draft", "all"),
        )
    )
    assert cmd.return_opts is None and cmd.charset is None


def test_search_return_charset_nesting() -> None:
    cmd = parse(
        b'a UID SEARCH RETURN (MIN MAX COUNT ALL SAVE) CHARSET utf-8 OR (FROM "J\xc3\xb6rg") NOT (TO x OR 1 2)\r\n'  # noqa: E501
    )
    assert cmd == c.Search(
        "a",
        uid=True,
        charset="UTF-8",
        return_opts=("MIN", "MAX", "COUNT", "ALL", "SAVE"),
        criteria=sk.And(
            (
                sk.Or(
                    sk.And((sk.HeaderKey("From", "Jörg"),)),
                    sk.Not(
                        sk.And(
                            (sk.HeaderKey("To", "x"), sk.Or(sk.SeqKey(S("1")), sk.SeqKey(S("2"))))
                        )
                    ),
                ),
            )
        ),
    )
    assert parse(b"a SEARCH RETURN () ALL\r\n") == c.Search(
        "a", criteria=sk.And((sk.AllKey(),)), return_opts=()
    )
    cmd = parse(b"a SEARCH CHARSET ISO-8859-1 SUBJECT {3}\r\n\xe9t\xe9\r\n")
    assert isinstance(cmd, c.Search)
    assert cmd.criteria == sk.And((sk.HeaderKey("Subject", "été"),))


def test_search_errors() -> None:
    err = error(b"a SEARCH CHARSET X-NOPE ALL\r\n")
    assert (err.status, err.code) == ("NO", "BADCHARSET (US-ASCII UTF-8)")
    assert error(b"a SEARCH CHARSET base64 ALL\r\n").code == "BADCHARSET (US-ASCII UTF-8)"
    assert error(b"a SEARCH\r\n").status == "BAD"
    assert error(b"a SEARCH FOO\r\n").status == "BAD"
    assert error(b"a SEARCH RETURN (BOGUS) ALL\r\n").status == "BAD"
    assert error(b"a SEARCH OR ALL\r\n").status == "BAD"
    assert error(b"a SEARCH BEFORE 32-Jan-2020\r\n").status == "BAD"
    assert error(b"a SEARCH (ALL\r\n").status == "BAD"
    assert (
        error(b"a SEARCH " + b"NOT " * 200 + b"ALL\r\n").text == "Search criteria nested too deeply"
    )
    assert error(b"a SEARCH " + b"(" * 200 + b"ALL" + b")" * 200 + b"\r\n").status == "BAD"


def test_sort_and_thread() -> None:
    cmd = parse(b"a UID SORT (REVERSE DATE subject DISPLAYFROM) UTF-8 ALL\r\n")
    assert cmd == c.Sort(
        "a",
        uid=True,
        keys=(c.SortKey("DATE", True), c.SortKey("SUBJECT"), c.SortKey("DISPLAYFROM")),
        charset="UTF-8",
        criteria=sk.And((sk.AllKey(),)),
    )
    cmd = parse(b"a SORT RETURN (MIN COUNT) (ARRIVAL) US-ASCII SINCE 1-Jan-2020\r\n")
    assert isinstance(cmd, c.Sort) and cmd.return_opts == ("MIN", "COUNT")
    assert parse(b"a THREAD REFERENCES UTF-8 ALL\r\n") == c.Thread(
        "a", algorithm="REFERENCES", charset="UTF-8", criteria=sk.And((sk.AllKey(),))
    )
    assert parse(b"a UID THREAD orderedsubject UTF-8 UNSEEN\r\n") == c.Thread(
        "a",
        uid=True,
        algorithm="ORDEREDSUBJECT",
        charset="UTF-8",
        criteria=sk.And((sk.FlagKey("\\Seen", False),)),
    )
    assert error(b"a THREAD X UTF-8 ALL\r\n").status == "BAD"
    assert error(b"a SORT (BOGUS) UTF-8 ALL\r\n").status == "BAD"
    assert error(b"a SORT () UTF-8 ALL\r\n").status == "BAD"


# ---- mailbox names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        b"..",
        b"a/../b",
        b"a//b",
        b"/etc",
        b"a/",
        b'"a\\x"',
        b'"a\\\\b"',
        b"{3}\r\na\x01b",
        b'"%"',
        b"a*",
        b"...",
        b"./x",
    ],
)
def test_unsafe_mailbox_names_are_refused_with_cannot(name: bytes) -> None:
    err = error(b"a SELECT " + name + b"\r\n")
    if err.status == "BAD":  # not even an astring (bad escape, bare wildcard): a syntax error
        assert b'"' in name or b"*" in name
        return
    assert (err.status, err.code, err.tag) == ("NO", "CANNOT", "a")


def test_names_refused_for_every_mailbox_command() -> None:
    for line in (
        b"a CREATE ../x",
        b"a DELETE ..",
        b"a RENAME INBOX/x ../y",
        b"a SUBSCRIBE a//b",
        b"a STATUS .. (MESSAGES)",
        b"a APPEND .. {1+}\r\nx",
        b"a COPY 1 ..",
        b"a UID MOVE 1 ..",
        b"a GETQUOTAROOT ..",
    ):
        err = error(line + b"\r\n")
        assert (err.status, err.code) == ("NO", "CANNOT"), line


def test_inbox_is_case_insensitive() -> None:
    assert parse(b"a SELECT iNbOx\r\n") == c.Select("a", "INBOX")
    assert parse(b"a SELECT Inbox/Work\r\n") == c.Select("a", "INBOX/Work")
    assert parse(b"a SELECT InboxWork\r\n") == c.Select("a", "InboxWork")
    assert parse(b'a LIST "" inbox\r\n') == c.List("a", "", ("INBOX",))


def test_mutf7_vs_utf8_names() -> None:
    # rev1: names are modified UTF-7, raw 8-bit and stray "&" are refused
    assert parse(b"a SELECT Entw&APw-rfe\r\n") == c.Select("a", "Entwürfe")
    assert error(b"a SELECT Entw\xc3\xbcrfe\r\n").status == "BAD"  # 8-bit atom: syntax
    assert error(b'a SELECT "Entw\xc3\xbcrfe"\r\n').code == "CANNOT"
    assert error(b'a SELECT "Q&A"\r\n').code == "CANNOT"
    # UTF8=ACCEPT / IMAP4rev2: UTF-8, and Thunderbird's unencoded "&" is just an ampersand
    assert parse(b'a SELECT "Entw\xc3\xbcrfe"\r\n', utf8=True) == c.Select("a", "Entwürfe")
    assert parse(b'a SELECT "Q&A"\r\n', utf8=True) == c.Select("a", "Q&A")
    assert parse(b"a CREATE Q&A/Docs\r\n", utf8=True) == c.Create("a", "Q&A/Docs")
    assert parse(b"a SELECT Entw&APw-rfe\r\n", utf8=True) == c.Select("a", "Entw&APw-rfe")
    assert error(b'a SELECT "\xff"\r\n', utf8=True).code == "CANNOT"


def test_unknown_and_malformed_commands() -> None:
    err = error(b"a FROBNICATE\r\n")
    assert (err.tag, err.status) == ("a", "BAD")
    err = error(b"+bad NOOP\r\n")
    assert (err.tag, err.status) == ("*", "BAD")
    err = error(b"NOOP\r\n")
    assert err.status == "BAD"
    assert error(b"a UID\r\n").status == "BAD"
    assert error(b"a UID LOGIN x y\r\n").status == "BAD"


@pytest.mark.parametrize(
    "line",
    [
        b'a LOGIN "unterminated',
        b'a LOGIN "bad\\escape" x',
        b"a LOGIN joe",
        b"a LOGIN {3}\r\nab",
        b"a SELECT",
        b"a SELECT (x)",
        b'a ID (NIL "x")',
        b"a CREATE x (FOO (\\Sent))",
        b'a LIST "" * RETURN (BOGUS)',
        b'a LIST "" * RETURNS ()',
        b"a APPEND INBOX (\\Seen) x",
        b"a APPEND INBOX ~{1+}\r\nx)",
        b"a SEARCH SINCE 1-Foo-2020",
        b"a SEARCH SINCE 1-Jan-20",
        b"a SEARCH SINCE x-Jan-2020",
        b"a SEARCH LARGER 99999999999999999999999",
        b"a SEARCH LARGER x",
        b"a SEARCH UID x",
        b'a SEARCH MODSEQ "/flags/x" bogus 5',
        b"a SEARCH YOUNGER 0",
        b"a SEARCH KEYWORD",
        b"a FETCH 1 (FLAGS",
        b"a FETCH 1 FLAGS (CHANGEDSINCE x)",
        b"a FETCH 1 FLAGS (FOO)",
        b"a FETCH 1:2:3 FLAGS",
        b"a STORE 1 FLAGS",
        b"a COPY 1",
        b"a SETQUOTA x (STORAGE)",
        b"a COMPRESS",
        b"a AUTHENTICATE",
        b"a AUTHENTICATE PLAIN !!!",
        b"a THREAD REFERENCES",
        b"a SORT (DATE)",
        b"a SORT (REVERSE) UTF-8 ALL",
        b"a GETQUOTA",
        b"a RENAME a",
        b"a STATUS INBOX ()",
        b"a ENABLE (x)",
    ],
)
def test_syntax_errors_are_tagged_bad(line: bytes) -> None:
    err = error(line + b"\r\n")
    assert (err.tag, err.status) == ("a", "BAD"), err
    assert err.text and "\n" not in err.text


@pytest.mark.parametrize(
    ("line", "utf8"),
    [
        (b'a CREATE ""', False),
        (b"a CREATE " + b"x" * 1100, False),
        (b"a CREATE " + b"/".join([b"y" * 256]), False),
        (b'a CREATE "tab\there"', False),
        (b'a CREATE "a\x7fb"', False),
        (b'a CREATE "a\xc2\x85b"', True),
        (b'a CREATE "&AAk-"', False),  # a TAB hidden in modified UTF-7
        (b"a CREATE &AGE-", False),  # non-canonical mUTF-7
        (b"a CREATE ./x", False),
    ],
)
def test_more_names_refused(line: bytes, utf8: bool) -> None:
    err = error(line + b"\r\n", utf8=utf8)
    assert (err.status, err.code) == ("NO", "CANNOT"), err


def test_list_patterns_keep_what_cannot_be_decoded() -> None:
    # a pattern is not a name: an undecodable one is kept literally (it simply matches nothing)
    assert parse(b'a LIST "" "Q&A*"\r\n') == c.List("a", "", ("Q&A*",))
    assert parse(b'a LIST "" "Entw\xc3\xbcrfe*"\r\n', utf8=True) == c.List("a", "", ("Entwürfe*",))
