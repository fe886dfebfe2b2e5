"""Mailbox commands over a real server: CREATE (incl. USE), DELETE, RENAME, SUBSCRIBE,
LIST (LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, CHILDREN, \\NonExistent parents), LSUB,
XLIST, STATUS (SIZE, HIGHESTMODSEQ, DELETED, APPENDLIMIT), QUOTA; name encodings."""

from __future__ import annotations

from collections.abc import Callable

from conftest import msg
from imap_raw import RawImap
from mailhub_proc import MailhubServer


def test_create_delete_rename_and_list(raw: Callable[..., RawImap]) -> None:
    c = raw()
    assert c.cmd("a CREATE Projects/2024/Q1")[-1] == b"a OK CREATE completed"
    assert c.cmd("b CREATE Projects/2024/Q1")[-1].startswith(b"b NO [ALREADYEXISTS]")
    assert c.cmd("c CREATE inbox")[-1].startswith(b"c NO [ALREADYEXISTS]")
    assert c.cmd("d CREATE Work/")[-1] == b"d OK CREATE completed"  # trailing separator
    out = c.cmd('e LIST "" "%"')
    names = b"\n".join(out)
    assert b'* LIST (\\HasNoChildren) "/" "INBOX"' in out
    # Projects exists only through its child: a non-existent parent
    assert b'* LIST (\\Noselect \\HasChildren) "/" "Projects"' in out
    assert b'"Work"' in names and b"Projects/2024" not in names
    out = c.cmd('f LIST "" "*"')
    assert b'* LIST (\\HasNoChildren) "/" "Projects/2024/Q1"' in out
    out = c.cmd('g LIST "Projects/" "%"')
    assert any(b'"Projects/2024"' in ln for ln in out)
    assert c.cmd("h RENAME Projects/2024 Archive/Old")[-1] == b"h OK RENAME completed"
    out = c.cmd('i LIST "" "Archive/*"')
    assert b'* LIST (\\HasNoChildren) "/" "Archive/Old/Q1"' in out
    assert c.cmd("j RENAME Nope Other")[-1].startswith(b"j NO [NONEXISTENT]")
    assert c.cmd("k RENAME Work Drafts")[-1].startswith(b"k NO [ALREADYEXISTS]")
    assert c.cmd("l DELETE Work")[-1] == b"l OK DELETE completed"
    assert c.cmd("m DELETE Work")[-1].startswith(b"m NO [NONEXISTENT]")
    assert c.cmd("n DELETE INBOX")[-1].startswith(b"n NO [CANNOT]")
    out = c.cmd('o LIST "" ""')
    assert out[0] == b'* LIST (\\Noselect) "/" ""'


def test_unsafe_names_refused(raw: Callable[..., RawImap]) -> None:
    c = raw()
    for name in ('"../evil"', '"a/../../b"', '"foo\\\\bar"', '"x/./y"'):
        out = c.cmd(f"a CREATE {name}")
        assert out[-1].startswith(b"a NO [CANNOT]") or out[-1].startswith(b"a BAD"), (name, out)
    assert c.cmd("b NOOP")[-1] == b"b OK NOOP completed"


def test_special_use_and_list_extended(raw: Callable[..., RawImap]) -> None:
    c = raw()
    assert c.cmd("a CREATE Everything (USE (\\All))")[-1] == b"a OK CREATE completed"
    assert c.cmd("b CREATE Foo (USE (\\Bogus))")[-1].startswith(b"b NO [USEATTR]")
    assert c.cmd("b2 CREATE Sent2 (USE (\\Sent))")[-1].startswith(b"b2 NO")
    out = c.cmd('c LIST (SPECIAL-USE) "" "*"')
    names = sorted(ln.rsplit(b" ", 1)[1] for ln in out[:-1])
    assert names == [b'"Archive"', b'"Drafts"', b'"Everything"', b'"Junk"', b'"Sent"', b'"Trash"']
    assert b'* LIST (\\HasNoChildren \\All) "/" "Everything"' in out
    out = c.cmd('d LIST "" "*" RETURN (SPECIAL-USE)')
    assert b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"' in out
    # subscriptions: SUBSCRIBED selection, RECURSIVEMATCH, \NonExistent subscribed names
    assert c.cmd("e CREATE Lists/python")[-1].startswith(b"e OK")
    assert c.cmd("f SUBSCRIBE Lists/python")[-1] == b"f OK SUBSCRIBE completed"
    assert c.cmd("g SUBSCRIBE Gone")[-1].startswith(b"g OK")
    assert c.cmd("h SUBSCRIBE INBOX")[-1].startswith(b"h OK")
    out = c.cmd('i LIST (SUBSCRIBED) "" "*"')
    assert b'* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"' in out
    assert b'* LIST (\\NonExistent \\Subscribed) "/" "Gone"' in out
    out = c.cmd('j LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert b'* LIST (\\NonExistent \\HasChildren) "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))' in out
    out = c.cmd('k LIST "" "*" RETURN (SUBSCRIBED CHILDREN)')
    assert b'* LIST (\\HasNoChildren \\Subscribed) "/" "Lists/python"' in out
    out = c.cmd('l LSUB "" "*"')
    assert b'* LSUB () "/" "INBOX"' in out and b'* LSUB (\\Noselect) "/" "Gone"' in out
    assert c.cmd("m UNSUBSCRIBE Gone")[-1] == b"m OK UNSUBSCRIBE completed"
    assert not any(b"Gone" in ln for ln in c.cmd('n LSUB "" "*"'))
    out = c.cmd('o LIST "" ("INBOX" "Lists/*")')
    assert len(out) == 3


def test_xlist_for_outlook(raw: Callable[..., RawImap]) -> None:
    c = raw()
    out = c.cmd('a XLIST "" "*"')
    assert b'* XLIST (\\HasNoChildren \\Inbox) "/" "INBOX"' in out
    assert b'* XLIST (\\HasNoChildren \\Sent) "/" "Sent"' in out
    assert b'* XLIST (\\HasNoChildren \\Spam) "/" "Junk"' in out
    assert out[-1] == b"a OK XLIST completed"


def test_status_and_list_status(raw: Callable[..., RawImap], server: MailhubServer) -> None:
    c = raw()
    data = msg("one")
    c.send(b"a APPEND INBOX (\\Deleted) {%d+}\r\n" % len(data) + data + b"\r\n")
    assert c.until_tagged("a")[-1].startswith(b"a OK [APPENDUID ")
    out = c.cmd(
        "b STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE "
        "HIGHESTMODSEQ APPENDLIMIT)"
    )
    line = out[0].decode()
    assert line.startswith('* STATUS "INBOX" (MESSAGES 1 RECENT 0 UIDNEXT 2 UIDVALIDITY ')
    assert f"UNSEEN 1 DELETED 1 SIZE {len(data)} HIGHESTMODSEQ " in line
    assert "APPENDLIMIT " in line
    assert c.cmd("c STATUS Nope (MESSAGES)")[-1].startswith(b"c NO [NONEXISTENT]")
    out = c.cmd('d LIST "" "%" RETURN (STATUS (MESSAGES UNSEEN))')
    i = out.index(b'* LIST (\\HasNoChildren) "/" "INBOX"')
    assert out[i + 1] == b'* STATUS "INBOX" (MESSAGES 1 UNSEEN 1)'
    assert b'* STATUS "Sent" (MESSAGES 0 UNSEEN 0)' in out


def test_mailbox_name_encodings(raw: Callable[..., RawImap]) -> None:
    c = raw()
    # rev1: modified UTF-7 on the wire
    assert c.cmd("a CREATE Entw&APw-rfe")[-1].startswith(b"a OK")
    out = c.cmd('b LIST "" "Entw*"')
    assert out[0] == b'* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"'
    d = raw()
    d.cmd("c ENABLE UTF8=ACCEPT")
    out = d.cmd('d LIST "" "Entw*"')
    assert out[0] == '* LIST (\\HasNoChildren) "/" "Entwürfe"'.encode()
    # Thunderbird after UTF8=ACCEPT sends '&' unencoded: it is a plain character now
    assert d.cmd('e CREATE "R&D"')[-1].startswith(b"e OK")
    assert d.cmd('f SELECT "R&D"')[-1].startswith(b"f OK")
    out = c.cmd('g LIST "" "R*"')
    assert out[0] == b'* LIST (\\HasNoChildren) "/" "R&-D"'
    # INBOX is case-insensitive
    assert c.cmd("h SELECT inbox")[-1].startswith(b"h OK")
    assert c.cmd("i STATUS InBoX (MESSAGES)")[0] == b'* STATUS "INBOX" (MESSAGES 0)'


def test_quota(mailhub_factory: Callable[..., MailhubServer]) -> None:
    server = mailhub_factory(config={"limits": {"failed_login_delay": 0.05}}, start=False)
    server.cli("user", "set", server.user, "--quota-bytes", "1000000", "--quota-messages", "100")
    server.start()
    c = RawImap(server.host, server.ports["imap"])
    c.login(server.user, server.password)
    out = c.cmd("a GETQUOTAROOT INBOX")
    assert out[0] == b'* QUOTAROOT "INBOX" ""'
    assert out[1] == b'* QUOTA "" (STORAGE 0 976 MESSAGE 0 100)'
    assert c.cmd('b GETQUOTA ""')[0] == b'* QUOTA "" (STORAGE 0 976 MESSAGE 0 100)'
    assert c.cmd('c SETQUOTA "" (STORAGE 10)')[-1].startswith(b"c NO [NOPERM]")
    assert c.cmd("d GETQUOTA nope")[-1].startswith(b"d NO")
    big = b"Subject: x\r\n\r\n" + b"y" * 1_100_000
    c.send(b"e APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
    assert c.until_tagged("e")[-1].startswith(b"e NO [OVERQUOTA]")
    c.close()
