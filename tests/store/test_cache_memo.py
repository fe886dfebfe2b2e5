"""The in-memory memo of the index's cache rows: bounded, least recently used out, and never
answering for a UID with another message's value."""

from __future__ import annotations

from mailhub.store.maildir import MaildirAccount
from mailhub.store.maildir.cache_memo import MEMO, CacheMemo, new_scope
from mailhub.store.maildir.index import IndexDB
from mailhub.store.model import NewMessage
from tests.store.conftest import message


def test_memo_returns_what_was_put_and_lists_the_rest_in_order() -> None:
    memo = CacheMemo(10_000)
    memo.put_many(1, "k", [(5, b"five"), (7, b"seven")])
    found, missing = memo.get_many(1, [9, 5, 8, 7], "k")
    assert found == {5: b"five", 7: b"seven"}
    assert missing == [9, 8]


def test_scopes_and_keys_are_separate() -> None:
    memo = CacheMemo(10_000)
    a, b = new_scope(), new_scope()
    assert a != b
    memo.put_many(a, "k", [(1, b"from a")])
    assert memo.get_many(b, [1], "k") == ({}, [1])
    assert memo.get_many(a, [1], "other") == ({}, [1])
    assert memo.get_many(a, [1], "k")[0] == {1: b"from a"}


def test_budget_holds_and_least_recently_used_go_first() -> None:
    value = b"x" * 850  # about 1,000 bytes with the bookkeeping
    memo = CacheMemo(10_000)
    memo.put_many(1, "k", [(uid, value) for uid in range(1, 10)])
    memo.get_many(1, [1], "k")  # 1 is now the most recently used
    memo.put_many(1, "k", [(uid, value) for uid in range(10, 14)])
    assert memo.used <= memo.budget
    found, _ = memo.get_many(1, range(1, 14), "k")
    assert 1 in found and 13 in found
    assert 2 not in found  # the oldest untouched entry went first
    assert memo.used == sum(len(v) + 150 for v in found.values())


def test_replacing_a_value_is_counted_once() -> None:
    memo = CacheMemo(10_000)
    memo.put_many(1, "k", [(1, b"a" * 100)])
    memo.put_many(1, "k", [(1, b"b" * 200)])
    assert len(memo) == 1
    assert memo.used == 200 + 150
    assert memo.get_many(1, [1], "k")[0] == {1: b"b" * 200}


def test_a_value_over_the_whole_budget_is_not_kept() -> None:
    memo = CacheMemo(1_000)
    memo.put_many(1, "k", [(1, b"z" * 2_000), (2, b"small")])
    assert memo.get_many(1, [1, 2], "k") == ({2: b"small"}, [1])


async def test_folder_answers_from_memo_and_index_alike(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    await inbox.append([NewMessage(message("one")), NewMessage(message("two"))])
    await inbox.set_cached_many("env", {1: b"(one)", 2: b"(two)"})
    scope = inbox.core.memo_scope
    assert MEMO.get_many(scope, [1, 2], "env")[0] == {1: b"(one)", 2: b"(two)"}
    MEMO.clear()  # as after eviction: the index still has the rows
    assert await inbox.get_cached_many([1, 2, 3], "env") == {1: b"(one)", 2: b"(two)"}
    assert MEMO.get_many(scope, [1, 2], "env")[0] == {1: b"(one)", 2: b"(two)"}


async def test_new_uidvalidity_never_answers_with_old_values(account: MaildirAccount) -> None:
    """Another process rebuilt the index (new UIDVALIDITY, UID 1 now a different message):
    the value the memo holds for the old UID 1 must not be served."""
    inbox = await account.open_mailbox("INBOX")
    await inbox.append([NewMessage(message("old"))])
    await inbox.set_cached_many("env", {1: b"(old)"})
    old_scope = inbox.core.memo_scope
    other = IndexDB(inbox.core.path)  # the other process's connection
    with other.write():
        other.conn.execute("DELETE FROM cache")
        uidvalidity = other.meta()["uidvalidity"] + 1
        other.set_meta(uidvalidity=uidvalidity)
        other.put_cache([(1, "env", b"(new)")])
    other.close()
    await inbox.sync()
    assert (await inbox.snapshot()).uidvalidity == uidvalidity
    assert inbox.core.memo_scope != old_scope
    assert await inbox.get_cached_many([1], "env") == {1: b"(new)"}


async def test_expunged_message_leaves_the_memo(account: MaildirAccount) -> None:
    inbox = await account.open_mailbox("INBOX")
    await inbox.append([NewMessage(message("one")), NewMessage(message("two"))])
    await inbox.set_cached_many("env", {1: b"(one)", 2: b"(two)"})
    await inbox.set_cached_many("body", {2: b"(body)"})
    used = MEMO.used
    await inbox.expunge([2])
    assert MEMO.get_many(inbox.core.memo_scope, [1, 2], "env") == ({1: b"(one)"}, [2])
    assert MEMO.get_many(inbox.core.memo_scope, [2], "body") == ({}, [2])
    assert MEMO.used == used - (len(b"(two)") + 150) - (len(b"(body)") + 150)
    assert await inbox.get_cached_many([2], "env") == {}
