"""Property test: two processes writing one Maildir keep it consistent (issue 2 acceptance).

Random sequences of append/store/expunge/copy/move run through two store handles in two
processes. After every step both handles must report the same folder (so sequence numbers
agree), new UIDs must be above every UID the folder ever had, and at the end the flags must be
what an index rebuilt from the Maildir files alone reports.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhub.store.maildir import MaildirMailstore, account_dir
from mailhub.store.maildir.index import FILE_NAME as INDEX_FILE
from tests.store.procs import Worker

FOLDERS = ("INBOX", "Archive")
FLAGS = ("\\Seen", "\\Flagged", "\\Answered", "\\Deleted", "$Label1", "Work")
_accounts = itertools.count()

op_strategy = st.one_of(
    st.tuples(
        st.just("append"),
        st.integers(0, 1),
        st.sampled_from(FOLDERS),
        st.integers(1, 3),
        st.sets(st.sampled_from(FLAGS), max_size=2),
    ),
    st.tuples(
        st.just("store"),
        st.integers(0, 1),
        st.sampled_from(FOLDERS),
        st.lists(st.integers(0, 20), max_size=4),
        st.sampled_from(["add", "remove", "replace"]),
        st.sets(st.sampled_from(FLAGS), max_size=3),
    ),
    st.tuples(
        st.just("expunge"),
        st.integers(0, 1),
        st.sampled_from(FOLDERS),
        st.lists(st.integers(0, 20), max_size=3),
    ),
    st.tuples(
        st.sampled_from(["copy", "move"]),
        st.integers(0, 1),
        st.sampled_from(FOLDERS),
        st.lists(st.integers(0, 20), max_size=3),
    ),
)


@pytest.fixture(scope="module")
def mail_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("two-procs") / "mail"


@pytest.fixture(scope="module")
def workers(mail_root: Path) -> Iterator[tuple[Worker, Worker]]:
    pair = (Worker(mail_root), Worker(mail_root))
    yield pair
    for w in pair:
        w.close()


def _pick(messages: list[list[Any]], picks: list[int]) -> list[int]:
    if not messages:
        return []
    return sorted({messages[i % len(messages)][0] for i in picks})


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(op_strategy, min_size=1, max_size=14))
def test_two_processes_stay_consistent(
    workers: tuple[Worker, Worker], mail_root: Path, ops: list[tuple[Any, ...]]
) -> None:
    address = f"user{next(_accounts)}@example.org"
    highest: dict[str, int] = dict.fromkeys(FOLDERS, 0)
    serial = itertools.count()

    def view(worker: Worker, folder: str) -> dict[str, Any]:
        return worker.call(op="snapshot", account=address, folder=folder)  # type: ignore[no-any-return]

    def note_new(folder: str, uids: list[int]) -> None:
        for uid in uids:
            assert uid > highest[folder], f"UID {uid} in {folder} not above {highest[folder]}"
            highest[folder] = uid

    for op in ops:
        kind, who, folder = op[0], workers[op[1]], op[2]
        current = view(who, folder)["messages"]
        if kind == "append":
            bodies = [f"Subject: m{next(serial)}\n\nbody\n" for _ in range(op[3])]
            uids = who.call(
                op="append", account=address, folder=folder, messages=bodies, flags=sorted(op[4])
            )
            assert uids == sorted(uids)
            note_new(folder, uids)
        elif kind == "store":
            who.call(
                op="store",
                account=address,
                folder=folder,
                uids=_pick(current, op[3]),
                how=op[4],
                flags=sorted(op[5]),
            )
        elif kind == "expunge":
            who.call(op="expunge", account=address, folder=folder, uids=_pick(current, op[3]))
        else:
            dest = next(f for f in FOLDERS if f != folder)
            mapping = who.call(
                op=kind, account=address, folder=folder, uids=_pick(current, op[3]), dest=dest
            )
            note_new(dest, sorted(mapping.values()))
        for name in FOLDERS:
            first, second = view(workers[0], name), view(workers[1], name)
            assert first == second, f"the two processes disagree about {name}"
            uids = [m[0] for m in first["messages"]]
            assert uids == sorted(set(uids))
            assert first["uid_next"] > max(uids, default=0)

    # Rebuild every folder's index from the Maildir files alone, in a copy.
    live_root = account_dir(mail_root, address)
    copy_root = mail_root.parent / f"rebuilt-{address}"
    shutil.copytree(live_root, copy_root, ignore=shutil.ignore_patterns(INDEX_FILE + "*"))
    rebuilt = asyncio.run(_rebuilt_flags(copy_root, address))
    for name in FOLDERS:
        live = {m[0]: frozenset(m[1]) for m in view(workers[0], name)["messages"]}
        assert rebuilt[name] == live, (
            f"rebuilt index of {name} disagrees with the live one; files: "
            f"{sorted(p.name for p in (copy_root.parent / ('store-' + copy_root.name)).rglob('*'))}"
        )


async def _rebuilt_flags(root: Path, address: str) -> dict[str, dict[int, frozenset[str]]]:
    domain_dir = account_dir(root.parent / "x", address)
    store_root = root.parent / f"store-{root.name}"
    target = account_dir(store_root, address)
    target.parent.mkdir(parents=True)
    shutil.move(str(root), str(target))
    assert domain_dir.name == target.name
    store = MaildirMailstore(store_root)
    try:
        account = await store.open_account(address)
        result = {}
        for name in FOLDERS:
            snap = await (await account.open_mailbox(name)).snapshot()
            result[name] = {m.uid: m.flags for m in snap.messages}
        return result
    finally:
        await store.close()
