"""One Maildir folder: its files, its index, and the in-memory view shared by every session.

``FolderCore`` is synchronous and thread-safe (one lock per folder); the async facade in
``mailbox`` runs it on worker threads. Every write happens inside an SQLite ``BEGIN IMMEDIATE``
transaction, which is also the lock between processes: before changing anything, a writer
first pulls what other processes committed (``PRAGMA data_version``), so the in-memory view,
the index and the files agree when it acts.

Outside programs are noticed two ways: by name events from the watcher (cheap, exact) and by a
full rescan when a directory's mtime differs from the one recorded at the last scan.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

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
from mailhub.store.maildir.index import ROW_COLUMNS, IndexDB, Row
from mailhub.store.maildir.keywords import KeywordTable
from mailhub.store.model import ChangesSince, MailboxStatus, MessageInfo, Snapshot

# A directory mtime is trusted to mean "unchanged" only once it is this old when recorded:
# file systems stamp mtimes with a coarse clock, so two changes in one tick look like one.
_MTIME_SETTLE_NS = 2_000_000_000


@dataclass(slots=True)
class Entry:
    info: MessageInfo
    base: str
    name: str  # "cur/<file>" or "new/<file>"


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


def crlf_size_of(lf_data: bytes) -> int:
    """Size of ``lf_data`` once every line ending is CRLF."""
    return len(lf_data) + lf_data.count(b"\n") - lf_data.count(b"\r\n")


class FolderCore:
    """The synchronous heart of an open folder."""

    def __init__(self, path: Path, mailbox: str) -> None:
        self.path = path
        self.mailbox = mailbox
        self.lock = threading.RLock()
        self.db: IndexDB | None = None
        self.keywords = KeywordTable(path)
        self.uidvalidity = 0
        self.uid_next = 1
        self.highest_modseq = 1
        self._entries: dict[int, Entry] = {}
        self._by_base: dict[str, int] = {}
        self._snapshot: tuple[MessageInfo, ...] | None = None
        self._data_version = -1
        self._flagsets: dict[str, frozenset[str]] = {"": frozenset()}
        self.needs_full_scan = False

    # ----------------------------------------------------------------- opening and loading
    def open(self) -> list[Change]:
        """Open the index (building it if missing) and bring it up to date with the files."""
        with self.lock:
            if not (self.path / "cur").is_dir():
                raise MailError(MailErrorKind.NOTFOUND, f"folder {self.mailbox!r} does not exist")
            _fs.make_maildir(self.path)
            self.db = IndexDB(self.path)
            with self.db.write():
                meta = self.db.meta()
                if "uidvalidity" not in meta:
                    self._initialise_meta()
                    meta = self.db.meta()
            self._load(meta)
            if self._dirs_changed(meta):
                return self._full_scan()
            return []

    def close(self) -> None:
        with self.lock:
            if self.db is not None:
                self.db.close()
                self.db = None

    def _initialise_meta(self) -> None:
        assert self.db is not None
        dovecot = uidlist.read(self.path)
        if dovecot is not None:
            uidvalidity, uid_next = dovecot.uidvalidity, dovecot.next_uid
        else:
            uidvalidity, uid_next = int(time.time()), 1
        self.db.set_meta(
            uidvalidity=uidvalidity,
            uid_next=uid_next,
            highest_modseq=1,
            first_recent_uid=1,
            new_mtime=0,
            cur_mtime=0,
            scanned_at=0,
        )

    def _load(self, meta: dict[str, int]) -> None:
        assert self.db is not None
        self.uidvalidity = meta["uidvalidity"]
        self.uid_next = meta["uid_next"]
        self.highest_modseq = meta["highest_modseq"]
        self._entries.clear()
        self._by_base.clear()
        self._snapshot = None
        for row in self.db.all_rows():
            self._remember(row)
        self._data_version = self.db.data_version()

    def _flagset(self, text: str) -> frozenset[str]:
        found = self._flagsets.get(text)
        if found is None:
            found = frozenset(text.split(" "))
            self._flagsets[text] = found
        return found

    def _remember(self, row: Row) -> Entry:
        uid, base, name, flags, _size, vsize, idate, modseq = row
        entry = Entry(MessageInfo(uid, self._flagset(flags), vsize, idate, modseq), base, name)
        self._entries[uid] = entry
        self._by_base[base] = uid
        self._snapshot = None
        return entry

    def _forget(self, uid: int) -> None:
        entry = self._entries.pop(uid, None)
        if entry is not None:
            self._by_base.pop(entry.base, None)
            self._snapshot = None

    # ------------------------------------------------------------------ reading the view
    def snapshot(self) -> Snapshot:
        with self.lock:
            if self._snapshot is None:
                self._snapshot = tuple(self._entries[u].info for u in sorted(self._entries))
            return Snapshot(
                self.mailbox, self.uidvalidity, self.uid_next, self.highest_modseq, self._snapshot
            )

    def status(self) -> MailboxStatus:
        snap = self.snapshot()
        unseen = deleted = size = 0
        for info in snap.messages:
            size += info.size
            if flagmod.SEEN not in info.flags:
                unseen += 1
            if flagmod.DELETED in info.flags:
                deleted += 1
        return MailboxStatus(
            len(snap.messages),
            unseen,
            snap.uid_next,
            snap.uidvalidity,
            snap.highest_modseq,
            size,
            deleted,
        )

    def path_of(self, uid: int) -> Path:
        """Where the message's file is now; raises EXPUNGED if it is gone."""
        with self.lock:
            entry = self._entries.get(uid)
            if entry is None:
                raise MailError(MailErrorKind.EXPUNGED, f"message UID {uid} was expunged")
            return self.path / entry.name

    def relocate(self, uid: int) -> Path:
        """After ENOENT: find where an outside rename put the file, or report it expunged."""
        with self.lock:
            self.refresh(full=True)
            return self.path_of(uid)

    # -------------------------------------------------------------------- syncing
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
        assert self.db is not None
        version = self.db.data_version()
        if version == self._data_version:
            return []
        self._data_version = version
        meta = self.db.meta()
        if meta["uidvalidity"] != self.uidvalidity:
            self._load(meta)
            return [UidValidityChanged(self.mailbox, self.uidvalidity)]
        since = self.highest_modseq
        added: list[MessageInfo] = []
        changed: list[MessageInfo] = []
        for row in self.db.rows_since(since):
            old = self._entries.get(row[0])
            entry = self._remember(row)
            if old is None:
                added.append(entry.info)
            elif old.info.flags != entry.info.flags:
                changed.append(entry.info)
        gone = [u for u in self.db.expunged_since(since) if u in self._entries]
        for uid in gone:
            self._forget(uid)
        self.uid_next = meta["uid_next"]
        self.highest_modseq = meta["highest_modseq"]
        return _changes(self.mailbox, added, changed, gone, self.highest_modseq)

    def _dirs_changed(self, meta: dict[str, int]) -> bool:
        new_m, cur_m = self._dir_mtimes()
        settled = meta.get("scanned_at", 0) - max(new_m, cur_m) > _MTIME_SETTLE_NS
        return not (settled and meta.get("new_mtime") == new_m and meta.get("cur_mtime") == cur_m)

    def _dir_mtimes(self) -> tuple[int, int]:
        return (os.stat(self.path / "new").st_mtime_ns, os.stat(self.path / "cur").st_mtime_ns)

    def dirs_changed_since_scan(self) -> bool:
        """Polling fallback when no watcher is available."""
        with self.lock:
            assert self.db is not None
            return self._dirs_changed(self.db.meta())

    def _full_scan(self) -> list[Change]:
        assert self.db is not None
        with self.db.write():
            changes = self._pull()
            files = self._list_files()
            changes += self._reconcile(files, scope=None)
            new_m, cur_m = self._dir_mtimes()
            self.db.set_meta(new_mtime=new_m, cur_mtime=cur_m, scanned_at=time.time_ns())
        self._data_version = self.db.data_version()
        return changes

    def _list_files(self) -> dict[str, str]:
        files: dict[str, str] = {}
        for sub in ("new", "cur"):
            for name in _fs.listdir(self.path / sub):
                files[filename.parse(name).base] = f"{sub}/{name}"
        return files

    def _reconcile_names(self, names: set[str]) -> list[Change]:
        """Reconcile only the bases the watcher reported (cheap, for busy big folders)."""
        bases: set[str] = set()
        candidates: dict[str, list[str]] = {}
        for rel in names:
            base = filename.parse(rel.split("/", 1)[1]).base
            bases.add(base)
            candidates.setdefault(base, []).append(rel)
        files: dict[str, str] = {}
        for base in bases:
            uid = self._by_base.get(base)
            options = ([self._entries[uid].name] if uid is not None else []) + candidates[base]
            for rel in options:
                if os.path.lexists(self.path / rel):
                    files[base] = rel
                    break
            else:
                if uid is not None:  # renamed again since the event: ask the index and disk
                    current = self._current_name(self._entries[uid])
                    if current is not None:
                        files[base] = current
        return self._reconcile(files, scope=bases)

    def _reconcile(self, files: dict[str, str], scope: set[str] | None) -> list[Change]:
        """Make index and memory match ``files`` (base -> relative name) within ``scope``."""
        assert self.db is not None
        self.keywords.reload()
        bases = self._by_base.keys() if scope is None else scope & self._by_base.keys()
        gone = sorted(self._by_base[b] for b in bases if b not in files)
        changed: list[tuple[int, str, frozenset[str]]] = []
        renamed: list[tuple[str, int]] = []
        fresh: list[tuple[str, str]] = []
        for base, rel in files.items():
            if rel.startswith("new/"):
                rel = self._move_to_cur(base, rel)
            uid = self._by_base.get(base)
            if uid is None:
                fresh.append((base, rel))
                continue
            entry = self._entries[uid]
            if entry.name == rel:
                continue
            flags = self._flags_from_name(rel, entry.info.flags)
            if flags != entry.info.flags:
                changed.append((uid, rel, flags))
            else:
                renamed.append((rel, uid))
                entry.name = rel
        if renamed:
            self.db.update_names(renamed)
        if not (gone or changed or fresh):
            return []
        modseq = self.highest_modseq + 1
        updates = []
        changed_infos = []
        for uid, rel, new_flags in changed:
            entry = self._entries[uid]
            info = entry.info
            entry.name = rel
            entry.info = MessageInfo(uid, new_flags, info.size, info.internal_date, modseq)
            updates.append((rel, _flagtext(new_flags), modseq, uid))
            changed_infos.append(entry.info)
        self.db.update_rows(updates)
        self._snapshot = None
        for uid in gone:
            self._forget(uid)
        self.db.delete_rows(gone, modseq)
        added = self._adopt(fresh, modseq)
        self.highest_modseq = modseq
        self.db.set_meta(uid_next=self.uid_next, highest_modseq=modseq)
        return _changes(self.mailbox, added, changed_infos, gone, modseq)

    def _current_name(self, entry: Entry) -> str | None:
        """Where ``entry``'s file is now, after another process or program renamed it."""
        assert self.db is not None
        candidates = [self.db.name_of(entry.info.uid), f"new/{entry.base}"]
        for rel in candidates:
            if rel is not None and os.path.lexists(self.path / rel):
                return rel
        prefix = entry.base + ":"
        for name in _fs.listdir(self.path / "cur"):
            if name.startswith(prefix) or name == entry.base:
                return f"cur/{name}"
        return None

    def _rename(self, entry: Entry, rel: str) -> bool:
        """Rename ``entry``'s file to ``rel``, following outside renames; False if it is gone."""
        for _ in range(2):
            try:
                os.rename(self.path / entry.name, self.path / rel)
            except FileNotFoundError:
                current = self._current_name(entry)
                if current is None:
                    self.needs_full_scan = True
                    return False
                entry.name = current
                continue
            entry.name = rel
            return True
        return False

    def _unlink(self, entry: Entry) -> None:
        try:
            os.unlink(self.path / entry.name)
        except FileNotFoundError:
            current = self._current_name(entry)
            if current is not None:
                os.unlink(self.path / current)

    def _move_to_cur(self, base: str, rel: str) -> str:
        """Maildir readers move ``new/`` files to ``cur/``; keeps ``new/`` small."""
        target = "cur/" + filename.build(base, "")
        try:
            os.rename(self.path / rel, self.path / target)
        except FileNotFoundError:
            return rel
        return target

    def _flags_from_name(self, rel: str, previous: frozenset[str]) -> frozenset[str]:
        letters = filename.parse(rel.split("/", 1)[1]).letters
        flags = filename.letters_to_flags(letters, self.keywords.letter_to_keyword)
        # Keywords past the 26 letters live only in the index: keep them.
        extra = {
            f
            for f in previous
            if f not in flagmod.MAILDIR_LETTERS and f not in self.keywords.keyword_to_letter
        }
        return flags | extra

    def _adopt(self, fresh: list[tuple[str, str]], modseq: int) -> list[MessageInfo]:
        """Give UIDs to files the index did not know (outside deliveries, lost commits)."""
        if not fresh:
            return []
        assert self.db is not None
        dovecot = uidlist.read(self.path) if not self._entries else None
        used = set(self._entries)

        def order(item: tuple[str, str]) -> tuple[int, str]:
            uid = filename.parse(item[1].split("/", 1)[1]).uid
            return (uid if uid is not None else 1 << 62, item[0])

        rows: list[Row] = []
        for base, rel in sorted(fresh, key=order):
            known = self.db.conn.execute(
                f"SELECT {ROW_COLUMNS} FROM messages WHERE base = ?", (base,)
            ).fetchone()
            if known is not None:  # indexed by another process under a name we missed
                self._remember(known)
                continue
            parsed = filename.parse(rel.split("/", 1)[1])
            uid = None
            if dovecot is not None and base in dovecot.uids and dovecot.uids[base] not in used:
                uid = dovecot.uids[base]
            elif parsed.uid is not None and parsed.uid >= self.uid_next and parsed.uid not in used:
                uid = parsed.uid  # our own file whose index commit was lost: keep its UID
            if uid is None:
                uid = self.uid_next
            self.uid_next = max(self.uid_next, uid + 1)
            used.add(uid)
            try:
                st = os.stat(self.path / rel)
            except FileNotFoundError:
                continue
            size = parsed.size if parsed.size is not None else st.st_size
            vsize = parsed.crlf_size
            if vsize is None:
                vsize = crlf_size_of(_fs.read_file(self.path / rel))
            flags = self._flags_from_name(rel, frozenset())
            rows.append((uid, base, rel, _flagtext(flags), size, vsize, st.st_mtime, modseq))
        rows.sort()
        self.db.insert_rows(rows)
        return [self._remember(row).info for row in rows]

    # ------------------------------------------------------------------- writing
    def add_prepared(self, prepared: list[Prepared], into_new: bool) -> list[MessageInfo]:
        """Give UIDs to fsynced ``tmp/`` files and rename them into place, in one transaction.

        The caller fsyncs the target directory afterwards, before acknowledging.
        """
        with self.lock:
            assert self.db is not None
            with self.db.write():
                self._pull()
                all_flags: frozenset[str] = frozenset().union(*(p.flags for p in prepared))
                self.keywords.ensure(all_flags)
                modseq = self.highest_modseq + 1
                rows: list[Row] = []
                for item in prepared:
                    uid = self.uid_next
                    self.uid_next += 1
                    base = filename.new_base(uid, item.size, item.crlf_size)
                    letters = filename.flags_to_letters(item.flags, self.keywords.keyword_to_letter)
                    rel = f"new/{base}" if into_new and not letters else (
                        "cur/" + filename.build(base, letters)
                    )
                    os.rename(item.tmp_path, self.path / rel)
                    rows.append(
                        (uid, base, rel, _flagtext(item.flags), item.size, item.crlf_size,
                         item.internal_date, modseq)
                    )
                self.db.insert_rows(rows)
                self.highest_modseq = modseq
                self.db.set_meta(uid_next=self.uid_next, highest_modseq=modseq)
            return [self._remember(row).info for row in rows]

    def store_flags(
        self,
        uids: list[int],
        op: flagmod.FlagOp,
        given: frozenset[str],
        unchanged_since: int | None,
    ) -> tuple[list[MessageInfo], list[int]]:
        with self.lock:
            assert self.db is not None
            with self.db.write():
                self._pull()
                self.keywords.ensure(given)
                modseq = self.highest_modseq + 1
                changed: list[MessageInfo] = []
                failed: list[int] = []
                updates: list[tuple[str, str, int, int]] = []
                for uid in uids:
                    entry = self._entries.get(uid)
                    if entry is None:
                        continue
                    if unchanged_since is not None and entry.info.modseq > unchanged_since:
                        failed.append(uid)
                        continue
                    new_flags = flagmod.apply(entry.info.flags, op, given)
                    if new_flags == entry.info.flags:
                        continue
                    letters = filename.flags_to_letters(
                        new_flags, self.keywords.keyword_to_letter
                    )
                    rel = "cur/" + filename.build(entry.base, letters)
                    if rel != entry.name and not self._rename(entry, rel):
                        continue  # the file is gone: the next sync reports the expunge
                    info = entry.info
                    entry.info = MessageInfo(uid, new_flags, info.size, info.internal_date, modseq)
                    updates.append((rel, _flagtext(new_flags), modseq, uid))
                    changed.append(entry.info)
                if updates:
                    self.db.update_rows(updates)
                    self.highest_modseq = modseq
                    self.db.set_meta(highest_modseq=modseq)
                    self._snapshot = None
            return changed, failed

    def expunge(self, uids: list[int], unlink: bool = True) -> list[int]:
        with self.lock:
            assert self.db is not None
            with self.db.write():
                self._pull()
                gone = sorted(u for u in set(uids) if u in self._entries)
                if not gone:
                    return []
                modseq = self.highest_modseq + 1
                for uid in gone:
                    if unlink:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(self.path / self._entries[uid].name)
                    self._forget(uid)
                self.db.delete_rows(gone, modseq)
                self.highest_modseq = modseq
                self.db.set_meta(highest_modseq=modseq)
            return gone

    def transfer_out(self, uids: list[int]) -> list[tuple[int, Path, MessageInfo]]:
        """Where each message to copy or move lives now (skipping expunged ones)."""
        with self.lock:
            found = []
            for uid in sorted(set(uids)):
                entry = self._entries.get(uid)
                if entry is not None:
                    found.append((uid, self.path / entry.name, entry.info))
            return found

    def transfer_in(
        self, items: list[tuple[int, Path, MessageInfo]], move: bool
    ) -> dict[int, int]:
        """Link (copy) or rename (move) files from another folder into this one."""
        with self.lock:
            assert self.db is not None
            mapping: dict[int, int] = {}
            with self.db.write():
                self._pull()
                self.keywords.ensure(frozenset().union(*(i[2].flags for i in items)))
                modseq = self.highest_modseq + 1
                rows: list[Row] = []
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
                        (uid, base, rel, _flagtext(info.flags), size, info.size,
                         info.internal_date, modseq)
                    )
                if rows:
                    self.db.insert_rows(rows)
                    self.highest_modseq = modseq
                    self.db.set_meta(uid_next=self.uid_next, highest_modseq=modseq)
            for row in rows:
                self._remember(row)
            return mapping

    def infos(self, uids: list[int]) -> list[MessageInfo]:
        with self.lock:
            return [self._entries[u].info for u in uids if u in self._entries]

    # ------------------------------------------------------- CONDSTORE, \Recent, POP3, cache
    def changes_since(self, modseq: int) -> ChangesSince:
        with self.lock:
            assert self.db is not None
            changed = tuple(
                e.info for u, e in sorted(self._entries.items()) if e.info.modseq > modseq
            )
            return ChangesSince(changed, tuple(self.db.expunged_since(modseq)))

    def claim_recent(self) -> int:
        with self.lock:
            assert self.db is not None
            with self.db.write():
                first = self.db.meta().get("first_recent_uid", 1)
                uid_next = self.db.meta()["uid_next"]
                self.db.set_meta(first_recent_uid=uid_next)
            return first

    def mark_retrieved(self, uids: list[int]) -> None:
        with self.lock:
            assert self.db is not None
            with self.db.write():
                self.db.conn.executemany(
                    "UPDATE messages SET retrieved = 1 WHERE uid = ?", [(u,) for u in uids]
                )

    def retrieved_uids(self) -> frozenset[int]:
        with self.lock:
            assert self.db is not None
            rows = self.db.conn.execute("SELECT uid FROM messages WHERE retrieved = 1")
            return frozenset(r[0] for r in rows)

    def get_cached(self, uid: int, key: str) -> bytes | None:
        with self.lock:
            assert self.db is not None
            row = self.db.conn.execute(
                "SELECT value FROM cache WHERE uid = ? AND key = ?", (uid, key)
            ).fetchone()
            return None if row is None else bytes(row[0])

    def set_cached(self, uid: int, key: str, value: bytes) -> None:
        with self.lock:
            assert self.db is not None
            if uid not in self._entries:
                return
            with self.db.write():
                self.db.conn.execute(
                    "INSERT OR REPLACE INTO cache(uid, key, value) VALUES (?, ?, ?)",
                    (uid, key, value),
                )

    def keyword_names(self) -> list[str]:
        with self.lock:
            self.keywords.reload()
            names = set(self.keywords.keyword_to_letter)
            for entry in self._entries.values():
                names.update(f for f in entry.info.flags if not f.startswith("\\"))
            return sorted(names)


def _flagtext(flags: frozenset[str]) -> str:
    return " ".join(sorted(flags))


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


def _changes(
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
        out.append(FlagsChanged(mailbox, tuple(sorted(changed, key=lambda i: i.uid))))
    if added:
        out.append(MessagesAdded(mailbox, tuple(sorted(added, key=lambda i: i.uid))))
    return out
