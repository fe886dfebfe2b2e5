"""Bringing a folder's memory and index in line with its files and with other processes.

Two sources of outside change: other mailhub processes commit to the index (seen through
SQLite's ``PRAGMA data_version`` and MODSEQs), and other programs rename, add or delete files
(seen through the watcher's name events, or a full rescan when a directory's mtime moved).
Every reconciliation runs inside the index's write transaction, after pulling the latest
commits, so two processes never adopt the same file twice.
"""

from __future__ import annotations

import gc
import logging
import operator
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from itertools import repeat
from operator import attrgetter
from typing import Any, cast

from mailhub.errors import MailError, MailErrorKind
from mailhub.store import flags as flagmod
from mailhub.store.changes import (
    Change,
    FlagsChanged,
    MessagesAdded,
    MessagesExpunged,
    UidValidityChanged,
)
from mailhub.store.maildir import _fs, filename, uidlist
from mailhub.store.maildir.cache_memo import new_scope
from mailhub.store.maildir.index import ROW_COLUMNS, IndexDB, Row
from mailhub.store.maildir.state import FolderState, base_of, flagtext
from mailhub.store.model import MessageInfo

log = logging.getLogger(__name__)

# A directory mtime is trusted to mean "unchanged" only once it is this old when recorded:
# file systems stamp mtimes with a coarse clock, so two changes in one tick look like one.
MTIME_SETTLE_NS = 2_000_000_000
# Above this many unknown files, look them up in the index in one query instead of one each.
_BULK_LOOKUP = 64


_BIG = 1 << 62  # sorts after every UID
_MTIME = attrgetter("st_mtime")
# A MessageInfo from a 5-tuple without a Python-level call (NamedTuple.__new__ is one).
_new_info = cast(Callable[[tuple[int, frozenset[str], int, float, int]], MessageInfo],
                 partial(tuple.__new__, MessageInfo))  # fmt: skip


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector while a folder is loaded or rebuilt.

    Both create a few hundred thousand tuples that all stay alive; every 700 allocations a
    collection runs, and the older generations are walked again and again as the heap grows:
    0.2 s of a 100,000-file rebuild (13%) and 0.08 s of loading 100,000 rows, for no garbage.
    Reference counting still frees everything as usual; collections resume afterwards (unless
    someone else had stopped them: then they stay stopped).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _stat_or_none(rel: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(rel, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def _take(positions: list[int], *columns: list[Any]) -> list[list[Any]]:
    """The same positions of every column."""
    return [[column[i] for i in positions] for column in columns]


def crlf_size_of(lf_data: bytes) -> int:
    """Size of ``lf_data`` once every line ending is CRLF."""
    return len(lf_data) + lf_data.count(b"\n") - lf_data.count(b"\r\n")


def changes_of(
    mailbox: str,
    added: list[MessageInfo],
    changed: list[MessageInfo],
    gone: list[int],
    modseq: int,
) -> list[Change]:
    out: list[Change] = []
    if gone:
        out.append(MessagesExpunged(mailbox, tuple(sorted(gone)), modseq))
    if changed:
        out.append(FlagsChanged(mailbox, tuple(sorted(changed))))
    if added:
        out.append(MessagesAdded(mailbox, tuple(sorted(added))))
    return out


class FolderSync(FolderState):
    """Opening, loading and reconciling a folder."""

    _data_version = -1
    _letter_flags: dict[str, frozenset[str]]

    def open(self) -> list[Change]:
        """Open the index (building it if missing) and bring it up to date with the files."""
        with self.lock:
            if not (self.path / "cur").is_dir():
                raise MailError(MailErrorKind.NOTFOUND, f"folder {self.mailbox!r} does not exist")
            _fs.make_maildir(self.path)
            swept = _fs.sweep_tmp(self.path / "tmp")
            if swept:
                log.info("removed %d abandoned file(s) from %s", swept, self.path / "tmp")
            self.db = IndexDB(self.path)
            with self.db.write():
                meta = self.db.meta()
                if "uidvalidity" not in meta:
                    self._initialise_meta(self.db)
                    meta = self.db.meta()
            with _cyclic_gc_paused():  # loading 100,000 rows, or building them
                self._load()
                if self._dirs_changed(meta):
                    return self._full_scan()
            return []

    def close(self) -> None:
        with self.lock:
            if self.db is not None:
                self.db.close()
                self.db = None

    def _initialise_meta(self, db: IndexDB) -> None:
        dovecot = uidlist.read(self.path)
        if dovecot is not None:
            uidvalidity, uid_next = dovecot.uidvalidity, dovecot.next_uid
        else:
            uidvalidity, uid_next = int(time.time()), 1
        db.set_meta(
            uidvalidity=uidvalidity,
            uid_next=uid_next,
            highest_modseq=1,
            first_recent_uid=1,
            new_mtime=0,
            cur_mtime=0,
            scanned_at=0,
        )

    def _load(self) -> None:
        db = self._db()
        self.clear()
        infos, names, by_base, flagset = self.infos, self.names, self.by_base, self.flagset
        # One read transaction: the rows, the counters and data_version agree.
        own_txn = not db.conn.in_transaction
        if own_txn:
            db.conn.execute("BEGIN")
        try:
            self._data_version = db.data_version()
            meta = db.meta()
            if meta["uidvalidity"] != self.uidvalidity:
                self.memo_scope = new_scope()  # the UIDs now name other messages
            self.uidvalidity = meta["uidvalidity"]
            self.uid_next = meta["uid_next"]
            self.highest_modseq = meta["highest_modseq"]
            rows = db.conn.execute(
                "SELECT uid, flags, vsize, idate, modseq, name, base FROM messages ORDER BY uid"
            ).fetchall()
        finally:
            if own_txn:
                db.conn.execute("COMMIT")
        for uid, flags, vsize, idate, modseq, name, base in rows:
            infos[uid] = MessageInfo(uid, flagset(flags), vsize, idate, modseq)
            names[uid] = name
            by_base[base] = uid

    def _remember_row(self, row: Row) -> MessageInfo:
        uid, _base, name, flags, _size, vsize, idate, modseq = row
        return self.remember(MessageInfo(uid, self.flagset(flags), vsize, idate, modseq), name)

    # ----------------------------------------------------------------- refreshing
    def refresh(self, names: set[str] | None = None, full: bool = False) -> list[Change]:
        """Fold in other processes' commits and outside file changes; return what changed.

        ``names`` are "new/<file>" / "cur/<file>" names the watcher saw change.
        """
        with self.lock:
            if self.db is None:
                return []  # closed meanwhile (folder deleted or renamed)
            changes = self._pull()
            if full or self.needs_full_scan:
                self.needs_full_scan = False
                return changes + self._full_scan()
            if names:
                with self.db.write():
                    changes += self._pull()
                    changes += self._reconcile_names(names)
            return changes

    def _pull(self) -> list[Change]:
        """Apply what other connections committed since we last looked."""
        db = self._db()
        version = db.data_version()
        if version == self._data_version:
            return []
        self._data_version = version
        meta = db.meta()
        if meta["uidvalidity"] != self.uidvalidity:
            self._load()
            return [UidValidityChanged(self.mailbox, self.uidvalidity)]
        since = self.highest_modseq
        added: list[MessageInfo] = []
        changed: list[MessageInfo] = []
        for row in db.rows_since(since):
            old = self.infos.get(row[0])
            info = self._remember_row(row)
            if old is None:
                added.append(info)
            elif old.flags != info.flags:
                changed.append(info)
        gone = [u for u in db.expunged_since(since) if u in self.infos]
        for uid in gone:
            self.forget(uid)
        self.uid_next = meta["uid_next"]
        self.highest_modseq = meta["highest_modseq"]
        return changes_of(self.mailbox, added, changed, gone, self.highest_modseq)

    def _dirs_changed(self, meta: dict[str, int]) -> bool:
        new_m, cur_m = self._dir_mtimes()
        settled = meta.get("scanned_at", 0) - max(new_m, cur_m) > MTIME_SETTLE_NS
        return not (settled and meta.get("new_mtime") == new_m and meta.get("cur_mtime") == cur_m)

    def _dir_mtimes(self) -> tuple[int, int]:
        return (os.stat(self.path / "new").st_mtime_ns, os.stat(self.path / "cur").st_mtime_ns)

    def dirs_changed_since_scan(self) -> bool:
        """Polling fallback when no watcher is available."""
        with self.lock:
            return self._dirs_changed(self._db().meta())

    def _full_scan(self) -> list[Change]:
        db = self._db()
        with db.write():
            changes = self._pull()
            with _cyclic_gc_paused():  # a rescan of 100,000 files builds as many tuples
                if not self.infos and db.is_empty():
                    changes += self._index_all_files()
                else:
                    changes += self._reconcile(self._list_files(), scope=None)
            new_m, cur_m = self._dir_mtimes()
            db.set_meta(new_mtime=new_m, cur_mtime=cur_m, scanned_at=time.time_ns())
        self._data_version = db.data_version()
        return changes

    def _index_all_files(self) -> list[Change]:
        """The first scan of a folder the index holds nothing of: a rebuild, a migration, a
        Maildir dropped in place. Every file is new, so the per-file comparisons of
        ``_reconcile`` are skipped and the sorted listing goes straight to adoption."""
        self.keywords.reload()
        self._letter_flags = {}
        new_names = _fs.listdir(self.path / "new")  # new/ first, as in _list_files
        cur_names = _fs.listdir(self.path / "cur")
        if new_names:
            in_cur = {n.partition(":")[0] for n in cur_names}
            for name in new_names:
                base = name.partition(":")[0]
                if base not in in_cur:  # cur/ wins, as in _list_files
                    in_cur.add(base)
                    rel = self._move_to_cur(base, f"new/{name}")
                    if rel.startswith("cur/"):  # else it went away meanwhile
                        cur_names.append(rel[4:])
        if not cur_names:
            return []
        cur_names.sort()
        modseq = self.highest_modseq + 1
        added = self._adopt_sorted(list(map("cur/".__add__, cur_names)), cur_names, modseq)
        self.highest_modseq = modseq
        self._db().set_meta(uid_next=self.uid_next, highest_modseq=modseq)
        return changes_of(self.mailbox, added, [], [], modseq)

    def _list_files(self) -> dict[str, str]:
        """base -> "new/<file>" or "cur/<file>"; listing new/ first so that a file moved to
        cur/ meanwhile is still seen (in cur/, which wins)."""
        files: dict[str, str] = {}
        for sub in ("new", "cur"):
            for name in _fs.listdir(self.path / sub):
                files[name.partition(":")[0]] = f"{sub}/{name}"
        return files

    # -------------------------------------------------------------- reconciling
    def _reconcile_names(self, names: set[str]) -> list[Change]:
        """Reconcile only the bases the watcher reported (cheap, for busy big folders)."""
        candidates: dict[str, list[str]] = {}
        for rel in names:
            candidates.setdefault(base_of(rel), []).append(rel)
        files: dict[str, str] = {}
        for base, options in candidates.items():
            uid = self.by_base.get(base)
            known = [self.names[uid]] if uid is not None else []
            for rel in known + options:
                if os.path.lexists(os.path.join(self.path, rel)):
                    files[base] = rel
                    break
            else:
                if uid is not None:  # renamed again since the event: ask the index and disk
                    current = self.current_name(uid)
                    if current is not None:
                        files[base] = current
        return self._reconcile(files, scope=set(candidates))

    def _reconcile(self, files: dict[str, str], scope: set[str] | None) -> list[Change]:
        """Make index and memory match ``files`` (base -> relative name) within ``scope``."""
        db = self._db()
        self.keywords.reload()
        self._letter_flags = {}  # the keyword table may have changed
        bases = self.by_base.keys() if scope is None else scope & self.by_base.keys()
        gone = sorted(self.by_base[b] for b in bases if b not in files)
        changed: list[tuple[int, str, frozenset[str]]] = []
        renamed: list[tuple[str, int]] = []
        fresh: list[tuple[str, str]] = []
        for base, rel in files.items():
            if rel.startswith("new/"):
                rel = self._move_to_cur(base, rel)
            uid = self.by_base.get(base)
            if uid is None:
                fresh.append((base, rel))
                continue
            if self.names[uid] == rel:
                continue
            old = self.infos[uid].flags
            new_flags = self._flags_from_name(rel, old)
            if new_flags != old:
                changed.append((uid, rel, new_flags))
            else:
                renamed.append((rel, uid))
                self.names[uid] = rel
        if renamed:
            db.update_names(renamed)
        if not (gone or changed or fresh):
            return []
        modseq = self.highest_modseq + 1
        updates = []
        changed_infos = []
        for uid, rel, new_flags in changed:
            info = self.infos[uid]._replace(flags=new_flags, modseq=modseq)
            self.set_info(info)
            self.names[uid] = rel
            updates.append((rel, flagtext(new_flags), modseq, uid))
            changed_infos.append(info)
        db.update_rows(updates)
        for uid in gone:
            self.forget(uid)
        db.delete_rows(gone, modseq)
        added = self._adopt(fresh, modseq)
        self.highest_modseq = modseq
        db.set_meta(uid_next=self.uid_next, highest_modseq=modseq)
        return changes_of(self.mailbox, added, changed_infos, gone, modseq)

    def _move_to_cur(self, base: str, rel: str) -> str:
        """Maildir readers move ``new/`` files to ``cur/``; keeps ``new/`` small."""
        target = "cur/" + filename.build(base, "")
        try:
            os.rename(os.path.join(self.path, rel), os.path.join(self.path, target))
        except FileNotFoundError:
            return rel
        return target

    def _flags_from_name(self, rel: str, previous: frozenset[str]) -> frozenset[str]:
        _, sep, info = rel.partition(":")
        letters = info[2:] if sep and info.startswith("2,") else ""
        flags = self._letter_flags.get(letters)
        if flags is None:
            flags = filename.letters_to_flags(letters, self.keywords.letter_to_keyword)
            if len(self._letter_flags) < 4096:
                self._letter_flags[letters] = flags
        if not previous:
            return flags
        # Keywords past the 26 letters live only in the index: keep them.
        extra = {
            f
            for f in previous
            if f not in flagmod.MAILDIR_LETTERS
            and not f.startswith("\\")
            and f not in self.keywords.keyword_to_letter
        }
        return flags | extra

    def _known_bases(self, fresh: list[tuple[str, str]]) -> dict[str, Row]:
        """Rows for bases another process indexed under a name this one missed."""
        db = self._db()
        if len(fresh) <= _BULK_LOOKUP:
            found = {}
            for base, _ in fresh:
                row = db.conn.execute(
                    f"SELECT {ROW_COLUMNS} FROM messages WHERE base = ?", (base,)
                ).fetchone()
                if row is not None:
                    found[base] = row
            return found
        wanted = {b for b, _ in fresh}
        rows = db.conn.execute(f"SELECT {ROW_COLUMNS} FROM messages").fetchall()
        return {r[1]: r for r in rows if r[1] in wanted}

    def _adopt(self, fresh: list[tuple[str, str]], modseq: int) -> list[MessageInfo]:
        """Give UIDs to files the index did not know (outside deliveries, lost commits)."""
        if not fresh:
            return []
        if self.infos or not self._db().is_empty():
            known = self._known_bases(fresh)
            if known:
                for base in known:
                    self._remember_row(known[base])
                fresh = [item for item in fresh if item[0] not in known]
        rels = sorted(rel for _, rel in fresh)
        return self._adopt_sorted(rels, [rel[4:] for rel in rels], modseq)

    def _adopt_sorted(self, rels: list[str], names: list[str], modseq: int) -> list[MessageInfo]:
        """Index the files ``rels`` (sorted; ``names`` without "cur/"), new to the index.

        This is the whole of an index rebuild (100,000 files and more), hence written in
        columns: each step is one pass that runs in C (a regular expression over all names,
        ``map``, ``zip``, dict updates), with no Python loop or object per file except the
        row and its ``MessageInfo``. The internal date is the file's mtime, so each file is
        stat()ed once, relative to the folder's directory; the contents are not read unless a
        name lacks ``W=``.
        """
        parsed = filename.parse_many(names)
        bases, sizes, crlfs, letters = parsed.bases, parsed.sizes, parsed.crlf_sizes, parsed.letters
        name_uids = parsed.uids
        if len(set(bases)) != len(bases):  # one base under two names: a broken writer; keep one
            keep = sorted(dict(zip(bases, range(len(bases)), strict=True)).values())
            rels, bases, sizes, crlfs, letters, name_uids = _take(
                keep, rels, bases, sizes, crlfs, letters, name_uids
            )
        uids, order = self._assign_uids(bases, name_uids)
        if order is not None:
            rels, bases, sizes, crlfs, letters = _take(order, rels, bases, sizes, crlfs, letters)
        try:
            folder_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:  # the folder was deleted meanwhile
            return []
        try:
            try:
                stats: list[os.stat_result] = list(map(partial(os.stat, dir_fd=folder_fd), rels))
            except FileNotFoundError:  # some removed meanwhile: skip them
                maybe = [_stat_or_none(rel, folder_fd) for rel in rels]
                keep = [i for i, st in enumerate(maybe) if st is not None]
                rels, bases, sizes, crlfs, letters, uids = _take(
                    keep, rels, bases, sizes, crlfs, letters, uids
                )
                stats = [st for st in maybe if st is not None]
        finally:
            os.close(folder_fd)
        if not rels:
            return []
        mtimes: list[float] = list(map(_MTIME, stats))
        file_sizes = cast(list[int], sizes)
        if None in sizes:  # no S= (Postfix, procmail): the file's size
            file_sizes = [
                s if s is not None else st.st_size for s, st in zip(sizes, stats, strict=True)
            ]
        vsizes = cast(list[int], crlfs)
        if None in crlfs:  # no W=: count the line endings
            vsizes = [
                c if c is not None else crlf_size_of(_fs.read_file(self.path / rel))
                for c, rel in zip(crlfs, rels, strict=True)
            ]
        flag_of: dict[str, frozenset[str]] = {}
        text_of: dict[str, str] = {}
        for letter_set in set(letters):  # a folder has few distinct combinations
            flags = self._flags_from_name(f"cur/x:2,{letter_set}", frozenset())
            text_of[letter_set] = text = flagtext(flags)
            flag_of[letter_set] = self.flagset(text)
        texts = map(text_of.__getitem__, letters)
        modseqs = repeat(modseq)
        rows: Iterator[Row] = zip(
            uids, bases, rels, texts, file_sizes, vsizes, mtimes, modseqs, strict=False
        )
        self._db().insert_rows(rows)
        flagsets = map(flag_of.__getitem__, letters)
        added = list(map(_new_info, zip(uids, flagsets, vsizes, mtimes, modseqs, strict=False)))
        infos = self.infos
        if infos and uids[0] < next(reversed(infos)):
            self._ordered = False
        infos.update(zip(uids, added, strict=True))
        self.names.update(zip(uids, rels, strict=True))
        self.by_base.update(zip(bases, uids, strict=True))
        self._snapshot = None
        self._counts = None
        return added

    def _assign_uids(
        self, bases: list[str], name_uids: list[int | None]
    ) -> tuple[list[int], list[int] | None]:
        """UIDs for new files (in name order), and the order that sorts them by UID if it is
        not the name order.

        First the UIDs the files already have (Dovecot's uidlist, or our own U= from a lost
        commit), so that no new message takes one of them; then new UIDs above all.
        """
        count = len(bases)
        first_new = self.uid_next
        infos = self.infos
        dovecot = uidlist.read(self.path) if not infos else None
        # The last key is the highest UID while memory is in UID order: no walk over 100,000
        # UIDs for each file an outside program delivers.
        highest = next(reversed(infos)) if infos and self._ordered else max(infos, default=0)
        if dovecot is None and (
            name_uids.count(None) == count or all(u is None or u < first_new for u in name_uids)
        ):
            # No UIDs to keep (Dovecot's names, other programs'): new UIDs in name order.
            start = max(first_new, highest + 1)
            self.uid_next = start + count
            return list(range(start, start + count)), None
        carried = cast(list[int], name_uids)
        if (
            dovecot is None
            and None not in name_uids
            and carried[0] > max(first_new - 1, highest)
            and all(map(operator.lt, carried, carried[1:]))
        ):
            # mailhub's own names after a lost index: every UID is kept, in name order.
            self.uid_next = carried[-1] + 1
            return carried, None
        # Files with a UID in their name go first, by that UID (then by name: a stable sort).
        keys = [_BIG if u is None else u for u in name_uids]
        by_name_uid = sorted(range(count), key=keys.__getitem__)
        used = set(self.infos)
        uid_of: list[int] = [0] * count
        later: list[int] = []
        for i in by_name_uid:
            uid = None
            if dovecot is not None:
                uid = dovecot.uids.get(bases[i])
            elif (name_uid := name_uids[i]) is not None and name_uid >= first_new:
                uid = name_uid
            if uid is not None and uid not in used:
                used.add(uid)
                uid_of[i] = uid
            else:
                later.append(i)
        start = max(first_new, max(used, default=0) + 1)
        for offset, i in enumerate(later):
            uid_of[i] = start + offset
        self.uid_next = start + len(later)
        order = sorted(range(count), key=uid_of.__getitem__)
        if order == list(range(count)):  # UIDs in names follow name order (the usual case)
            return uid_of, None
        return [uid_of[i] for i in order], order
