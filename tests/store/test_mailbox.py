"""The store API through the Maildir backend: folders, messages, flags, quota, change records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailhub.errors import MailError, MailErrorKind
from mailhub.store.changes import (
    FlagsChanged,
    MailboxCreated,
    MailboxDeleted,
    MailboxRenamed,
    MessagesAdded,
    MessagesExpunged,
)
from mailhub.store.flags import FlagOp
from mailhub.store.maildir import MaildirAccount, MaildirMailstore
from mailhub.store.model import NewMessage, QuotaLimits, SpecialUse
from tests.store.conftest import ADDRESS, message


async def test_new_account_has_special_use_folders(account: MaildirAccount) -> None:
    boxes = {b.name: b for b in await account.list_mailboxes()}
    assert next(iter(boxes)) == "INBOX"
    for name, role in [
        ("Drafts", SpecialUse.DRAFTS),
        ("Sent", SpecialUse.SENT),
        ("Trash", SpecialUse.TRASH),
        ("Junk", SpecialUse.JUNK),
        ("Archive", SpecialUse.ARCHIVE),
    ]:
        assert boxes[name].special_use is role
        assert await account.special_use_folder(role) == name
    assert (account.root / ".Sent" / "cur").is_dir()


async def test_append_returns_increasing_uids_and_serves_crlf(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    infos = await inbox.append(
        [NewMessage(message("one")), NewMessage(message("two", lf=False), frozenset({"\\Seen"}))]
    )
    assert [i.uid for i in infos] == [1, 2]
    data = await (await inbox.open_message(1)).read()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert len(data) == infos[0].size
    assert infos[1].flags == frozenset({"\\Seen"})
    # The file itself holds LF line endings, as Maildir readers expect.
    files = os.listdir(account.root / "cur")
    assert all(b"\r\n" not in (account.root / "cur" / f).read_bytes() for f in files)
    snap = await inbox.snapshot()
    assert [m.uid for m in snap.messages] == [1, 2]
    assert snap.uid_next == 3


async def test_ranges_and_chunks_of_the_crlf_form(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    body = "".join(f"line {i}\n" for i in range(40000))  # ~360 KB: read off the event loop
    (info,) = await inbox.append([NewMessage(message("big", body))])
    source = await inbox.open_message(info.uid)
    whole = await source.read()
    assert len(whole) == info.size == source.size
    assert await source.read_range(100, 50) == whole[100:150]
    assert await source.read_range(len(whole) - 10) == whole[-10:]
    assert b"".join([c async for c in source.chunks(4097)]) == whole


async def test_flags_keywords_and_modseq(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    await inbox.append([NewMessage(message("a")), NewMessage(message("b"))])
    before = (await inbox.snapshot()).highest_modseq
    changed, failed = await inbox.store_flags([1, 2], FlagOp.ADD, frozenset({"\\seen", "Work"}))
    assert failed == []
    assert [c.flags for c in changed] == [frozenset({"\\Seen", "Work"})] * 2
    assert all(c.modseq > before for c in changed)
    assert "Work" in await inbox.keywords()
    # Unchanged flags: no new MODSEQ, nothing returned.
    again, _ = await inbox.store_flags([1], FlagOp.ADD, frozenset({"\\Seen"}))
    assert again == []
    # UNCHANGEDSINCE refuses messages modified after the given MODSEQ.
    _, refused = await inbox.store_flags([1], FlagOp.REMOVE, frozenset({"Work"}), before)
    assert refused == [1]
    since = await inbox.changes_since(before)
    assert {m.uid for m in since.changed} == {1, 2}
    # Flags live in the file names (the keyword as a Dovecot letter).
    names = sorted(os.listdir(account.root / "cur"))
    assert all(n.endswith(":2,Sa") for n in names)
    assert (account.root / "dovecot-keywords").read_text() == "0 Work\n"


async def test_expunge_copy_move(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    await inbox.append([NewMessage(message(f"m{i}"), frozenset({"\\Flagged"})) for i in range(4)])
    mapping = await inbox.copy([1, 2], "Archive")
    assert mapping == {1: 1, 2: 2}
    moved = await inbox.move([3], "Trash")
    assert moved == {3: 1}
    assert await inbox.expunge([4, 99]) == [4]
    assert [m.uid for m in (await inbox.snapshot()).messages] == [1, 2]
    archive = await account.open_mailbox("Archive")
    assert all(m.flags == frozenset({"\\Flagged"}) for m in (await archive.snapshot()).messages)
    trash = await account.open_mailbox("Trash")
    assert b"Subject: m2" in await (await trash.open_message(1)).read()
    since = await inbox.changes_since(1)
    assert set(since.vanished) == {3, 4}
    with pytest.raises(MailError) as info:
        await inbox.open_message(4)
    assert info.value.kind is MailErrorKind.EXPUNGED
    with pytest.raises(MailError) as info:
        await inbox.copy([1], "Nope")
    assert info.value.kind is MailErrorKind.NOTFOUND


async def test_change_records_reach_subscribers(account: MaildirAccount) -> None:
    sub = account.bus.subscribe(account.address)
    inbox = await account.open_mailbox("INBOX")
    await inbox.append([NewMessage(message("a"))])
    await inbox.store_flags([1], FlagOp.ADD, frozenset({"\\Seen"}))
    await inbox.move([1], "Archive")
    await account.create_mailbox("Projects")
    await account.rename_mailbox("Projects", "Work/Projects")
    await account.delete_mailbox("Work/Projects")
    changes, overflowed = sub.drain()
    assert not overflowed
    kinds = [type(c) for c in changes]
    assert kinds == [
        MessagesAdded,
        FlagsChanged,
        MessagesAdded,
        MessagesExpunged,
        MailboxCreated,
        MailboxRenamed,
        MailboxDeleted,
    ]
    assert changes[2].mailbox == "Archive"
    # Regression: a watcher sync racing a MOVE published the expunge first, then an empty one.
    assert all(c.uids for c in changes if isinstance(c, MessagesExpunged))


async def test_folder_tree_operations(account: MaildirAccount) -> None:
    await account.create_mailbox("Entwürfe/2024")
    assert (account.root / ".Entw&APw-rfe.2024" / "cur").is_dir()
    with pytest.raises(MailError) as info:
        await account.create_mailbox("Entwürfe/2024")
    assert info.value.kind is MailErrorKind.EXISTS
    with pytest.raises(MailError) as info:
        await account.create_mailbox("../escape")
    assert info.value.kind is MailErrorKind.BADNAME
    with pytest.raises(MailError) as info:
        await account.delete_mailbox("INBOX")
    assert info.value.kind is MailErrorKind.NOTPOSSIBLE
    box = await account.open_mailbox("Entwürfe/2024")
    await box.append([NewMessage(message("kept"))])
    await account.rename_mailbox("Entwürfe", "Drafts2")  # renames children with it
    names = [b.name for b in await account.list_mailboxes()]
    assert "Drafts2/2024" in names and "Entwürfe/2024" not in names
    renamed = await account.open_mailbox("Drafts2/2024")
    assert len((await renamed.snapshot()).messages) == 1
    await account.rename_mailbox("Sent", "Sent Mail")
    assert await account.special_use_folder(SpecialUse.SENT) == "Sent Mail"
    await account.subscribe("Sent Mail")
    await account.subscribe("Drafts2/2024")
    await account.subscribe("Drafts2/2024", False)
    assert await account.subscriptions() == ["INBOX", "Sent Mail"]


async def test_rename_inbox_moves_messages(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    await inbox.append([NewMessage(message("a")), NewMessage(message("b"))])
    await account.rename_mailbox("INBOX", "Old Inbox")
    assert (await inbox.snapshot()).messages == ()
    old = await account.open_mailbox("Old Inbox")
    assert len((await old.snapshot()).messages) == 2


async def test_quota_is_enforced_with_a_clear_error(store: MaildirMailstore) -> None:
    account = await store.open_account(ADDRESS, QuotaLimits(max_bytes=None, max_messages=2))
    inbox = await account.open_mailbox("INBOX")
    await inbox.append([NewMessage(message("a")), NewMessage(message("b"))])
    with pytest.raises(MailError) as info:
        await inbox.append([NewMessage(message("c"))])
    assert info.value.kind is MailErrorKind.NOQUOTA
    assert ADDRESS in info.value.message
    await inbox.expunge([1])
    await inbox.append([NewMessage(message("c"))])
    usage = await account.quota()
    assert usage.messages_used == 2
    assert (account.root / "maildirsize").read_text().startswith("2C\n")
    account.set_quota_limits(QuotaLimits(max_bytes=10, max_messages=None))
    with pytest.raises(MailError):
        await inbox.append([NewMessage(message("d"))])


async def test_recent_retrieved_and_cache(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    await inbox.append([NewMessage(message("a")), NewMessage(message("b"))])
    assert await inbox.claim_recent() == 1
    await inbox.append([NewMessage(message("c"))])
    assert await inbox.claim_recent() == 3  # only the message added since is recent
    await inbox.mark_retrieved([1, 3])
    assert await inbox.retrieved_uids() == frozenset({1, 3})
    await inbox.set_cached(2, "envelope", b"(NIL)")
    assert await inbox.get_cached(2, "envelope") == b"(NIL)"
    await inbox.expunge([2])
    assert await inbox.get_cached(2, "envelope") is None
    await inbox.set_cached_many("envelope", {1: b"(one)", 3: b"(three)", 2: b"(gone)"})
    assert await inbox.get_cached_many([1, 2, 3, 4], "envelope") == {1: b"(one)", 3: b"(three)"}
    assert await inbox.get_cached_many(range(1, 2000), "other") == {}


async def test_state_survives_restart(tmp_path: Path) -> None:
    store = MaildirMailstore(tmp_path)
    account = await store.open_account(ADDRESS)
    inbox = await account.open_mailbox("INBOX")
    await inbox.append([NewMessage(message("a"), frozenset({"Work", "\\Answered"}))])
    before = await inbox.snapshot()
    await store.close()
    store = MaildirMailstore(tmp_path)
    try:
        inbox = await (await store.open_account(ADDRESS)).open_mailbox("inbox")
        assert await inbox.snapshot() == before
    finally:
        await store.close()


async def test_concurrent_first_opens_share_one_account_and_folder(
    store: MaildirMailstore,
) -> None:
    """Regression: ten deliveries racing to open a new account made all but one fail."""
    import asyncio

    accounts = await asyncio.gather(*(store.open_account("new@example.org") for _ in range(10)))
    assert all(a is accounts[0] for a in accounts)
    boxes = await asyncio.gather(*(accounts[0].open_mailbox("Sent") for _ in range(10)))
    assert all(b is boxes[0] for b in boxes)
    names = [b.name for b in await accounts[0].list_mailboxes()]
    assert names == ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
