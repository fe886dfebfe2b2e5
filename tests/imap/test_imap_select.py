"""SELECT/EXAMINE (CONDSTORE, QRESYNC), CLOSE, UNSELECT, CHECK, EXPUNGE, UID EXPUNGE."""

from __future__ import annotations

import re
from collections.abc import Callable

from conftest import msg
from imap_raw import RawImap


def _append(c: RawImap, n: int, flags: str = "", box: str = "INBOX") -> None:
    for i in range(n):
        data = msg(f"m{i}")
        fl = f" ({flags})" if flags else ""
        c.send(
            b"ap APPEND %s%s {%d+}\r\n" % (box.encode(), fl.encode(), len(data)) + data + b"\r\n"
        )
        assert c.until_tagged("ap")[-1].startswith(b"ap OK")


def test_select_responses_rev1(raw: Callable[..., RawImap]) -> None:
    c = raw()
    _append(c, 2, "\\Seen")
    _append(c, 1)
    out = c.cmd("a SELECT INBOX")
    assert out[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
    assert out[1] == (
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted"
    )
    assert b"* 3 EXISTS" in out and b"* 3 RECENT" in out
    assert b"* OK [UNSEEN 3] First unseen" in out
    assert any(re.fullmatch(rb"\* OK \[UIDVALIDITY \d+\] UIDs valid", ln) for ln in out)
    assert b"* OK [UIDNEXT 4] Predicted next UID" in out
    assert any(ln.startswith(b"* OK [HIGHESTMODSEQ ") for ln in out)
    assert out[-1] == b"a OK [READ-WRITE] SELECT completed"
    # a second session does not see them as recent any more (RFC 3501 §2.3.2)
    d = raw()
    assert b"* 0 RECENT" in d.cmd("b SELECT INBOX")
    out = d.cmd("c EXAMINE INBOX")
    assert out[1] == b"* OK [PERMANENTFLAGS ()] Flags permitted"
    assert out[-1] == b"c OK [READ-ONLY] EXAMINE completed"
    assert d.cmd("d STORE 1 +FLAGS (\\Deleted)")[-1].startswith(b"d NO")
    assert d.cmd("e EXPUNGE")[-1].startswith(b"e NO")
    assert c.cmd("f SELECT Nope")[-1].startswith(b"f NO [NONEXISTENT]")
    assert c.cmd("g NOOP")[-1] == b"g OK NOOP completed"
    assert c.cmd("h FETCH 1 FLAGS")[-1].startswith(b"h BAD")  # failed SELECT deselects


def test_select_rev2_has_list_and_no_recent(raw: Callable[..., RawImap]) -> None:
    c = raw()
    c.cmd("a ENABLE IMAP4rev2")
    out = c.cmd("b SELECT inbox")
    assert b'* LIST () "/" "INBOX"' in out
    assert not any(b"RECENT" in ln for ln in out)
    out = c.cmd("c SELECT Sent")
    assert b"* OK [CLOSED] Previous mailbox closed" in out


def test_close_expunges_silently_unselect_does_not(raw: Callable[..., RawImap]) -> None:
    c = raw()
    _append(c, 3)
    c.cmd("a SELECT INBOX")
    c.cmd("b STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    assert c.cmd("c UNSELECT") == [b"c OK UNSELECT completed"]
    assert c.cmd("d STATUS INBOX (MESSAGES)")[0].endswith(b"(MESSAGES 3)")
    c.cmd("e SELECT INBOX")
    assert c.cmd("f CLOSE") == [b"f OK CLOSE completed"]
    assert c.cmd("g STATUS INBOX (MESSAGES)")[0].endswith(b"(MESSAGES 1)")
    assert c.cmd("h CLOSE")[-1].startswith(b"h BAD")
    c.cmd("i EXAMINE INBOX")
    assert c.cmd("j CHECK") == [b"j OK CHECK completed"]


def test_expunge_and_uid_expunge(raw: Callable[..., RawImap]) -> None:
    c = raw()
    _append(c, 5)
    c.cmd("a SELECT INBOX")
    c.cmd("b STORE 2,4,5 +FLAGS.SILENT (\\Deleted)")
    out = c.cmd("c UID EXPUNGE 4:5")
    assert out == [b"* 5 EXPUNGE", b"* 4 EXPUNGE", b"c OK EXPUNGE completed"]
    out = c.cmd("d EXPUNGE")
    assert out == [b"* 2 EXPUNGE", b"d OK EXPUNGE completed"]
    out = c.cmd("e UID FETCH 1:* (UID)")
    assert out[:-1] == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)"]


def test_condstore_and_qresync_select(raw: Callable[..., RawImap]) -> None:
    c = raw()
    _append(c, 4)
    out = c.cmd("a SELECT INBOX (CONDSTORE)")
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(out)).group(1))
    uidv = int(re.search(rb"UIDVALIDITY (\d+)", b" ".join(out)).group(1))
    out = c.cmd("b STORE 1 +FLAGS (\\Flagged)")
    assert re.fullmatch(rb"\* 1 FETCH \(FLAGS \(\\Flagged \\Recent\) MODSEQ \(\d+\)\)", out[0]), out
    c.cmd("c STORE 3 +FLAGS.SILENT (\\Deleted)")
    c.cmd("d EXPUNGE")
    c.cmd("e LOGOUT")
    d = raw()
    d.cmd("f ENABLE QRESYNC")
    out = d.cmd(f"g SELECT INBOX (QRESYNC ({uidv} {hms} 1:4))")
    assert b"* VANISHED (EARLIER) 3" in out
    assert any(
        re.fullmatch(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)", ln) for ln in out
    ), out
    assert out[-1] == b"g OK [READ-WRITE] SELECT completed"
    # wrong UIDVALIDITY: a plain SELECT
    out = d.cmd(f"h SELECT INBOX (QRESYNC ({uidv + 1} 1))")
    assert not any(b"VANISHED" in ln for ln in out)
    e = raw()
    assert e.cmd(f"i SELECT INBOX (QRESYNC ({uidv} 1))")[-1].startswith(b"i BAD")
