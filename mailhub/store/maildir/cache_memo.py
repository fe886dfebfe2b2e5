"""Recently used rows of the index's ``cache`` table, kept in memory.

Why: a FETCH of one message's ENVELOPE (what a client sends for each new or changed
message) spent a third of its time in the SQLite query for the cached structure. Dovecot
reads its cache file through ``mmap``; this is our equivalent, with a fixed memory bound.

A cached value describes a message's bytes, which never change for a UID, and a UID is
never reused within one UIDVALIDITY. So an entry never goes stale: each open folder keys its
entries with a scope number that is renewed whenever its UIDVALIDITY is (re)loaded
differently (a folder closed and opened again gets a new one too, its old entries age out).
An expunged message's entries are dropped with its index rows. One memo serves every folder of
the process within one byte budget, least recently used first out. Thread-safe (lookups come
from the event loop and from worker threads).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable

__all__ = ["MEMO", "CacheMemo", "new_scope"]

# Enough for the structure of about 10,000 typical messages; a process serves few folders at
# a time, and a bigger working set still works, from SQLite.
DEFAULT_BUDGET = 16 * 1024 * 1024
# Bookkeeping per entry (key tuple, dict slot, bytes header), counted against the budget.
_OVERHEAD = 150

_scopes = itertools.count(1)


def new_scope() -> int:
    """A scope number no folder has used in this process."""
    return next(_scopes)


class CacheMemo:
    """``(scope, uid, key) -> value`` with least-recently-used eviction."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.used = 0
        self._entries: dict[tuple[int, int, str], bytes] = {}
        self._keys: set[str] = set()  # every key ever put: few (one per kind of value)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(
        self, scope: int, uids: Iterable[int], key: str
    ) -> tuple[dict[int, bytes], list[int]]:
        """The values held for ``uids``, and the UIDs not held (in the order given)."""
        found: dict[int, bytes] = {}
        missing: list[int] = []
        entries = self._entries
        with self._lock:
            for uid in uids:
                k = (scope, uid, key)
                value = entries.pop(k, None)
                if value is None:
                    missing.append(uid)
                else:
                    entries[k] = value  # re-inserted: now the most recently used
                    found[uid] = value
        return found, missing

    def put_many(self, scope: int, key: str, rows: Iterable[tuple[int, bytes]]) -> None:
        entries = self._entries
        with self._lock:
            self._keys.add(key)
            for uid, value in rows:
                k = (scope, uid, key)
                old = entries.pop(k, None)
                if old is not None:
                    self.used -= len(old) + _OVERHEAD
                size = len(value) + _OVERHEAD
                if size > self.budget:
                    continue
                entries[k] = value
                self.used += size
            if self.used > self.budget:
                self._evict()

    def _evict(self) -> None:
        """Drop the least recently used entries down to 90% of the budget, so that a full
        memo pays for one walk per batch of inserts rather than one per insert."""
        entries = self._entries
        excess = self.used - self.budget * 9 // 10
        dropped: list[tuple[int, int, str]] = []
        freed = 0
        for k, value in entries.items():
            if freed >= excess:
                break
            dropped.append(k)
            freed += len(value) + _OVERHEAD
        for k in dropped:
            del entries[k]
        self.used -= freed

    def forget(self, scope: int, uid: int) -> None:
        """Drop a message's values (expunged: the index dropped its rows too)."""
        entries = self._entries
        with self._lock:
            for key in self._keys:
                old = entries.pop((scope, uid, key), None)
                if old is not None:
                    self.used -= len(old) + _OVERHEAD

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.used = 0


MEMO = CacheMemo()
"""The process's memo, shared by every open folder."""
