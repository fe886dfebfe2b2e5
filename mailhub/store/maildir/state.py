"""The in-memory view of one folder: what every session of this process shares.

Three plain dicts rather than one object per message: a 100,000-message folder is loaded at
every server start, and building 100,000 small objects is most of that cost. Insertion order is
UID order as long as UIDs only grow (they do, except when files with older UIDs are adopted),
so a snapshot is usually a plain copy of the values.
"""

from __future__ import annotations

import collections
import operator
import os
import threading
from collections.abc import Collection
from pathlib import Path

from mailhub.errors import MailError, MailErrorKind
from mailhub.store import flags as flagmod
from mailhub.store.maildir import _fs
from mailhub.store.maildir.cache_memo import MEMO, new_scope
from mailhub.store.maildir.index import IndexDB
from mailhub.store.maildir.keywords import KeywordTable
from mailhub.store.model import MailboxStatus, MessageInfo, Snapshot


def base_of(rel: str) -> str:
    """The stable part of a "cur/<base>:2,<flags>" or "new/<base>" name."""
    return rel[4:].partition(":")[0]


def flagtext(flags: frozenset[str]) -> str:
    return " ".join(sorted(flags))


class FolderState:
    """Memory, index handle and locks of an open folder."""

    def __init__(self, path: Path, mailbox: str) -> None:
        self.path = path
        self.mailbox = mailbox
        self.lock = threading.RLock()
        self.db: IndexDB | None = None
        self.keywords = KeywordTable(path)
        self.uidvalidity = 0
        # This folder's key space in the process's cache memo (renewed with UIDVALIDITY).
        self.memo_scope = new_scope()
        self.uid_next = 1
        self.highest_modseq = 1
        self.infos: dict[int, MessageInfo] = {}
        self.names: dict[int, str] = {}  # uid -> "cur/<file>" or "new/<file>"
        self.by_base: dict[str, int] = {}
        self._ordered = True
        self._snapshot: tuple[MessageInfo, ...] | None = None
        # (unseen, deleted, total size), counted once and then kept up to date through flag
        # changes, so a polled STATUS costs nothing per message; None = count again.
        self._counts: tuple[int, int, int] | None = None
        self._flagsets: dict[str, frozenset[str]] = {"": frozenset()}
        self.needs_full_scan = False
        # Names this process is renaming into place right now (worker thread), so the
        # watcher (event loop thread) can tell its own deliveries from outside changes.
        self.arriving: set[str] = set()

    def _db(self) -> IndexDB:
        if self.db is None:
            raise MailError(MailErrorKind.TEMP, f"folder {self.mailbox!r} was closed meanwhile")
        return self.db

    # --------------------------------------------------------------- memory updates
    def flagset(self, text: str) -> frozenset[str]:
        found = self._flagsets.get(text)
        if found is None:
            found = frozenset(text.split(" "))
            self._flagsets[text] = found
        return found

    def remember(self, info: MessageInfo, rel: str) -> MessageInfo:
        uid = info.uid
        if uid not in self.infos and self.infos and uid < next(reversed(self.infos)):
            self._ordered = False
        self.infos[uid] = info
        self.names[uid] = rel
        self.by_base[base_of(rel)] = uid
        self._snapshot = None
        self._counts = None
        return info

    def forget(self, uid: int) -> None:
        MEMO.forget(self.memo_scope, uid)
        if self.infos.pop(uid, None) is not None:
            self.by_base.pop(base_of(self.names.pop(uid)), None)
            self._snapshot = None
            self._counts = None

    def set_info(self, info: MessageInfo) -> None:
        old = self.infos.get(info.uid)
        self.infos[info.uid] = info
        self._snapshot = None
        counts = self._counts
        if counts is not None:
            self._counts = None if old is None else _recounted(counts, old, info)

    def clear(self) -> None:
        self.infos.clear()
        self.names.clear()
        self.by_base.clear()
        self._ordered = True
        self._snapshot = None
        self._counts = None

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> Snapshot:
        with self.lock:
            if self._snapshot is None:
                if not self._ordered:
                    self.infos = {u: self.infos[u] for u in sorted(self.infos)}
                    self._ordered = True
                self._snapshot = tuple(self.infos.values())
            return Snapshot(
                self.mailbox, self.uidvalidity, self.uid_next, self.highest_modseq, self._snapshot
            )

    def status(self) -> MailboxStatus:
        """From the counters and the memory: no snapshot tuple is built for a STATUS poll."""
        with self.lock:
            counts = self._counts
            if counts is None:
                counts = self._counts = _count(self.infos.values())
            unseen, deleted, size = counts
            return MailboxStatus(
                len(self.infos),
                unseen,
                self.uid_next,
                self.uidvalidity,
                self.highest_modseq,
                size,
                deleted,
            )

    def infos_of(self, uids: list[int]) -> list[MessageInfo]:
        with self.lock:
            return [self.infos[u] for u in uids if u in self.infos]

    def path_of(self, uid: int) -> str:
        """Where the message's file is now; raises EXPUNGED if it is gone.

        A plain string: it is built for every message read, and pathlib joins cost more than
        the read of a small message.
        """
        rel = self.names.get(uid)
        if rel is None:
            raise MailError(MailErrorKind.EXPUNGED, f"message UID {uid} was expunged")
        return f"{self.path}/{rel}"

    def current_name(self, uid: int) -> str | None:
        """Where a message's file is now, after another process or program renamed it."""
        base = base_of(self.names[uid])
        for rel in (self._db().name_of(uid), f"new/{base}"):
            if rel is not None and os.path.lexists(os.path.join(self.path, rel)):
                return rel
        prefix = base + ":"
        for name in _fs.listdir(self.path / "cur"):
            if name.startswith(prefix) or name == base:
                return f"cur/{name}"
        return None

    def rename_file(self, uid: int, rel: str) -> bool:
        """Rename a message's file to ``rel``, following outside renames; False if it is gone."""
        for _ in range(2):
            try:
                os.rename(os.path.join(self.path, self.names[uid]), os.path.join(self.path, rel))
            except FileNotFoundError:
                current = self.current_name(uid)
                if current is None:
                    self.needs_full_scan = True
                    return False
                self.names[uid] = current
                continue
            self.names[uid] = rel
            return True
        return False

    def unlink_file(self, uid: int) -> None:
        try:
            os.unlink(os.path.join(self.path, self.names[uid]))
        except FileNotFoundError:
            current = self.current_name(uid)
            if current is not None:
                os.unlink(os.path.join(self.path, current))


_FLAGS_OF = operator.attrgetter("flags")
_SIZE_OF = operator.attrgetter("size")


def _count(messages: Collection[MessageInfo]) -> tuple[int, int, int]:
    """(unseen, deleted, total size); map/Counter keep the per-message work in C."""
    by_flags = collections.Counter(map(_FLAGS_OF, messages))
    unseen = sum(n for flags, n in by_flags.items() if flagmod.SEEN not in flags)
    deleted = sum(n for flags, n in by_flags.items() if flagmod.DELETED in flags)
    return unseen, deleted, sum(map(_SIZE_OF, messages))


def _recounted(
    counts: tuple[int, int, int], old: MessageInfo, new: MessageInfo
) -> tuple[int, int, int]:
    """``counts`` after one message changed from ``old`` to ``new``."""
    unseen, deleted, size = counts
    seen = flagmod.SEEN
    unseen += (seen in old.flags) - (seen in new.flags)
    gone = flagmod.DELETED
    deleted += (gone in new.flags) - (gone in old.flags)
    return unseen, deleted, size + new.size - old.size
