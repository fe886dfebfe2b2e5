"""Rebuilding a folder's index from the Maildir files alone (a lost index, a dropped Maildir).

The rebuild has its own fast path (``FolderSync._index_all_files``: names parsed in one pass,
everything in columns); these tests pin it to what the general path (``_reconcile``) does and
to what the files say, and show that a rebuild killed at any moment leaves a store that
reopens.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhub.store.maildir import MaildirMailstore, _fs, filename
from mailhub.store.maildir.folder import FolderCore
from mailhub.store.maildir.index import FILE_NAME as INDEX_FILE
from mailhub.store.model import MessageInfo, NewMessage
from tests.store.conftest import ADDRESS, message

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------- names


_name_parts = st.one_of(
    st.just(",S=12"),
    st.just(",W=14"),
    st.just(",U=7"),
    st.just(",S=1,W=2"),
    st.just(",U=3,S=4,W=5"),
    st.just(",X=abc"),
    st.just(",S=١٢"),  # Unicode digits: not a size
    st.just(",S="),
    st.just(":2,FS"),
    st.just(":2,"),
    st.just(":1,x"),
    st.just(":"),
    st.just("\n"),
    st.text(alphabet=",:=SWU0123456789.x\n", max_size=8),
)
_names = st.lists(
    st.builds(
        lambda head, parts: head + "".join(parts),
        st.text(max_size=6),
        st.lists(_name_parts, max_size=5),
    ),
    max_size=30,
)


@given(st.one_of(_names, st.lists(st.text(), max_size=10)))
def test_parse_many_is_parse_for_every_name(names: list[str]) -> None:
    many = filename.parse_many(names)
    one_by_one = [filename.parse(name) for name in names]
    assert many.bases == [p.base for p in one_by_one]
    assert many.uids == [p.uid for p in one_by_one]
    assert many.sizes == [p.size for p in one_by_one]
    assert many.crlf_sizes == [p.crlf_size for p in one_by_one]
    assert many.letters == [p.letters for p in one_by_one]


def test_fields_in_any_order_and_unusual_ones() -> None:
    many = filename.parse_many(
        ["1.M1P1.h,W=9,S=8:2,S", "2.M2P2.h,S=8,W=9,U=4:2,", "3.h,S=8,X=y,W=9", "4.h,S=x:2,T"]
    )
    assert many.uids == [None, 4, None, None]
    assert many.sizes == [8, 8, 8, None]
    assert many.crlf_sizes == [9, 9, 9, None]
    assert many.letters == ["S", "", "", "T"]


def test_a_size_in_other_digits_is_no_size() -> None:
    """Regression: ``S=²`` passed ``str.isdigit`` and then made ``int()`` raise, so one such
    file name (from any program) broke every scan of its folder."""
    assert filename.parse("1.M1P1.h,S=²,W=٣:2,S") == filename.ParsedName(
        "1.M1P1.h,S=²,W=٣", None, None, None, "S"
    )
    assert filename.parse_many(["1.h,S=²:2,", "2.h,S=5:2,"]).sizes == [None, 5]


# ------------------------------------------------------------------------ helpers


def _drop(path: Path, data: bytes, mtime: float) -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def _forget_index(maildir: Path) -> None:
    for name in os.listdir(maildir):
        if name.startswith(INDEX_FILE):
            os.unlink(maildir / name)


def _open_core(maildir: Path) -> FolderCore:
    core = FolderCore(maildir, "INBOX")
    core.open()
    return core


def _view(infos: tuple[MessageInfo, ...]) -> list[tuple[int, frozenset[str], int, float]]:
    return [(m.uid, m.flags, m.size, m.internal_date) for m in infos]


# ----------------------------------------------------------------------- rebuilds


async def test_rebuild_keeps_uids_flags_sizes_and_dates(tmp_path: Path) -> None:
    store = MaildirMailstore(tmp_path)
    try:
        inbox = await (await store.open_account(ADDRESS)).open_mailbox("INBOX")
        await inbox.append(
            [
                NewMessage(message(f"m{i}"), frozenset(flags), 1_700_000_000.0 + i * 3600)
                for i, flags in enumerate(
                    [{"\\Seen"}, {"Work", "\\Flagged"}, set(), {"$Label1"}, {"\\Answered"}]
                )
            ]
        )
        await inbox.expunge([2])
        await inbox.deliver([NewMessage(message("delivered"))])  # stays in new/ until a sync
        before = await inbox.snapshot()
        maildir = inbox.core.path
    finally:
        await store.close()
    _forget_index(maildir)
    # A message dropped meanwhile by another program, named to sort before all others.
    _drop(maildir / "cur" / "0000000001.outside.host:2,S", message("outside"), 1_600_000_000.0)

    core = _open_core(maildir)
    try:
        after = core.snapshot()
        kept = [m for m in after.messages if m.uid in {b.uid for b in before.messages}]
        assert _view(tuple(kept)) == _view(before.messages)
        (outside,) = [m for m in after.messages if m not in kept]
        assert outside.uid == max(m.uid for m in before.messages) + 1
        assert (outside.flags, outside.internal_date) == (frozenset({"\\Seen"}), 1_600_000_000.0)
        assert after.uid_next == outside.uid + 1
        assert os.listdir(maildir / "new") == []
    finally:
        core.close()
    # The index written by the rebuild says the same as the memory it filled.
    core = _open_core(maildir)
    try:
        assert core.snapshot() == after
    finally:
        core.close()


def test_rebuild_of_a_dropped_maildir(tmp_path: Path) -> None:
    """Dovecot's names (S=, W=), names with neither (procmail, Postfix), files in new/."""
    maildir = tmp_path / "box"
    _fs.make_maildir(maildir)
    lf = b"Subject: x\n\nline\nline\n"
    crlf = lf.replace(b"\n", b"\r\n")
    _drop(maildir / "cur" / f"1700000003.M3P1.h,S={len(lf)},W={len(crlf)}:2,RS", lf, 1e9 + 3)
    _drop(maildir / "cur" / "1700000001.M1P1.h:2,F", crlf, 1e9 + 1)  # sizes from the file
    _drop(maildir / "new" / "1700000002.M2P1.h", lf, 1e9 + 2)
    _drop(maildir / "cur" / "1700000004.M4P1.h:2,T", lf, 1e9 + 4)
    _drop(maildir / "new" / "1700000004.M4P1.h", lf, 1e9 + 5)  # same base as in cur/: cur wins
    _drop(maildir / "cur" / ".hidden", lf, 1e9)  # dot files are not messages

    core = _open_core(maildir)
    try:
        snap = core.snapshot()
        assert _view(snap.messages) == [
            (1, frozenset({"\\Flagged"}), len(crlf), 1e9 + 1),
            (2, frozenset(), len(crlf), 1e9 + 2),
            (3, frozenset({"\\Answered", "\\Seen"}), len(crlf), 1e9 + 3),
            (4, frozenset({"\\Deleted"}), len(crlf), 1e9 + 4),
        ]
        assert snap.uid_next == 5
        assert sorted(os.listdir(maildir / "new")) == ["1700000004.M4P1.h"]
        assert core.names[2] == "cur/1700000002.M2P1.h:2,"
        size = core._db().conn.execute("SELECT size FROM messages WHERE uid = 1").fetchone()[0]
        assert size == len(crlf)  # the file's own size when the name has no S=
    finally:
        core.close()


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", ",S=20,W=22", ",U=5,S=20,W=22", ",U=40,S=20,W=22", ",W=22"]),
            st.sampled_from([":2,", ":2,S", ":2,FT", "", ":2,a"]),
            st.sampled_from(["cur", "new"]),
        ),
        max_size=12,
    )
)
def test_rebuild_agrees_with_adopting_files_into_a_known_folder(
    tmp_path_factory: pytest.TempPathFactory, files: list[tuple[str, str, str]]
) -> None:
    """The rebuild path and the general one (files appearing in a folder whose index already
    has messages) give each file the same UID, flags, sizes and date."""
    lf = b"Subject: y\n\n0123456789\n"  # 20 bytes, 22 with CRLF

    def make(root: Path) -> None:
        _fs.make_maildir(root)
        (root / "dovecot-keywords").write_text("0 Work\n")
        for i, (fields, info, sub) in enumerate(files):
            name = f"17000000{i:02}.M{i}P9.h{fields}" + (info if sub == "cur" else "")
            _drop(root / sub / name, lf, 1e9 + i)

    def by_base(core: FolderCore) -> dict[str, tuple[int, frozenset[str], int, float]]:
        return {
            core.names[m.uid][4:].partition(":")[0]: (m.uid, m.flags, m.size, m.internal_date)
            for m in core.snapshot().messages
        }

    rebuilt_dir = tmp_path_factory.mktemp("rebuilt")
    make(rebuilt_dir)
    rebuilt = _open_core(rebuilt_dir)
    general_dir = tmp_path_factory.mktemp("general")
    _fs.make_maildir(general_dir)
    _drop(general_dir / "cur" / "0.first:2,", lf, 1.0)
    general = _open_core(general_dir)  # UID 1: the index is not empty any more
    make(general_dir)
    general.refresh(full=True)
    try:
        got, expected = by_base(rebuilt), by_base(general)
        assert expected.pop("0.first")[0] == 1
        # New UIDs start above those the names carry (the same in both), else at 1 or 2.
        offset = 0 if any(",U=" in f for f, _, _ in files) else 1
        assert got == {b: (v[0] - offset, *v[1:]) for b, v in expected.items()}
        assert rebuilt.snapshot().uid_next == general.snapshot().uid_next - offset
    finally:
        rebuilt.close()
        general.close()


@pytest.mark.parametrize(
    ("carried", "expected", "uid_next"),
    [
        ([1, 2, 5, 9], [1, 2, 5, 9], 10),  # in name order: the fast path
        ([7, 3, 5], [7, 3, 5], 8),  # not in name order
        ([4, 4, 2], [4, 5, 2], 6),  # one UID twice (a copied file): the second gets a new one
        ([3, None, 1], [3, 4, 1], 5),  # a file from another program: a new UID above
    ],
)
def test_rebuild_keeps_the_uids_in_names(
    tmp_path: Path, carried: list[int | None], expected: list[int], uid_next: int
) -> None:
    maildir = tmp_path / "box"
    _fs.make_maildir(maildir)
    for i, uid in enumerate(carried):
        field = "" if uid is None else f",U={uid}"
        _drop(maildir / "cur" / f"17000000{i:02}.M{i}P1.h{field},S=3,W=3:2,", b"abc", 1e9 + i)
    core = _open_core(maildir)
    try:
        by_name = sorted(core.snapshot().messages, key=lambda m: core.names[m.uid])
        assert [m.uid for m in by_name] == expected
        assert core.snapshot().uid_next == uid_next
    finally:
        core.close()


def test_files_removed_during_the_rebuild_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maildir = tmp_path / "box"
    _fs.make_maildir(maildir)
    for i in range(5):
        _drop(maildir / "cur" / f"17000000{i}.M{i}P1.h,S=3,W=3:2,S", b"abc", 1e9 + i)
    real_stat = os.stat

    def stat(path: str, *args: object, **kwargs: object) -> os.stat_result:
        if "M2P1" in str(path):  # removed by another program after the listing
            raise FileNotFoundError(path)
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", stat)
    core = _open_core(maildir)
    monkeypatch.undo()
    try:
        snap = core.snapshot()
        assert [m.uid for m in snap.messages] == [1, 2, 4, 5]
        assert all(m.internal_date == 1e9 + m.uid - 1 for m in snap.messages)
        rows = core._db().conn.execute("SELECT uid FROM messages ORDER BY uid").fetchall()
        assert [r[0] for r in rows] == [1, 2, 4, 5]
    finally:
        core.close()


# ---------------------------------------------------------------------- crashes

_CHILD = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from mailhub.store.maildir.folder import FolderCore
print("ready", flush=True)
core = FolderCore(Path({maildir!r}), "INBOX")
core.open()
print("done", len(core.snapshot().messages), flush=True)
"""


def test_a_rebuild_killed_at_any_moment_leaves_a_store_that_reopens(tmp_path: Path) -> None:
    """SIGKILL during the rebuild (listing, moving new/ files, stat, the SQLite insert): the
    next open finds every message, numbered as a rebuild from nothing numbers them."""
    count = 3000
    maildir = tmp_path / "box"
    _fs.make_maildir(maildir)
    for i in range(count):
        sub, info = ("new", "") if i % 4 == 0 else ("cur", ":2,S")
        (maildir / sub / f"{1_700_000_000 + i}.M{i}P1.h,S=3,W=3{info}").write_bytes(b"abc")
    code = _CHILD.format(repo=str(REPO), maildir=str(maildir))

    def run_child(kill_after: float | None) -> tuple[float, str]:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        start = time.perf_counter()
        if kill_after is not None:
            time.sleep(kill_after)
            proc.send_signal(signal.SIGKILL)
        out = proc.stdout.read()
        proc.wait()
        return time.perf_counter() - start, out

    # How long a whole rebuild takes here, then kills spread over that time.
    elapsed, out = run_child(None)
    assert out.split() == ["done", str(count)]
    rng = random.Random(7)
    kills = 0
    for attempt in range(12):
        _forget_index(maildir)
        if attempt % 2:  # also with new/ files still to move
            for name in os.listdir(maildir / "cur")[: count // 10]:
                base = name.partition(":")[0]
                os.rename(maildir / "cur" / name, maildir / "new" / base)
        _, out = run_child(rng.uniform(0.0, elapsed))
        kills += "done" not in out
        core = _open_core(maildir)
        try:
            snap = core.snapshot()
            assert [m.uid for m in snap.messages] == list(range(1, count + 1))
            names = [core.names[m.uid] for m in snap.messages]
            assert names == sorted(names)
            assert snap.uid_next == count + 1
        finally:
            core.close()
    assert kills >= 3, f"only {kills} of 12 children were killed before they finished"
