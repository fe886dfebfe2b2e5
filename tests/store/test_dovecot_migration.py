"""A Maildir written by Dovecot opens with Dovecot's UIDVALIDITY, UIDs, flags and keywords.

The Maildir is made by Debian's real Dovecot (its ``imap`` binary in PREAUTH mode), so the
``dovecot-uidlist`` and ``dovecot-keywords`` files are exactly what a migrating household has.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailhub.store.maildir import MaildirMailstore, account_dir
from mailhub.store.model import NewMessage
from tests.support import dovecot_preauth as dovecot

needs_dovecot = pytest.mark.skipif(
    not dovecot.available(), reason="needs Debian's dovecot-imapd and root (installed by .ci/run)"
)

ADDRESS = "migrant@example.org"


def _make_dovecot_store(maildir: Path) -> tuple[int, dict[int, frozenset[str]], dict[int, str]]:
    lines = [
        dovecot.append_line(f"a{i}", "INBOX", flags, f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode())
        for i, flags in enumerate(
            ["\\Seen $Label1", "\\Flagged Work", "", "\\Answered \\Seen", "Work $Label1", ""]
        )
    ]
    lines += [
        b"c1 CREATE Entw&APw-rfe",
        dovecot.append_line("a9", "Entw&APw-rfe", "\\Draft", b"Subject: draft\r\n\r\nx\r\n"),
        b"s1 SELECT INBOX",
        b"s2 STORE 1,3 +FLAGS (\\Deleted)",
        b"s3 EXPUNGE",
    ]
    dovecot.run(maildir, lines)
    # A second session: Dovecot runs pipelined commands concurrently.
    out = dovecot.run(
        maildir,
        [
            b"s1 SELECT INBOX",
            b"f1 FETCH 1:* (UID FLAGS)",
            b"f2 FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
        ],
    )
    subjects = {
        int(m.group(1)): m.group(2).decode()
        for m in re.finditer(rb"UID (\d+) BODY\[[^]]*\] \{\d+\}\r\nSubject: (\S+)", out)
    }
    return dovecot.uidvalidity(out), dovecot.uids_and_flags(out), subjects


@needs_dovecot
async def test_dovecot_maildir_keeps_uids_flags_and_keywords(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    maildir = account_dir(root, ADDRESS)
    uidvalidity, flags, subjects = _make_dovecot_store(maildir)
    assert len(flags) == 4 and (maildir / "dovecot-uidlist").exists()

    store = MaildirMailstore(root)
    try:
        account = await store.open_account(ADDRESS)
        inbox = await account.open_mailbox("INBOX")
        snap = await inbox.snapshot()
        assert snap.uidvalidity == uidvalidity
        assert {m.uid: m.flags for m in snap.messages} == flags
        for info in snap.messages:
            data = await (await inbox.open_message(info.uid)).read()
            assert f"Subject: {subjects[info.uid]}\r\n".encode() in data
        assert snap.uid_next > max(flags)
        # New mail continues after Dovecot's UIDs, never reusing an expunged one.
        (new,) = await inbox.append([NewMessage(b"Subject: after migration\n\nhi\n")])
        assert new.uid == 7
        folders = [b.name for b in await account.list_mailboxes()]
        assert "Entwürfe" in folders
        drafts = await account.open_mailbox("Entwürfe")
        assert [m.flags for m in (await drafts.snapshot()).messages] == [frozenset({"\\Draft"})]
    finally:
        await store.close()


async def test_uidlist_uids_win_over_new_files_with_a_stale_header(tmp_path: Path) -> None:
    """Regression: Dovecot's uidlist header can lag (``N3`` while UID 3 exists); a file the
    uidlist does not know, sorting before UID 3's file, took UID 3 and pushed it to 4."""
    from mailhub.store.maildir import _fs

    root = tmp_path / "mail"
    maildir = account_dir(root, ADDRESS)
    maildir.parent.mkdir(parents=True)
    _fs.make_maildir(maildir)
    names = {1: "1700000001.M1P1.host,S=14", 2: "1700000002.M2P1.host,S=14",
             3: "1700000003.M3P1.host,S=14"}  # fmt: skip
    for uid, base in names.items():
        (maildir / "cur" / f"{base}:2,S").write_bytes(f"Subject: {uid}\n\nx\n".encode())
    (maildir / "cur" / "0000000000.outside.host:2,").write_bytes(b"Subject: new\n\nx\n")
    lines = ["3 V1234 N3 Gabc"] + [f"{uid} :{base}" for uid, base in names.items()]
    (maildir / "dovecot-uidlist").write_text("\n".join(lines) + "\n")
    store = MaildirMailstore(root)
    try:
        inbox = await (await store.open_account(ADDRESS)).open_mailbox("INBOX")
        snap = await inbox.snapshot()
        assert snap.uidvalidity == 1234
        subjects = {}
        for info in snap.messages:
            data = await (await inbox.open_message(info.uid)).read()
            subjects[info.uid] = data.split(b"\r\n")[0]
        assert subjects == {1: b"Subject: 1", 2: b"Subject: 2", 3: b"Subject: 3",
                            4: b"Subject: new"}  # fmt: skip
    finally:
        await store.close()
