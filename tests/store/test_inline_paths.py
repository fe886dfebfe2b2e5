"""The read and flag paths that run on the event loop never wait for a lock, and the
watcher does not re-sync a folder after the server's own flag renames."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading

from mailhub.store.flags import FlagOp
from mailhub.store.maildir import MaildirAccount
from mailhub.store.maildir.cache_memo import MEMO
from mailhub.store.maildir.index import FILE_NAME
from mailhub.store.model import NewMessage

from .conftest import message


async def test_flag_store_renames_do_not_dirty_the_folder(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    infos = await inbox.append([NewMessage(message(f"m{i}")) for i in range(3)])
    await asyncio.sleep(0.1)
    inbox.dirty = False
    for info in infos:
        await inbox.store_flags([info.uid], FlagOp.ADD, frozenset({"\\Flagged"}))
    await asyncio.sleep(0.1)  # the watcher has delivered the rename events
    assert not inbox.dirty
    assert not inbox._pending


async def test_outside_rename_after_own_store_is_still_seen(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    (info,) = await inbox.append([NewMessage(message("x"))])
    await inbox.store_flags([info.uid], FlagOp.ADD, frozenset({"\\Flagged"}))
    await asyncio.sleep(0.1)
    name = inbox.core.names[info.uid]
    os.rename(inbox.core.path / name, inbox.core.path / (name + "S"))  # mutt marks it read
    for _ in range(50):
        await asyncio.sleep(0.05)
        snap = await inbox.snapshot()
        if "\\Seen" in snap.messages[0].flags:
            break
    assert snap.messages[0].flags == frozenset({"\\Flagged", "\\Seen"})


async def test_store_waits_for_another_writer_off_the_event_loop(account: MaildirAccount) -> None:
    """Another process holding the index's write lock: the inline attempt gives up at once
    (the event loop keeps running) and the store completes once the lock is released."""
    inbox = await account.open_mailbox("INBOX")
    (info,) = await inbox.append([NewMessage(message("x"))])
    other = sqlite3.connect(inbox.core.path / FILE_NAME, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    assert inbox.core.try_store_flags([info.uid], FlagOp.ADD, frozenset({"\\Seen"}), None) is None
    task = asyncio.ensure_future(inbox.store_flags([info.uid], FlagOp.ADD, frozenset({"\\Seen"})))
    ticks = 0
    while ticks < 5:  # the loop is free while the store waits on its worker thread
        await asyncio.sleep(0.02)
        ticks += 1
    assert not task.done()
    other.execute("COMMIT")
    other.close()
    changed, failed = await asyncio.wait_for(task, 30)
    assert [i.uid for i in changed] == [info.uid] and not failed
    assert "\\Seen" in (await inbox.snapshot()).messages[0].flags
    # the busy timeout is back to its normal patience after the attempt
    assert inbox.core.db is not None
    assert inbox.core.db.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 60000


async def test_cache_lookup_with_the_folder_lock_taken(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    (info,) = await inbox.append([NewMessage(message("x"))])
    await inbox.set_cached_many("k", {info.uid: b"v"})
    assert await inbox.get_cached_many([info.uid], "k") == {info.uid: b"v"}
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # a long write on a worker thread
        with inbox.core.lock:
            held.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    held.wait(10)
    try:
        # memoised rows need no lock at all ...
        assert await asyncio.wait_for(inbox.get_cached_many([info.uid], "k"), 1) == {info.uid: b"v"}
        MEMO.clear()  # ... while the index's rows wait for it, off the event loop
        task = asyncio.ensure_future(inbox.get_cached_many([info.uid], "k"))
        await asyncio.sleep(0.05)
        assert not task.done()  # not answered inline, and the loop was not blocked
    finally:
        release.set()
    assert await asyncio.wait_for(task, 10) == {info.uid: b"v"}
    worker.join()


async def test_cache_fill_waits_for_another_writer_off_the_event_loop(
    account: MaildirAccount,
) -> None:
    inbox = await account.open_mailbox("INBOX")
    (info,) = await inbox.append([NewMessage(message("x"))])
    other = sqlite3.connect(inbox.core.path / FILE_NAME, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    assert not inbox.core.try_set_cached_many("k", {info.uid: b"v"})
    task = asyncio.ensure_future(inbox.set_cached_many("k", {info.uid: b"v"}))
    await asyncio.sleep(0.1)
    assert not task.done()  # waiting on a worker thread, the loop runs on
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(task, 30)
    assert await inbox.get_cached_many([info.uid], "k") == {info.uid: b"v"}


async def test_a_store_that_changes_nothing_needs_no_write_lock(account: MaildirAccount) -> None:
    """``+FLAGS \\Seen`` on read mail (or ``-FLAGS`` of an absent flag) is answered from
    memory: it goes through at once even while another process holds the index's write
    lock, and the modseq does not move."""
    inbox = await account.open_mailbox("INBOX")
    (info,) = await inbox.append([NewMessage(message("x"), flags=frozenset({"\\Seen"}))])
    before = inbox.core.highest_modseq
    other = sqlite3.connect(inbox.core.path / FILE_NAME, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        for op, flags in ((FlagOp.ADD, {"\\Seen"}), (FlagOp.REMOVE, {"\\Flagged"})):
            got = await asyncio.wait_for(inbox.store_flags([info.uid], op, frozenset(flags)), 2)
            assert got == ([], [])
        assert inbox.core.highest_modseq == before
        # a real change still waits for the lock, and UNCHANGEDSINCE is always decided there
        assert (
            inbox.core.try_store_flags([info.uid], FlagOp.ADD, frozenset({"\\Seen"}), before)
            is None
        )
    finally:
        other.execute("COMMIT")
        other.close()
    changed, failed = await inbox.store_flags(
        [info.uid], FlagOp.ADD, frozenset({"\\Seen"}), unchanged_since=before - 1
    )
    assert not changed and failed == [info.uid]


async def test_status_counts_follow_flag_changes(account: MaildirAccount) -> None:
    """STATUS comes from counters kept up to date through flag stores, appends and
    expunges; they always equal a full count of the folder."""
    inbox = await account.open_mailbox("INBOX")
    infos = await inbox.append(
        [
            NewMessage(message(f"m{i}"), flags=frozenset({"\\Seen"} if i % 2 else ()))
            for i in range(8)
        ]
    )

    async def check() -> None:
        st = await inbox.status()
        msgs = (await inbox.snapshot()).messages
        assert st.messages == len(msgs)
        assert st.unseen == sum("\\Seen" not in m.flags for m in msgs)
        assert st.deleted == sum("\\Deleted" in m.flags for m in msgs)
        assert st.size == sum(m.size for m in msgs)

    await check()
    for info in infos[:5]:
        await inbox.store_flags([info.uid], FlagOp.ADD, frozenset({"\\Seen", "\\Deleted"}))
        await check()
    await inbox.store_flags([infos[0].uid], FlagOp.REPLACE, frozenset())
    await check()
    await inbox.store_flags([i.uid for i in infos], FlagOp.REMOVE, frozenset({"\\Seen"}))
    await check()
    await inbox.expunge([infos[1].uid, infos[2].uid])
    await check()
    await inbox.append([NewMessage(message("late"))])
    await check()
