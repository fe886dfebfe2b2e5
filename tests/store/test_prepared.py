"""Deliveries in two steps (``Mailbox.prepare`` / ``commit`` / ``discard``) and the sweep of
abandoned ``tmp/`` files: what ingest's pipelined group commit relies on."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailhub.errors import MailError, MailErrorKind
from mailhub.store.changes import MessagesAdded
from mailhub.store.maildir import MaildirAccount, MaildirMailstore, _fs, filename
from mailhub.store.model import NewMessage, QuotaLimits
from tests.store.conftest import ADDRESS, message


def _files(path: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(path) if e.is_file())


async def test_prepared_message_is_invisible_until_committed(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    sub = account.bus.subscribe(account.address, "INBOX")
    first = await inbox.prepare(NewMessage(message("one")))
    second = await inbox.prepare(NewMessage(message("two")))
    assert len(_files(account.root / "tmp")) == 2  # written and fsynced, in tmp/
    assert (await inbox.snapshot()).messages == ()
    assert _files(account.root / "new") == []
    assert (await account.quota()).messages_used == 0
    assert not sub.pending()
    infos = await inbox.commit([second, first])  # UIDs follow the order given
    assert [i.uid for i in infos] == [1, 2]
    assert _files(account.root / "tmp") == []
    assert len(_files(account.root / "new")) == 2
    assert b"Subject: two" in await (await inbox.open_message(1)).read()
    assert (await account.quota()).messages_used == 2
    added = [c for c in sub.drain()[0] if isinstance(c, MessagesAdded)]
    sub.close()
    assert [[i.uid for i in c.messages] for c in added] == [[1, 2]]


async def test_commit_over_quota_keeps_the_files_for_a_retry(store: MaildirMailstore) -> None:
    account = await store.open_account(ADDRESS, QuotaLimits(None, 1))
    inbox = await account.open_mailbox("INBOX")
    one = await inbox.prepare(NewMessage(message("one")))
    two = await inbox.prepare(NewMessage(message("two")))
    with pytest.raises(MailError) as err:
        await inbox.commit([one, two])  # all or nothing
    assert err.value.kind is MailErrorKind.NOQUOTA
    assert len(_files(account.root / "tmp")) == 2
    assert [i.uid for i in await inbox.commit([one])] == [1]
    with pytest.raises(MailError):
        await inbox.commit([two])
    inbox.discard([two])
    assert _files(account.root / "tmp") == []
    snap = await inbox.snapshot()
    assert [m.uid for m in snap.messages] == [1]
    assert snap.uid_next == 2  # the refused message took no UID


async def test_committed_or_discarded_cannot_be_committed_again(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    done = await inbox.prepare(NewMessage(message("done")))
    gone = await inbox.prepare(NewMessage(message("gone")))
    await inbox.commit([done])
    inbox.discard([gone, done])  # the committed one is left alone
    assert len(_files(account.root / "new")) == 1
    assert _files(account.root / "tmp") == []
    for prepared in (done, gone):
        with pytest.raises(MailError) as err:
            await inbox.commit([prepared])
        assert err.value.kind is MailErrorKind.NOTPOSSIBLE
    assert (await inbox.snapshot()).uid_next == 2


async def test_prepared_for_another_folder_is_refused(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    sent = await account.open_mailbox("Sent")
    prepared = await inbox.prepare(NewMessage(message("elsewhere")))
    with pytest.raises(MailError):
        await sent.commit([prepared])
    inbox.discard([prepared])
    assert _files(account.root / "tmp") == []


async def test_commits_of_prepared_messages_and_appends_share_uid_order(
    account: MaildirAccount,
) -> None:
    inbox = await account.open_mailbox("INBOX")
    prepared = [await inbox.prepare(NewMessage(message(f"p{n}"))) for n in range(5)]
    results = await asyncio.gather(
        inbox.commit(prepared[:2]),
        inbox.append([NewMessage(message("appended"))]),
        inbox.commit(prepared[2:]),
    )
    uids = sorted(i.uid for infos in results for i in infos)
    assert uids == [1, 2, 3, 4, 5, 6]
    assert [i.uid for i in results[0]] == sorted(i.uid for i in results[0])
    assert [i.uid for i in results[2]] == sorted(i.uid for i in results[2])


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_open_removes_files_a_dead_writer_left_in_tmp(tmp_path: Path) -> None:
    """A crash between prepare and commit leaves a file in tmp/ that was never acknowledged:
    the next open of the folder removes it; live writers' files and directories stay."""
    store = MaildirMailstore(tmp_path / "mail")
    account = await store.open_account(ADDRESS)
    root = account.root
    await store.close()
    host = filename._HOST
    dead = f"1700000000.M1P{_dead_pid()}Q7.{host}"
    alive = f"1700000000.M1P{os.getpid()}Q8.{host}"
    foreign_fresh = "1700000000.V801I5M1.otherhost"
    foreign_old = "1600000000.V801I6M1.otherhost"
    for name in (dead, alive, foreign_fresh, foreign_old):
        (root / "tmp" / name).write_bytes(b"Subject: x\n\nunfinished\n")
    os.utime(root / "tmp" / foreign_old, (0, 0))  # mtime is not what counts: ctime is
    (root / "tmp" / "deleted-folder").mkdir()
    store = MaildirMailstore(tmp_path / "mail")
    try:
        account = await store.open_account(ADDRESS)
        await account.open_mailbox("INBOX")
        left = sorted(os.listdir(root / "tmp"))
        assert left == sorted([alive, foreign_fresh, foreign_old, "deleted-folder"])
        assert (await (await account.open_mailbox("INBOX")).snapshot()).messages == ()
    finally:
        await store.close()


def test_sweep_removes_foreign_files_untouched_for_36_hours(tmp_path: Path) -> None:
    old = tmp_path / "1600000000.V801I6M1.otherhost"
    old.write_bytes(b"x")
    fresh = tmp_path / "1600000001.V801I6M1.otherhost"
    fresh.write_bytes(b"x")
    assert _fs.sweep_tmp(tmp_path) == 0
    # ctime cannot be set back, so the sweep is asked about a later "now" instead
    later = fresh.stat().st_ctime + _fs.STALE_TMP_SECONDS + 1
    assert _fs.sweep_tmp(tmp_path, now=later) == 2
    assert list(tmp_path.iterdir()) == []


async def test_a_cancelled_prepare_removes_the_file_it_was_writing(account: MaildirAccount) -> None:
    """The caller of ``prepare`` went away (its task was cancelled) while the write ran on a
    thread: nobody will commit or discard that file, so the store removes it itself."""
    inbox = await account.open_mailbox("INBOX")
    big = message("big") + b"z" * 20_000_000  # long enough to cancel while it is written
    task = asyncio.get_running_loop().create_task(inbox.prepare(NewMessage(big)))
    tmp = account.root / "tmp"
    for _ in range(2000):  # until the write has started
        if _files(tmp):
            break
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(500):
        if not _files(tmp):
            break
        await asyncio.sleep(0.01)
    assert _files(tmp) == []
    assert (await inbox.snapshot()).messages == ()
