"""One Maildir folder: writes, and the per-message extras (\\Recent, POP3 marks, cache).

``FolderCore`` is synchronous and thread-safe (one lock per folder); the async facade in
``mailbox`` runs it on worker threads. Every write happens inside an SQLite ``BEGIN IMMEDIATE``
transaction, which is also the lock between processes: before changing anything, a writer
first pulls what other processes committed, so memory, index and files agree when it acts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mailhub.store import flags as flagmod
from mailhub.store.maildir import _fs, filename
from mailhub.store.maildir.cache_memo import MEMO
from mailhub.store.maildir.index import IndexDB, Row
from mailhub.store.maildir.state import flagtext
from mailhub.store.maildir.sync import FolderSync, crlf_size_of
from mailhub.store.model import ChangesSince, MessageInfo

__all__ = ["FolderCore", "Prepared", "crlf_size_of", "to_lf"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message written to ``tmp/`` and fsynced, waiting for its UID."""

    tmp_path: Path
    size: int
    crlf_size: int
    flags: frozenset[str]
    internal_date: float


def to_lf(data: bytes) -> bytes:
    """Maildir convention: files hold LF line endings."""
    return data.replace(b"\r\n", b"\n")


class FolderCore(FolderSync):
    """The synchronous heart of an open folder."""

    _keyword_cache: tuple[tuple[int, int, int], list[str]] | None = None

    def relocate(self, uid: int) -> str:
        """After ENOENT: find where an outside rename put the file, or report it expunged."""
        with self.lock:
            self.refresh(full=True)
            return self.path_of(uid)

    # ------------------------------------------------------------------- writing
    def add_prepared(self, prepared: list[Prepared], into_new: bool) -> list[MessageInfo]:
        """Give UIDs to fsynced ``tmp/`` files and rename them into place, in one transaction.

        The caller fsyncs the target directory afterwards, before acknowledging.
        """
        with self.lock:
            db = self._db()
            placed: list[str] = []
            try:
                with db.write():
                    self._pull()
                    self.keywords.ensure(frozenset().union(*(p.flags for p in prepared)))
                    modseq = self.highest_modseq + 1
                    rows: list[Row] = []
                    for item in prepared:
                        uid = self.uid_next
                        self.uid_next += 1
                        base = filename.new_base(uid, item.size, item.crlf_size)
                        to_letter = self.keywords.keyword_to_letter
                        letters = filename.flags_to_letters(item.flags, to_letter)
                        if into_new and not letters:
                            rel = f"new/{base}"
                        else:
                            rel = "cur/" + filename.build(base, letters)
                        # Before the rename: the watcher may report the name before memory has it.
                        self.arriving.add(rel)
                        placed.append(rel)
                        os.rename(item.tmp_path, os.path.join(self.path, rel))
                        rows.append(
                            (uid, base, rel, flagtext(item.flags), item.size, item.crlf_size,
                             item.internal_date, modseq)
                        )  # fmt: skip
                    db.insert_rows(rows)
                    self.highest_modseq = modseq
                    db.set_meta(uid_next=self.uid_next, highest_modseq=modseq)
                return [self._remember_row(row) for row in rows]
            finally:
                self.arriving.difference_update(placed)

    def store_flags(
        self,
        uids: list[int],
        op: flagmod.FlagOp,
        given: frozenset[str],
        unchanged_since: int | None,
    ) -> tuple[list[MessageInfo], list[int]]:
        with self.lock:
            self._pull()
            if self._changes_nothing(uids, op, given, unchanged_since):
                return [], []
            db = self._db()
            with db.write():
                return self._store_flags_in_txn(db, uids, op, given, unchanged_since)

    def keywords_known(self, given: frozenset[str]) -> bool:
        """Whether storing ``given`` needs no new keyword letter (no keyword file write)."""
        table = self.keywords.keyword_to_letter
        return all(f.startswith("\\") or f in table or f in flagmod.MAILDIR_LETTERS for f in given)

    def try_store_flags(
        self,
        uids: list[int],
        op: flagmod.FlagOp,
        given: frozenset[str],
        unchanged_since: int | None,
    ) -> tuple[list[MessageInfo], list[int]] | None:
        """``store_flags`` without ever waiting, for the event loop thread: None (nothing
        done) when this folder's lock is taken or another process holds the index's write
        lock; the caller then runs ``store_flags`` on a worker thread."""
        if not self.lock.acquire(blocking=False):
            return None
        try:
            self._pull()
            if self._changes_nothing(uids, op, given, unchanged_since):
                return [], []
            db = self._db()
            with db.write_now() as conn:
                if conn is None:
                    return None
                return self._store_flags_in_txn(db, uids, op, given, unchanged_since)
        finally:
            self.lock.release()

    def _changes_nothing(
        self,
        uids: list[int],
        op: flagmod.FlagOp,
        given: frozenset[str],
        unchanged_since: int | None,
    ) -> bool:
        """Whether a store would leave every flag as it is (``+FLAGS \\Seen`` on read mail):
        then no write transaction is needed at all. With UNCHANGEDSINCE the transaction
        decides (a failed message must be reported)."""
        if unchanged_since is not None:
            return False
        infos = self.infos
        for uid in uids:
            info = infos.get(uid)
            if info is not None and flagmod.apply(info.flags, op, given) != info.flags:
                return False
        return True

    def _store_flags_in_txn(
        self,
        db: IndexDB,
        uids: list[int],
        op: flagmod.FlagOp,
        given: frozenset[str],
        unchanged_since: int | None,
    ) -> tuple[list[MessageInfo], list[int]]:
        """The flag store inside the caller's write transaction (folder lock held)."""
        self._pull()
        self.keywords.ensure(given)
        to_letter = self.keywords.keyword_to_letter
        modseq = self.highest_modseq + 1
        changed: list[MessageInfo] = []
        failed: list[int] = []
        updates: list[tuple[str, str, int, int]] = []
        for uid in uids:
            info = self.infos.get(uid)
            if info is None:
                continue
            if unchanged_since is not None and info.modseq > unchanged_since:
                failed.append(uid)
                continue
            new_flags = flagmod.apply(info.flags, op, given)
            if new_flags == info.flags:
                continue
            old_rel = self.names[uid]
            base = old_rel[4:].partition(":")[0]
            rel = "cur/" + filename.build(base, filename.flags_to_letters(new_flags, to_letter))
            if rel != old_rel and not self.rename_file(uid, rel):
                continue  # the file is gone: the next sync reports the expunge
            info = info._replace(flags=new_flags, modseq=modseq)
            self.set_info(info)
            updates.append((rel, flagtext(new_flags), modseq, uid))
            changed.append(info)
        if updates:
            db.update_rows(updates)
            self.highest_modseq = modseq
            db.set_meta(highest_modseq=modseq)
        return changed, failed

    def expunge(self, uids: list[int], unlink: bool = True) -> list[int]:
        with self.lock:
            db = self._db()
            with db.write():
                self._pull()
                gone = sorted(u for u in set(uids) if u in self.infos)
                if not gone:
                    return []
                modseq = self.highest_modseq + 1
                for uid in gone:
                    if unlink:
                        self.unlink_file(uid)
                    self.forget(uid)
                db.delete_rows(gone, modseq)
                self.highest_modseq = modseq
                db.set_meta(highest_modseq=modseq)
            return gone

    def transfer_out(self, uids: list[int]) -> list[tuple[int, Path, MessageInfo]]:
        """Where each message to copy or move lives now (skipping expunged ones)."""
        with self.lock:
            return [
                (uid, self.path / self.names[uid], self.infos[uid])
                for uid in sorted(set(uids))
                if uid in self.infos
            ]

    def transfer_in(self, items: list[tuple[int, Path, MessageInfo]], move: bool) -> dict[int, int]:
        """Link (copy) or rename (move) files from another folder into this one."""
        with self.lock:
            db = self._db()
            mapping: dict[int, int] = {}
            rows: list[Row] = []
            with db.write():
                self._pull()
                self.keywords.ensure(frozenset().union(*(i[2].flags for i in items)))
                modseq = self.highest_modseq + 1
                for src_uid, src_path, info in items:
                    uid = self.uid_next
                    size = _size_field(src_path)
                    base = filename.new_base(uid, size, info.size)
                    letters = filename.flags_to_letters(info.flags, self.keywords.keyword_to_letter)
                    rel = "cur/" + filename.build(base, letters)
                    try:
                        if move:
                            os.rename(src_path, self.path / rel)
                        else:
                            _link_or_copy(src_path, self.path / rel, self.path / "tmp")
                    except FileNotFoundError:
                        continue
                    self.uid_next += 1
                    mapping[src_uid] = uid
                    rows.append(
                        (uid, base, rel, flagtext(info.flags), size, info.size,
                         info.internal_date, modseq)
                    )  # fmt: skip
                if rows:
                    db.insert_rows(rows)
                    self.highest_modseq = modseq
                    db.set_meta(uid_next=self.uid_next, highest_modseq=modseq)
            for row in rows:
                self._remember_row(row)
            return mapping

    # ------------------------------------------------------- CONDSTORE, \Recent, POP3, cache
    def changes_since(self, modseq: int) -> ChangesSince:
        with self.lock:
            changed = tuple(i for i in self.snapshot().messages if i.modseq > modseq)
            return ChangesSince(changed, tuple(self._db().expunged_since(modseq)))

    def claim_recent(self) -> int:
        with self.lock:
            db = self._db()
            with db.write():
                meta = db.meta()
                db.set_meta(first_recent_uid=meta["uid_next"])
            return meta.get("first_recent_uid", 1)

    def mark_retrieved(self, uids: list[int]) -> None:
        with self.lock:
            db = self._db()
            with db.write():
                db.conn.executemany(
                    "UPDATE messages SET retrieved = 1 WHERE uid = ?", [(u,) for u in uids]
                )

    def retrieved_uids(self) -> frozenset[int]:
        with self.lock:
            rows = self._db().conn.execute("SELECT uid FROM messages WHERE retrieved = 1")
            return frozenset(r[0] for r in rows)

    def get_cached(self, uid: int, key: str) -> bytes | None:
        return self.get_cached_many([uid], key).get(uid)

    def set_cached(self, uid: int, key: str, value: bytes) -> None:
        self.set_cached_many(key, {uid: value})

    def get_cached_many(self, uids: list[int], key: str) -> dict[int, bytes]:
        """From the memo (:mod:`.cache_memo`) where it holds them, else from the index."""
        found, missing = MEMO.get_many(self.memo_scope, uids, key)
        if missing:
            with self.lock:
                found.update(self.load_cached(missing, key))
        return found

    def load_cached(self, uids: list[int], key: str) -> dict[int, bytes]:
        """The index's rows for ``uids`` (the caller holds the folder lock), now memoised."""
        loaded: list[tuple[int, bytes]] = []
        conn = self._db().conn
        for start in range(0, len(uids), 500):  # SQLite's bound-parameter limit
            chunk = uids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT uid, value FROM cache WHERE key = ? AND uid IN ({marks})",
                (key, *chunk),
            )
            loaded.extend((uid, bytes(value)) for uid, value in rows)
        MEMO.put_many(self.memo_scope, key, loaded)
        return dict(loaded)

    def try_set_cached_many(self, key: str, values: dict[int, bytes]) -> bool:
        """``set_cached_many`` without ever waiting (event loop thread): False, nothing
        written, when the folder lock or another process's write lock is in the way."""
        if not self.lock.acquire(blocking=False):
            return False
        try:
            db = self._db()
            rows = [(uid, key, value) for uid, value in values.items() if uid in self.infos]
            if not rows:
                return True
            with db.write_now() as conn:
                if conn is None:
                    return False
                db.put_cache(rows)
            MEMO.put_many(self.memo_scope, key, ((uid, value) for uid, _, value in rows))
            return True
        finally:
            self.lock.release()

    def set_cached_many(self, key: str, values: dict[int, bytes]) -> None:
        with self.lock:
            db = self._db()
            rows = [(uid, key, value) for uid, value in values.items() if uid in self.infos]
            if not rows:
                return
            with db.write():
                db.put_cache(rows)
            MEMO.put_many(self.memo_scope, key, ((uid, value) for uid, _, value in rows))

    def keyword_names(self) -> list[str]:
        """Every keyword in use or in the table; recomputed only after a change (every SELECT
        asks, and a 100,000-message folder is worth not walking each time)."""
        with self.lock:
            self.keywords.reload()
            key = (self.highest_modseq, len(self.infos), len(self.keywords.keyword_to_letter))
            if self._keyword_cache is None or self._keyword_cache[0] != key:
                names = set(self.keywords.keyword_to_letter)
                for flags in {info.flags for info in self.infos.values()}:
                    names.update(f for f in flags if not f.startswith("\\"))
                self._keyword_cache = (key, sorted(names))
            return list(self._keyword_cache[1])


def _size_field(path: Path) -> int:
    parsed = filename.parse(path.name)
    if parsed.size is not None:
        return parsed.size
    return os.stat(path).st_size


def _link_or_copy(src: Path, dest: Path, tmp_dir: Path) -> None:
    """Hard-link like Dovecot does (no data copied); copy when links are not possible."""
    try:
        os.link(src, dest)
        return
    except FileNotFoundError:
        raise
    except OSError:
        pass
    data = _fs.read_file(src)
    tmp = tmp_dir / filename.unique()
    _fs.write_new_file(tmp, data, os.stat(src).st_mtime)
    os.rename(tmp, dest)
