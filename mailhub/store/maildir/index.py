"""The per-folder index: SQLite in WAL mode, one database file inside each Maildir folder.

Why SQLite: it is crash-safe (a killed process never corrupts it), safe for several processes
at once (the server and ``mailhub deliver`` write the same folders), ships with Python, and
answers "everything above MODSEQ n" with an index instead of a hand-written log format.
``synchronous=NORMAL`` keeps commits free of fsync; durability of UIDs does not depend on it
because every message file carries its UID in its name (see ``filename``), so a commit lost
to a power failure is rebuilt from the files.

What the index holds that disk cannot: UIDVALIDITY, UIDs, MODSEQs, the expunge log (for
QRESYNC), \\Recent bookkeeping, POP3 retrieval marks, and a cache of parsed structure. Flags are
cached here too but the file names are the authority for them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mailhub.store.maildir.checkpointer import BACKSTOP_PAGES, CHECKPOINT_EVERY, request_checkpoint

FILE_NAME = "mailhub-index.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    uid INTEGER PRIMARY KEY,
    base TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    flags TEXT NOT NULL,
    size INTEGER NOT NULL,
    vsize INTEGER NOT NULL,
    idate REAL NOT NULL,
    modseq INTEGER NOT NULL,
    retrieved INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_modseq ON messages(modseq);
CREATE TABLE IF NOT EXISTS expunged (uid INTEGER PRIMARY KEY, modseq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS expunged_modseq ON expunged(modseq);
CREATE TABLE IF NOT EXISTS cache (
    uid INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (uid, key)
);
"""

Row = tuple[int, str, str, str, int, int, float, int]  # uid base name flags size vsize idate modseq
ROW_COLUMNS = "uid, base, name, flags, size, vsize, idate, modseq"


# How long a writer waits for another process's write lock (sqlite3's ``timeout``).
_BUSY_TIMEOUT_S = 60.0
_RESTORE_BUSY_TIMEOUT = f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}"


class IndexDB:
    """A connection to one folder's index. Not thread-safe: the folder serialises access."""

    def __init__(self, folder_dir: Path) -> None:
        self.path = folder_dir / FILE_NAME
        self.conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_S
        )
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        # checkpoints happen on a background thread (see ``checkpointer``)
        self.conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        self._commits = 0
        with self.write():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``BEGIN IMMEDIATE`` takes the cross-process write lock first."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        self._committed()

    def _committed(self) -> None:
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY:
            self._commits = 0
            request_checkpoint(self.path)

    @contextmanager
    def write_now(self) -> Iterator[sqlite3.Connection | None]:
        """``write`` without ever waiting, for the event loop thread: yields None (and starts
        no transaction) when another connection holds the write lock, so the caller can hand
        the work to a worker thread instead of stalling every session for the busy timeout."""
        conn = self.conn
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
            began = True
        except sqlite3.OperationalError:
            began = False
        finally:
            conn.execute(_RESTORE_BUSY_TIMEOUT)
        if not began:
            yield None
            return
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._committed()

    def data_version(self) -> int:
        """Changes when another connection (process) committed (SQLite ``PRAGMA data_version``)."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def meta(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}

    def set_meta(self, **values: int) -> None:
        self.conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )

    def is_empty(self) -> bool:
        """No message rows (a new or rebuilt index)."""
        return self.conn.execute("SELECT 1 FROM messages LIMIT 1").fetchone() is None

    def all_rows(self) -> list[Row]:
        return self.conn.execute(f"SELECT {ROW_COLUMNS} FROM messages ORDER BY uid").fetchall()

    def rows_since(self, modseq: int) -> list[Row]:
        return self.conn.execute(
            f"SELECT {ROW_COLUMNS} FROM messages WHERE modseq > ? ORDER BY uid", (modseq,)
        ).fetchall()

    def expunged_since(self, modseq: int) -> list[int]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT uid FROM expunged WHERE modseq > ? ORDER BY uid", (modseq,)
            )
        ]

    def insert_rows(self, rows: Iterable[Row]) -> None:
        self.conn.executemany(
            f"INSERT INTO messages({ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
        )

    def put_cache(self, rows: list[tuple[int, str, bytes]]) -> None:
        """(uid, key, value) tuples, replacing what the cache held for them."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO cache(uid, key, value) VALUES (?, ?, ?)", rows
        )

    def update_rows(self, updates: list[tuple[str, str, int, int]]) -> None:
        """(name, flags, modseq, uid) tuples."""
        self.conn.executemany(
            "UPDATE messages SET name = ?, flags = ?, modseq = ? WHERE uid = ?", updates
        )

    def update_names(self, updates: list[tuple[str, int]]) -> None:
        self.conn.executemany("UPDATE messages SET name = ? WHERE uid = ?", updates)

    def delete_rows(self, uids: list[int], modseq: int) -> None:
        params = [(u,) for u in uids]
        self.conn.executemany("DELETE FROM messages WHERE uid = ?", params)
        self.conn.executemany("DELETE FROM cache WHERE uid = ?", params)
        self.conn.executemany(
            "INSERT OR REPLACE INTO expunged(uid, modseq) VALUES (?, ?)",
            [(u, modseq) for u in uids],
        )

    def name_of(self, uid: int) -> str | None:
        row = self.conn.execute("SELECT name FROM messages WHERE uid = ?", (uid,)).fetchone()
        return None if row is None else str(row[0])
