"""APPEND (MULTIAPPEND, flags/date, APPENDUID, TRYCREATE, APPENDLIMIT, literal8, UTF8),
STORE (.SILENT, UNCHANGEDSINCE/MODIFIED), COPY/MOVE with COPYUID."""

from __future__ import annotations

import imaplib
import re
from collections.abc import Callable

from conftest import msg
from imap_raw import RawImap
from mailhub_proc import MailhubServer


def test_append_variants(raw: Callable[..., RawImap]) -> None:
    c = raw()
    a, b = msg("a"), msg("b")
    c.send(b'a APPEND INBOX (\\Seen $Label1) "07-Feb-1994 21:52:25 -0800" {%d}\r\n' % len(a))
    assert c.line() == b"+ Ready for literal data"
    c.send(a + b"\r\n")
    out = c.until_tagged("a")
    assert re.fullmatch(rb"a OK \[APPENDUID \d+ 1\] APPEND completed", out[-1])
    # MULTIAPPEND: two messages, one APPENDUID range
    c.send(
        b"b APPEND INBOX {%d+}\r\n" % len(a) + a + b" (\\Flagged) {%d+}\r\n" % len(b) + b + b"\r\n"
    )
    assert re.fullmatch(rb"b OK \[APPENDUID \d+ 2:3\] APPEND completed", c.until_tagged("b")[-1])
    c.send(b"c APPEND Nope {%d+}\r\n" % len(a) + a + b"\r\n")
    assert c.until_tagged("c")[-1].startswith(b"c NO [TRYCREATE]")
    c.send(b"d APPEND INBOX {0+}\r\n\r\n")
    assert c.until_tagged("d")[-1].startswith(b"d NO")
    # literal8 (BINARY) and UTF8 (RFC 6855)
    c.send(b"e APPEND INBOX ~{%d+}\r\n" % len(a) + a + b"\r\n")
    assert c.until_tagged("e")[-1].startswith(b"e OK [APPENDUID")
    c.cmd("f ENABLE UTF8=ACCEPT")
    u = "Subject: Grüße\r\n\r\nhi\r\n".encode()
    c.send(b"g APPEND INBOX UTF8 (~{%d+}\r\n" % len(u) + u + b")\r\n")
    assert c.until_tagged("g")[-1].startswith(b"g OK [APPENDUID")
    out = c.cmd("h SELECT INBOX")
    assert b"* 5 EXISTS" in out
    assert b"$Label1" in out[0]
    out = c.cmd("i FETCH 1 (FLAGS INTERNALDATE)")
    assert (
        b"\\Seen" in out[0] and b"$Label1" in out[0] and b'"08-Feb-1994 05:52:25 +0000"' in out[0]
    )
    # APPEND to the selected mailbox: EXISTS before the tagged OK
    c.send(b"j APPEND INBOX {%d+}\r\n" % len(a) + a + b"\r\n")
    out = c.until_tagged("j")
    assert b"* 6 EXISTS" in out


def test_appendlimit_toobig(mailhub_factory: Callable[..., MailhubServer]) -> None:
    server = mailhub_factory(config={"limits": {"max_literal_size": 2048}})
    c = RawImap(server.host, server.ports["imap"])
    c.login(server.user, server.password)
    assert b"APPENDLIMIT=2048" in c.cmd("a CAPABILITY")[0]
    out = c.cmd("b APPEND INBOX {5000}")
    assert out[-1].startswith(b"b NO [TOOBIG]")
    assert c.cmd("c NOOP") == [b"c OK NOOP completed"]


def test_store_variants(raw: Callable[..., RawImap]) -> None:
    c = raw()
    for i in range(3):
        m = msg(f"s{i}")
        c.send(b"ap APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
        c.until_tagged("ap")
    c.cmd("a SELECT INBOX")
    out = c.cmd("b STORE 1:2 +FLAGS (\\Seen Work)")
    assert out[0] == b"* 1 FETCH (FLAGS (Work \\Recent \\Seen))" or b"\\Seen" in out[0]
    assert len(out) == 3
    assert c.cmd("c STORE 1 -FLAGS.SILENT (Work)") == [b"c OK STORE completed"]
    out = c.cmd("d UID STORE 3 FLAGS (\\Answered)")
    assert re.fullmatch(rb"\* 3 FETCH \(FLAGS \(\\Answered \\Recent\) UID 3\)", out[0]), out
    assert c.cmd("e STORE 9 +FLAGS (\\Seen)")[-1].startswith(b"e BAD")
    assert c.cmd("f UID STORE 9 +FLAGS (\\Seen)") == [b"f OK STORE completed"]
    # UNCHANGEDSINCE: message 1 changed after modseq 1
    out = c.cmd("g FETCH 1:3 (MODSEQ)")
    mods = [int(x) for x in re.findall(rb"MODSEQ \((\d+)\)", b" ".join(out))]
    low = min(mods)
    out = c.cmd(f"h STORE 1:3 (UNCHANGEDSINCE {low}) +FLAGS (\\Flagged)")
    assert out[-1].startswith(b"h OK [MODIFIED ")
    out = c.cmd(f"i UID STORE 1:3 (UNCHANGEDSINCE {max(mods) + 100}) +FLAGS (\\Draft)")
    assert out[-1] == b"i OK STORE completed"
    assert all(b"MODSEQ" in ln for ln in out[:-1])


def test_copy_move_copyuid(raw: Callable[..., RawImap]) -> None:
    c = raw()
    for i in range(4):
        m = msg(f"c{i}")
        c.send(b"ap APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
        c.until_tagged("ap")
    c.cmd("a SELECT INBOX")
    out = c.cmd("b COPY 1:2 Archive")
    assert re.fullmatch(rb"b OK \[COPYUID \d+ 1:2 1:2\] COPY completed", out[-1]), out
    assert c.cmd("c COPY 1 Nope")[-1].startswith(b"c NO [TRYCREATE]")
    out = c.cmd("d UID MOVE 2:3 Trash")
    assert re.fullmatch(rb"\* OK \[COPYUID \d+ 2:3 1:2\] Moved", out[0]), out
    assert out[1:] == [b"* 3 EXPUNGE", b"* 2 EXPUNGE", b"d OK MOVE completed"]
    out = c.cmd("e MOVE 2 Trash")
    assert out[1:] == [b"* 2 EXPUNGE", b"e OK MOVE completed"]
    assert c.cmd("f STATUS Trash (MESSAGES)")[0].endswith(b"(MESSAGES 3)")
    assert c.cmd("g UID COPY 99 Trash") == [b"g OK COPY completed"]


def test_imapclient_roundtrip(server: MailhubServer) -> None:
    """The PyPI client: folders, append, flags, move, idle check."""
    from imapclient import IMAPClient

    with IMAPClient(server.host, port=server.ports["imap"], ssl=False) as c:
        c.login(server.user, server.password)
        assert c.has_capability("IDLE") and c.has_capability("MOVE")
        c.create_folder("Lists/python")
        assert c.folder_exists("Lists/python")
        assert c.find_special_folder(b"\\Sent") == "Sent"
        c.append("Lists/python", msg("via imapclient"), flags=[b"\\Seen"])
        c.select_folder("Lists/python")
        uids = c.search(["ALL"]) if _has_search() else [1]
        c.add_flags(uids, [b"\\Flagged"])
        flags = c.get_flags(uids)
        assert b"\\Flagged" in flags[uids[0]]
        c.move(uids, "Archive")
        assert c.folder_status("Archive", [b"MESSAGES"])[b"MESSAGES"] == 1
        c.rename_folder("Lists/python", "Lists/py")
        c.delete_folder("Lists/py")
        ns = c.namespace()
        assert ns.personal[0][1] == "/"
        assert c.get_quota_root("INBOX")[0].mailbox == "INBOX"


def _has_search() -> bool:
    try:
        import mailhub.imap.handlers.search  # noqa: F401
    except ImportError:
        return False
    return True


def test_imaplib_uid_commands(server: MailhubServer) -> None:
    c = imaplib.IMAP4(server.host, server.ports["imap"])
    c.login(server.user, server.password)
    c.append("INBOX", None, None, msg("x"))
    c.select("INBOX")
    typ, _data = c.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    assert typ == "OK"
    typ, _ = c.uid("EXPUNGE", "1")
    assert typ == "OK"
    c.logout()
