"""WAL checkpoints run on a background thread, not inside a client's COMMIT."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from mailhub.store.maildir.checkpointer import BACKSTOP_PAGES, CHECKPOINT_EVERY, checkpoint
from mailhub.store.maildir.index import FILE_NAME, IndexDB


def _rows_in_main_file(db: Path, scratch: Path) -> int:
    """Rows visible from the database file alone (what a checkpoint has copied there)."""
    copy = scratch / "copy.sqlite"
    shutil.copyfile(db, copy)  # without its -wal: only checkpointed pages
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT count(*) FROM cache").fetchone()[0])
    except sqlite3.OperationalError:  # not even the schema was checkpointed yet
        return 0
    finally:
        conn.close()


def test_commits_are_checkpointed_in_the_background(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    db = IndexDB(folder)
    assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
    for uid in range(1, CHECKPOINT_EVERY + 1):
        with db.write():
            db.put_cache([(uid, "k", b"v" * 100)])
    deadline = time.monotonic() + 10
    while _rows_in_main_file(folder / FILE_NAME, tmp_path) < CHECKPOINT_EVERY:
        assert time.monotonic() < deadline, "no background checkpoint within 10 s"
        time.sleep(0.05)
    db.close()


def test_fewer_commits_leave_the_wal_alone(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    db = IndexDB(folder)
    with db.write():
        db.put_cache([(1, "k", b"v")])
    time.sleep(0.2)
    assert _rows_in_main_file(folder / FILE_NAME, tmp_path) == 0
    db.close()


def test_checkpoint_of_a_deleted_folder_creates_nothing(tmp_path: Path) -> None:
    gone = tmp_path / "deleted" / FILE_NAME
    checkpoint(gone)
    assert not gone.parent.exists()
    (tmp_path / "deleted").mkdir()
    checkpoint(gone)
    assert not gone.exists()
