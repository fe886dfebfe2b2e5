"""FETCH, SEARCH, SORT and THREAD against a running ``mailhub serve`` with stdlib imaplib,
imapclient and a byte-exact client: every FETCH item, implicit \\Seen, EXAMINE, a 50 MB body
streamed in bounded server memory, CHANGEDSINCE/VANISHED, ESEARCH/SEARCHRES, IMAP4rev2,
BADCHARSET and UNKNOWN-CTE."""

from __future__ import annotations

import base64
import hashlib
import imaplib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from imap_raw import RawImap
from imapclient import IMAPClient
from mailhub_proc import MailhubServer

MULTI = (
    b"From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: multi\r\n"
    b"Date: Mon, 5 Feb 2024 10:00:00 +0000\r\nMessage-ID: <multi@example.org>\r\n"
    b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n"
    b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello world\r\n"
    b"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.b64encode(b"\x00\x01binary\xff")
    + b"\r\n--b1--\r\n"
)


def plain(subject: str, body: str = "text\r\n", extra: str = "") -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n{extra}\r\n{body}"
    ).encode()


def append(client: imaplib.IMAP4, data: bytes, flags: str = "") -> None:
    typ, _ = client.append("INBOX", flags or None, '"05-Feb-2024 10:11:12 +0000"', data)
    assert typ == "OK"


def imapclient_for(server: MailhubServer) -> IMAPClient:
    c = IMAPClient(server.host, port=server.ports["imap"], ssl=False, timeout=30)
    c.login(server.user, server.password)
    return c


def test_every_fetch_item_with_imapclient(server: MailhubServer) -> None:
    c = imapclient_for(server)
    c.append("INBOX", MULTI, flags=(b"$Label",), msg_time=None)
    c.select_folder("INBOX")
    items = [
        "UID",
        "FLAGS",
        "INTERNALDATE",
        "RFC822.SIZE",
        "ENVELOPE",
        "BODY",
        "BODYSTRUCTURE",
        "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
        "BODY.PEEK[1]",
        "BODY.PEEK[1.MIME]",
        "BODY.PEEK[2]<0.4>",
        "BINARY.SIZE[2]",
        "RFC822.HEADER",
        "MODSEQ",
    ]
    got = c.fetch([1], items)[1]
    assert got[b"SEQ"] == 1 and got[b"RFC822.SIZE"] == len(MULTI)
    assert set(got[b"FLAGS"]) - {b"\\Recent"} == {b"$Label"}
    assert got[b"ENVELOPE"].subject == b"multi"
    assert got[b"ENVELOPE"].from_[0].mailbox == b"bob"
    assert got[b"BODYSTRUCTURE"].is_multipart
    assert got[b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: multi\r\n\r\n"
    assert got[b"BODY[1]"] == b"hello world"
    assert got[b"BODY[1.MIME]"] == b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    assert got[b"BODY[2]<0>"] == base64.b64encode(b"\x00\x01binary\xff")[:4]
    assert got[b"BINARY.SIZE[2]"] == 9
    assert got[b"RFC822.HEADER"] == MULTI.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert got[b"MODSEQ"][0] > 0
    assert b"\\Seen" not in c.get_flags([1])[1]  # PEEK everywhere
    whole = c.fetch([1], ["RFC822"])[1]
    assert whole[b"RFC822"] == MULTI
    assert b"\\Seen" in c.get_flags([1])[1]  # RFC822 sets \Seen
    c.logout()


def test_binary_literal8(
    raw: Callable[..., RawImap], connect: Callable[..., imaplib.IMAP4]
) -> None:
    """RFC 3516: decoded bytes with NUL go out as literal8 (imapclient cannot parse ~{n})."""
    append(connect(), MULTI)
    c = raw()
    c.cmd("s SELECT INBOX")
    out = c.cmd("b1 FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1])")
    assert out[0] == (
        b"* 1 FETCH (BINARY[2] ~{9}\r\n\x00\x01binary\xff BINARY.SIZE[2] 9 "
        b"BINARY[1] {11}\r\nhello world)"
    )
    out = c.cmd("b2 FETCH 1 (BINARY[2]<2.3>)")
    assert out[0].startswith(b"* 1 FETCH (BINARY[2]<2> ~{3}\r\nbin FLAGS (\\Seen")


def test_implicit_seen_is_reported_and_shared(
    connect: Callable[..., imaplib.IMAP4], raw: Callable[..., RawImap]
) -> None:
    a = connect()
    append(a, plain("seen me"))
    other = raw()
    other.cmd("o1 SELECT INBOX")
    b = raw()
    b.cmd("b1 SELECT INBOX")
    out = b.cmd("b2 FETCH 1 (BODY[TEXT])")
    assert re.match(
        rb"\* 1 FETCH \(BODY\[TEXT\] \{6\}\r\ntext\r\n FLAGS \(\\Seen( \\Recent)?\)\)", out[0]
    ), out
    assert b.cmd("b3 FETCH 1 (BODY[TEXT])")[0] == b"* 1 FETCH (BODY[TEXT] {6}\r\ntext\r\n)"
    noop = other.cmd("o2 NOOP")  # the other session learns about the flag change
    assert any(b"FETCH (FLAGS (\\Seen" in ln for ln in noop), noop


def test_examine_never_sets_seen(
    raw: Callable[..., RawImap], connect: Callable[..., imaplib.IMAP4]
) -> None:
    append(connect(), plain("read only"))
    c = raw()
    assert c.cmd("e1 EXAMINE INBOX")[-1].startswith(b"e1 OK [READ-ONLY]")
    out = c.cmd("e2 FETCH 1 (BODY[] RFC822.TEXT)")
    assert b"FLAGS" not in out[0]
    assert c.cmd("e3 FETCH 1 (FLAGS)")[0] == b"* 1 FETCH (FLAGS ())"


def test_uid_fetch_always_carries_uid(
    raw: Callable[..., RawImap], connect: Callable[..., imaplib.IMAP4]
) -> None:
    cl = connect()
    for i in range(3):
        append(cl, plain(f"m{i}"))
    c = raw()
    c.cmd("s SELECT INBOX")
    out = c.cmd("u1 UID FETCH 2:* (RFC822.SIZE)")
    assert [ln.split(b" (")[1].split(b" ")[:2] for ln in out[:-1]] == [
        [b"UID", b"2"],
        [b"UID", b"3"],
    ]
    assert c.cmd("u2 UID FETCH 9 (FLAGS)") == [b"u2 OK FETCH completed"]


def test_fetch_errors(raw: Callable[..., RawImap], connect: Callable[..., imaplib.IMAP4]) -> None:
    append(
        connect(),
        b"Subject: uu\r\nContent-Type: application/x\r\n"
        b"Content-Transfer-Encoding: x-uue\r\n\r\nbegin\r\n",
    )
    c = raw()
    c.cmd("s SELECT INBOX")
    assert c.cmd("x1 FETCH 1 (BINARY.PEEK[1])")[-1].startswith(b"x1 NO [UNKNOWN-CTE]")
    assert c.cmd("x2 FETCH 2 (FLAGS)")[-1].startswith(b"x2 BAD")
    assert c.cmd("x3 UID FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)")[-1].startswith(b"x3 BAD")
    assert c.cmd("x4 FETCH 1 (BODY.PEEK[1.2.3.4])")[0] == b"* 1 FETCH (BODY[1.2.3.4] {0}\r\n)"
    assert c.cmd("x5 NOOP")[-1].startswith(b"x5 OK")


def test_changedsince_and_vanished(
    raw: Callable[..., RawImap], connect: Callable[..., imaplib.IMAP4]
) -> None:
    cl = connect()
    for i in range(5):
        append(cl, plain(f"q{i}"))
    c = raw()
    assert c.cmd("q1 ENABLE QRESYNC")[0] == b"* ENABLED QRESYNC"
    sel = c.cmd("q2 SELECT INBOX")
    base = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(sel)).group(1))  # type: ignore[union-attr]
    c.cmd("q3 UID STORE 2 +FLAGS.SILENT (\\Flagged)")
    c.cmd("q4 UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    c.cmd("q5 UID EXPUNGE 4")
    out = c.cmd(f"q6 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {base} VANISHED)")
    assert out[0] == b"* VANISHED (EARLIER) 4"
    fetches = [ln for ln in out if ln.startswith(b"* ") and b" FETCH " in ln]
    assert len(fetches) == 1 and b"UID 2" in fetches[0] and b"MODSEQ (" in fetches[0]
    out = c.cmd("q7 FETCH 1:* (UID) (CHANGEDSINCE 0)")  # iOS has sent CHANGEDSINCE 0
    assert len([ln for ln in out if ln.startswith(b"* ")]) == 4


def test_big_body_streams(server: MailhubServer, raw: Callable[..., RawImap]) -> None:
    """A 50 MB message (delivered by another process) is FETCHed whole without the server
    holding it in memory: its peak RSS grows by far less than the message."""
    line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
    body = line * (50_000_000 // len(line))
    text = f"From: a@example.org\r\nTo: {server.user}\r\nSubject: big\r\n\r\n{body}"
    server.cli("deliver", server.user, input=text, check=True)
    want = hashlib.sha256(text.encode()).hexdigest()
    del body
    c = raw(timeout=120.0)
    c.cmd("s SELECT INBOX")
    assert server.proc is not None
    status = Path(f"/proc/{server.proc.pid}/status")

    def hwm() -> int:
        m = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
        assert m is not None
        return int(m.group(1)) * 1024

    before = hwm()
    c.send(b"g1 FETCH 1 (BODY.PEEK[])\r\n")
    head = c._read_raw_line()
    m = re.match(rb"\* 1 FETCH \(BODY\[\] \{(\d+)\}\r\n$", head)
    assert m is not None, head
    size = int(m.group(1))
    # delivery prepended its trace header lines; the rest must be the message as sent
    prefix_len = size - len(text)
    assert 0 <= prefix_len < 2000
    prefix = bytearray()
    digest = hashlib.sha256()
    left = size
    while left:
        if not c.buf:
            c._fill()
        piece = c.buf[:left]
        c.buf = c.buf[len(piece) :]
        left -= len(piece)
        need = prefix_len - len(prefix)
        if need > 0:
            prefix += piece[:need]
            piece = piece[need:]
        digest.update(piece)
    assert c.line() == b")"
    assert c.line().startswith(b"g1 OK")
    assert digest.hexdigest() == want and prefix.endswith(b"\r\n")
    assert hwm() - before < 20 * 1024 * 1024, (before, hwm())


# ------------------------------------------------------------------------------ SEARCH


def test_search_keys_with_imaplib(connect: Callable[..., imaplib.IMAP4]) -> None:
    c = connect()
    append(c, plain("alpha", "the quick fox\r\n"), "\\Flagged")
    append(c, plain("=?utf-8?q?gr=C3=BC=C3=9Fe?=", "nothing\r\n"), "\\Seen $Work")
    append(c, plain("gamma", "slow turtle\r\n", "Cc: carol@example.org\r\n"))
    c.select("INBOX")
    cases = {
        ("ALL",): b"1 2 3",
        ("FLAGGED",): b"1",
        ("UNSEEN",): b"1 3",
        ("KEYWORD", "$Work"): b"2",
        ("NOT", "KEYWORD", "$Work"): b"1 3",
        ("OR", "FLAGGED", "SEEN"): b"1 2",
        ("BODY", "fox"): b"1",
        ("TEXT", "turtle"): b"3",
        ("CC", "carol"): b"3",
        ("SUBJECT", "alpha"): b"1",
        ("HEADER", "Subject", "gamma"): b"3",
        ("LARGER", "1"): b"1 2 3",
        ("SMALLER", "1"): b"",
        ("SINCE", "5-Feb-2024"): b"1 2 3",
        ("BEFORE", "5-Feb-2024"): b"",
        ("ON", "5-Feb-2024"): b"1 2 3",
        ("2:*",): b"2 3",
        ("UID", "1,3"): b"1 3",
        ("OLDER", "60"): b"1 2 3",
        ("YOUNGER", "60"): b"",
        ("(OR", "FLAGGED", "(SEEN))"): b"1 2",
    }
    for crit, want in cases.items():
        typ, data = c.search(None, *crit)
        assert typ == "OK" and data == [want], (crit, data)
    c.literal = "grüße".encode()  # type: ignore[attr-defined]
    typ, data = c.search("UTF-8", "SUBJECT")
    assert typ == "OK" and data == [b"2"]
    typ, data = c.uid("SEARCH", "UID", "2:*")
    assert data == [b"2 3"]


def test_esearch_searchres_and_errors(
    raw: Callable[..., RawImap], connect: Callable[..., imaplib.IMAP4]
) -> None:
    cl = connect()
    for i in range(5):
        append(cl, plain(f"e{i}"), "\\Flagged" if i % 2 else "")
    c = raw()
    c.cmd("s SELECT INBOX")
    out = c.cmd("r1 SEARCH RETURN (MIN MAX COUNT ALL) UNFLAGGED")
    assert out[0] == b'* ESEARCH (TAG "r1") MIN 1 MAX 5 ALL 1,3,5 COUNT 3'
    assert c.cmd("r2 UID SEARCH RETURN () FLAGGED")[0] == b'* ESEARCH (TAG "r2") UID ALL 2,4'
    assert c.cmd("r3 SEARCH RETURN (COUNT) DELETED")[0] == b'* ESEARCH (TAG "r3") COUNT 0'
    assert c.cmd("r4 SEARCH RETURN (SAVE) FLAGGED") == [b"r4 OK SEARCH completed"]
    assert c.cmd("r5 FETCH $ (UID)")[:2] == [b"* 2 FETCH (UID 2)", b"* 4 FETCH (UID 4)"]
    assert c.cmd("r6 SEARCH $ 3:*")[0] == b"* SEARCH 4"
    c.cmd("r7 SEARCH RETURN (SAVE MIN) ALL")
    assert c.cmd("r8 UID SEARCH UID $")[0] == b"* SEARCH 1"
    out = c.cmd("r9 SEARCH CHARSET KOI8-X-NOPE ALL")
    assert out[-1].startswith(b"r9 NO [BADCHARSET"), out
    assert c.cmd("ra SEARCH FROBNICATE")[-1].startswith(b"ra BAD")
    assert c.cmd("rb SEARCH MODSEQ 1")[0].endswith(b")")  # (MODSEQ n)


def test_imap4rev2_search_answers_esearch(
    raw: Callable[..., RawImap], connect: Callable[..., imaplib.IMAP4]
) -> None:
    append(connect(), plain("rev2"))
    c = raw()
    assert c.cmd("v1 ENABLE IMAP4rev2")[0] == b"* ENABLED IMAP4rev2"
    c.cmd("v2 SELECT INBOX")
    assert c.cmd("v3 SEARCH ALL")[0] == b'* ESEARCH (TAG "v3") ALL 1'


# -------------------------------------------------------------------------- SORT/THREAD


def test_sort_and_thread_with_imapclient(server: MailhubServer) -> None:
    c = imapclient_for(server)
    msgs = [
        plain("Topic", extra="Message-ID: <a@x>\r\nDate: Mon, 5 Feb 2024 10:00:00 +0000\r\n"),
        plain(
            "Re: Topic",
            extra="Message-ID: <b@x>\r\nReferences: <a@x>\r\n"
            "Date: Tue, 6 Feb 2024 10:00:00 +0000\r\n",
        ),
        plain("Another", extra="Message-ID: <c@x>\r\nDate: Sun, 4 Feb 2024 10:00:00 +0000\r\n"),
    ]
    for m in msgs:
        c.append("INBOX", m)
    c.select_folder("INBOX")
    assert c.sort(["DATE"]) == [3, 1, 2]
    assert c.sort(["REVERSE", "DATE"]) == [2, 1, 3]
    assert c.sort(["SUBJECT", "REVERSE", "ARRIVAL"]) == [3, 2, 1]
    assert c.sort(["DISPLAYFROM"], ["SUBJECT", "Topic"]) == [1, 2]
    assert c.thread("REFERENCES") == ((3,), (1, 2))
    assert c.thread("ORDEREDSUBJECT") == ((3,), (1, 2))
    c.logout()


def test_esort_return(raw: Callable[..., RawImap], connect: Callable[..., imaplib.IMAP4]) -> None:
    cl = connect()
    for s in ("b", "c", "a"):
        append(cl, plain(s))
    c = raw()
    c.cmd("s SELECT INBOX")
    assert c.cmd("o1 SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL")[0] == (
        b'* ESEARCH (TAG "o1") MIN 3 MAX 2 ALL 3,1:2 COUNT 3'
    )
    assert c.cmd("o2 UID SORT (REVERSE SUBJECT) UTF-8 ALL")[0] == b"* SORT 2 1 3"
    # same date for all three: the threads go by date, then by sequence number
    assert c.cmd("o3 UID THREAD ORDEREDSUBJECT UTF-8 ALL")[0] == b"* THREAD (1)(2)(3)"
    assert c.cmd("o4 SORT (SUBJECT) X-NOPE ALL")[-1].startswith(b"o4 NO [BADCHARSET")


@pytest.mark.parametrize("cmd", ["FETCH 1:* (FLAGS)", "SEARCH ALL", "SORT (DATE) UTF-8 ALL"])
def test_empty_mailbox(raw: Callable[..., RawImap], cmd: str) -> None:
    c = raw()
    c.cmd("s SELECT INBOX")
    out = c.cmd(f"z {cmd}")
    assert out[-1].split(b" ")[1] in (b"OK", b"BAD"), out


def test_fetch_of_a_message_expunged_by_another_session(
    raw: Callable[..., RawImap], connect: Callable[..., imaplib.IMAP4]
) -> None:
    """RFC 9051 §7.5.1: no EXPUNGE during FETCH; the gone message gets no body and the
    command ends OK [EXPUNGEISSUED] (Dovecot's answer); NOOP then reports the expunge."""
    cl = connect()
    for i in range(3):
        append(cl, plain(f"x{i}"))
    a = raw()
    a.cmd("a1 SELECT INBOX")
    b = raw()
    b.cmd("b1 SELECT INBOX")
    b.cmd("b2 STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.cmd("b3 EXPUNGE")
    out = a.cmd("a2 FETCH 1:3 (BODY.PEEK[TEXT])")
    assert [ln.split(b" (")[0] for ln in out[:-1]] == [b"* 1 FETCH", b"* 3 FETCH"], out
    assert out[-1].startswith(b"a2 OK [EXPUNGEISSUED]")
    flags_only = a.cmd("a3 FETCH 2 (FLAGS)")
    assert flags_only[-1].startswith(b"a3 OK") and not any(b"EXPUNGE\r" in x for x in flags_only)
    assert b"* 2 EXPUNGE" in a.cmd("a4 NOOP")


def test_sort_and_thread_with_criteria_and_uids(
    raw: Callable[..., RawImap], connect: Callable[..., imaplib.IMAP4]
) -> None:
    cl = connect()
    append(cl, plain("zeta"), "\\Flagged")
    append(cl, plain("alpha"))
    append(cl, plain("Re: zeta", extra="In-Reply-To: <none@x>\r\n"), "\\Flagged")
    c = raw()
    c.cmd("s SELECT INBOX")
    c.cmd("s2 STORE 2 +FLAGS.SILENT (\\Deleted)")
    c.cmd("s3 EXPUNGE")  # UIDs 1 and 3 are now sequence numbers 1 and 2
    assert c.cmd("t1 UID SORT (SUBJECT) US-ASCII FLAGGED")[0] == b"* SORT 1 3"
    assert c.cmd("t2 SORT (REVERSE SIZE) UTF-8 ALL")[0] == b"* SORT 2 1"
    assert c.cmd("t3 UID THREAD ORDEREDSUBJECT UTF-8 FLAGGED")[0] == b"* THREAD (1 3)"
    assert c.cmd("t4 THREAD REFERENCES UTF-8 SUBJECT zeta")[0] == b"* THREAD (1 2)"
    assert c.cmd("t5 UID SORT RETURN (COUNT) (DATE) UTF-8 UNFLAGGED")[0] == (
        b'* ESEARCH (TAG "t5") UID COUNT 0'
    )
