"""The change feed sees writers other than this process (issue 2 acceptance).

Files dropped into ``new/`` by another program, flag renames by a mail reader, deletions, and
deliveries by another mailhub process must all reach a subscriber within one second.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from mailhub.store.changes import Change, FlagsChanged, MessagesAdded, MessagesExpunged
from mailhub.store.maildir import MaildirAccount
from mailhub.store.model import NewMessage
from tests.store.conftest import message
from tests.store.procs import Worker


async def _next_changes(sub: object, within: float) -> tuple[list[Change], float]:
    start = time.monotonic()
    assert await sub.wait(within)  # type: ignore[attr-defined]
    await asyncio.sleep(0.05)  # let a burst of events settle into one drain
    changes, _ = sub.drain()  # type: ignore[attr-defined]
    return changes, time.monotonic() - start


def _drop(maildir: Path, name: str, data: bytes) -> None:
    """What Postfix's virtual delivery or procmail does: write in tmp/, rename into new/."""
    tmp = maildir / "tmp" / name
    tmp.write_bytes(data)
    os.rename(tmp, maildir / "new" / name)


async def test_outside_program_drop_reaches_subscriber_within_a_second(
    account: MaildirAccount,
) -> None:
    inbox = await account.open_mailbox("INBOX")
    with account.bus.subscribe(account.address, "INBOX") as sub:
        _drop(account.root, "1700000000.P1.otherhost", message("from procmail"))
        changes, took = await _next_changes(sub, 1.0)
    assert took < 1.0
    added = [c for c in changes if isinstance(c, MessagesAdded)]
    assert len(added) == 1 and len(added[0].messages) == 1
    uid = added[0].messages[0].uid
    data = await (await inbox.open_message(uid)).read()
    assert b"Subject: from procmail\r\n" in data
    # Maildir readers move new/ mail to cur/.
    assert os.listdir(account.root / "new") == []


async def test_outside_flag_rename_and_delete_are_noticed(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    (info,) = await inbox.append([NewMessage(message("a"))])
    (name,) = os.listdir(account.root / "cur")
    with account.bus.subscribe(account.address, "INBOX") as sub:
        # mutt marks it read and flagged by renaming the file.
        os.rename(account.root / "cur" / name, account.root / "cur" / (name + "FS"))
        changes, _ = await _next_changes(sub, 1.0)
        (flags,) = [c for c in changes if isinstance(c, FlagsChanged)]
        assert flags.messages[0].flags == frozenset({"\\Seen", "\\Flagged"})
        assert flags.messages[0].modseq > info.modseq
        os.unlink(account.root / "cur" / (name + "FS"))
        changes, _ = await _next_changes(sub, 1.0)
    assert next(c for c in changes if isinstance(c, MessagesExpunged)).uids == (info.uid,)
    assert (await inbox.snapshot()).messages == ()


async def test_delivery_by_another_process_reaches_subscriber(
    account: MaildirAccount, store: object
) -> None:
    inbox = await account.open_mailbox("INBOX")
    worker = await asyncio.to_thread(Worker, account.store.root)
    try:
        with account.bus.subscribe(account.address, "INBOX") as sub:
            start = time.monotonic()
            uids = await asyncio.to_thread(
                worker.call,
                op="append",
                account=account.address,
                messages=["Subject: from mailhub deliver\n\nhi\n"],
            )
            changes, _ = await _next_changes(sub, 1.0)
            took = time.monotonic() - start
    finally:
        await asyncio.to_thread(worker.close)
    assert took < 1.5
    added = [m.uid for c in changes if isinstance(c, MessagesAdded) for m in c.messages]
    assert added == uids
    assert [m.uid for m in (await inbox.snapshot()).messages] == uids


async def test_rescan_after_restart_finds_outside_changes(tmp_path: Path) -> None:
    from mailhub.store.maildir import MaildirMailstore

    store = MaildirMailstore(tmp_path)
    account = await store.open_account("bob@example.org")
    await (await account.open_mailbox("INBOX")).append([NewMessage(message("kept"))])
    await store.close()
    # While mailhub is down, another program delivers and deletes.
    _drop(account.root, "1700000001.P2.otherhost", message("while down"))
    store = MaildirMailstore(tmp_path)
    try:
        inbox = await (await store.open_account("bob@example.org")).open_mailbox("INBOX")
        snap = await inbox.snapshot()
        assert [m.uid for m in snap.messages] == [1, 2]
    finally:
        await store.close()


async def test_closing_with_a_sync_pending_logs_no_error(tmp_path: Path, caplog: object) -> None:
    """Regression: a sync scheduled by a late watcher event ran after shutdown and logged
    "Executor shutdown has been called"."""
    import logging

    from mailhub.store.maildir import MaildirMailstore

    caplog.set_level(logging.ERROR)  # type: ignore[attr-defined]
    store = MaildirMailstore(tmp_path)
    account = await store.open_account("carol@example.org")
    inbox = await account.open_mailbox("INBOX")
    _drop(account.root, "1700000002.P3.otherhost", message("late"))
    for _ in range(200):  # wait for the event: then its sync is scheduled but has not run
        if inbox.dirty:
            break
        await asyncio.sleep(0.001)
    assert inbox.dirty and inbox._sync_task is None
    await store.close()
    await asyncio.sleep(0.1)
    assert inbox._sync_task is None, "a sync ran on a closed folder"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []  # type: ignore[attr-defined]


async def test_own_deliveries_start_no_background_sync(account: MaildirAccount) -> None:
    """Regression: the watcher reported a delivered file before the worker thread had put it
    in memory, so every delivery scheduled a sync that renamed it new/ -> cur/ and wrote the
    index again (a second rename, transaction and thread hop per message)."""
    box = await account.open_mailbox("INBOX")
    for n in range(20):
        await box.deliver([NewMessage(message(f"m{n}"))])
    await asyncio.sleep(0.2)  # longer than the watcher's 20 ms sync delay
    assert box._sync_task is None and box._scheduled is None
    assert len(os.listdir(box.core.path / "new")) == 20
