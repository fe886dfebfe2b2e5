"""Bringing a folder's memory and index in line with its files and with other processes.

Two sources of outside change: other mailhub processes commit to the index (seen through
SQLite's ``PRAGMA data_version`` and MODSEQs), and other programs rename, add or delete files
(seen through the watcher's name events, or a full rescan when a directory's mtime moved).
Every reconciliation runs inside the index's write transaction, after pulling the latest
commits, so two processes never adopt the same file twice.
"""

from __future__ import annotations

import os
import time

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
from mailhub.store.maildir.state import FolderState, base_of, flagtext
from mailhub.store.model import MessageInfo

# A directory mtime is trusted to mean "unchanged" only once it is this old when recorded:
# file systems stamp mtimes with a coarse clock, so two changes in one tick look like one.
MTIME_SETTLE_NS = 2_000_000_000
# Above this many unknown files, look them up in the index in one query instead of one each.
_BULK_LOOKUP = 64


def _stat_all(paths: list[str]) -> list[os.stat_result | None]:
    """stat() every file (None for one removed meanwhile). Serial on purpose: a thread pool
    measured 2.5x slower here, the threads fighting over the GIL between syscalls."""
    out: list[os.stat_result | None] = []
    for path in paths:
        try:
            out.append(os.stat(path))
        except FileNotFoundError:
            out.append(None)
    return out


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
            self.db = IndexDB(self.path)
            with self.db.write():
                meta = self.db.meta()
                if "uidvalidity" not in meta:
                    self._initialise_meta(self.db)
                    meta = self.db.meta()
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
            changes += self._reconcile(self._list_files(), scope=None)
            new_m, cur_m = self._dir_mtimes()
            db.set_meta(new_mtime=new_m, cur_mtime=cur_m, scanned_at=time.time_ns())
        self._data_version = db.data_version()
        return changes

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
        db = self._db()
        dovecot = uidlist.read(self.path) if not self.infos else None
        known = self._known_bases(fresh)
        used = set(self.infos)
        parsed_fresh = []
        for base, rel in fresh:
            if base in known:
                self._remember_row(known[base])
                continue
            parsed_fresh.append((filename.parse(rel[4:]), rel))
        parsed_fresh.sort(key=lambda p: (p[0].uid if p[0].uid is not None else 1 << 62, p[1]))
        # First the UIDs the files already have (Dovecot's uidlist, or our own U= from a lost
        # commit), so that no new message takes one of them; then new UIDs above all.
        first_new = self.uid_next
        assigned: list[tuple[int, filename.ParsedName, str]] = []
        later: list[tuple[filename.ParsedName, str]] = []
        for parsed, rel in parsed_fresh:
            uid = None
            if dovecot is not None:
                uid = dovecot.uids.get(parsed.base)
            elif parsed.uid is not None and parsed.uid >= first_new:
                uid = parsed.uid
            if uid is not None and uid not in used:
                used.add(uid)
                assigned.append((uid, parsed, rel))
            else:
                later.append((parsed, rel))
        self.uid_next = max(self.uid_next, max(used, default=0) + 1)
        for parsed, rel in later:
            assigned.append((self.uid_next, parsed, rel))
            self.uid_next += 1
        stats = _stat_all([os.path.join(self.path, rel) for _, _, rel in assigned])
        rows: list[Row] = []
        texts: dict[frozenset[str], str] = {}
        no_flags: frozenset[str] = frozenset()
        for (uid, parsed, rel), st in zip(assigned, stats, strict=True):
            if st is None:
                continue  # removed meanwhile
            size = parsed.size if parsed.size is not None else st.st_size
            vsize = parsed.crlf_size
            if vsize is None:
                vsize = crlf_size_of(_fs.read_file(self.path / rel))
            flags = self._flags_from_name(rel, no_flags)
            text = texts.get(flags)
            if text is None:
                text = texts[flags] = flagtext(flags)
            rows.append((uid, parsed.base, rel, text, size, vsize, st.st_mtime, modseq))
        rows.sort()
        db.insert_rows(rows)
        return self._remember_rows(rows)

    def _remember_rows(self, rows: list[Row]) -> list[MessageInfo]:
        """``_remember_row`` for many rows sorted by UID (an index rebuild: 100,000 rows)."""
        if not rows:
            return []
        infos, names, by_base, flagset = self.infos, self.names, self.by_base, self.flagset
        if infos and rows[0][0] < next(reversed(infos)):
            self._ordered = False
        out = []
        for uid, base, name, flags, _size, vsize, idate, modseq in rows:
            info = MessageInfo(uid, flagset(flags), vsize, idate, modseq)
            infos[uid] = info
            names[uid] = name
            by_base[base] = uid
            out.append(info)
        self._snapshot = None
        return out
