"""WAL checkpoints of the folder indexes, on a background thread instead of in a commit.

Why: SQLite's automatic checkpoint runs inside whichever COMMIT pushes the WAL past its
threshold, and with ``synchronous=NORMAL`` a checkpoint fsyncs the WAL and the database. So one
flag STORE in a few hundred took 20 ms instead of 30 µs: measured on a folder under a stream of
STOREs, 1% of the commits (the checkpoints) were 60% of all commit time, about 50 µs on
every STORE. Here the serving connections never checkpoint on their own; every
``CHECKPOINT_EVERY`` commits a folder's index is handed to this thread, which runs a
``PASSIVE`` checkpoint on a connection of its own (that kind never blocks readers or writers).

A backstop stays: ``BACKSTOP_PAGES`` keeps SQLite's automatic checkpoint for a WAL that grew
that large anyway (the thread stuck behind a slow disk). A process that never reaches
``CHECKPOINT_EVERY`` commits (``mailhub deliver``) leaves the WAL to the next checkpoint; the
last connection to close checkpoints it too (SQLite does that itself).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from pathlib import Path

__all__ = ["BACKSTOP_PAGES", "CHECKPOINT_EVERY", "request_checkpoint"]

log = logging.getLogger("mailhub.store")

CHECKPOINT_EVERY = 256  # commits of one connection between two background checkpoints
BACKSTOP_PAGES = 8192  # about 32 MB of WAL: then a commit checkpoints after all

_queue: queue.SimpleQueue[Path] = queue.SimpleQueue()
_queued: set[Path] = set()
_lock = threading.Lock()
_thread: threading.Thread | None = None


def request_checkpoint(db_path: Path) -> None:
    """Checkpoint ``db_path`` soon, on the background thread (once, however often asked)."""
    global _thread
    with _lock:
        if db_path in _queued:
            return
        _queued.add(db_path)
        if _thread is None:
            _thread = threading.Thread(target=_work, name="index-checkpoint", daemon=True)
            _thread.start()
    _queue.put(db_path)


def _work() -> None:
    while True:
        path = _queue.get()
        with _lock:
            _queued.discard(path)
        checkpoint(path)


def checkpoint(db_path: Path) -> None:
    """One PASSIVE checkpoint; failures are only logged (the next one catches up)."""
    try:
        # mode=rw: a folder deleted meanwhile must not get an empty index created again
        conn = sqlite3.connect(db_path.absolute().as_uri() + "?mode=rw", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        log.debug("index checkpoint of %s skipped: %s", db_path, exc)
        return
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error as exc:
        log.warning("index checkpoint of %s failed (retried later): %s", db_path, exc)
    finally:
        conn.close()
