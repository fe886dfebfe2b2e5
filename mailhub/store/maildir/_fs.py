"""The store's blocking filesystem primitives, in one place.

Everything here blocks; callers run it on a worker thread (``asyncio.to_thread``) when it can
take long (fsync, big files, directory scans). Durability rules live here: a message file is
fsynced before it is renamed into place, and its directory is fsynced after, so a message that
was acknowledged survives a crash at any instant.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import time
from pathlib import Path

from mailhub.store.maildir import filename

_tmp_counter = itertools.count()

# The Maildir convention (qmail's maildir(5), Dovecot): a file in tmp/ untouched this long was
# abandoned by whatever program wrote it.
STALE_TMP_SECONDS = 36 * 3600

FILE_MODE = 0o600
DIR_MODE = 0o700


def write_new_file(path: Path, data: bytes, mtime: float | None = None) -> None:
    """Create ``path`` exclusively, write and fsync ``data``, and set its mtime."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if mtime is not None:
            os.utime(fd, (mtime, mtime))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make renames and creations in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{next(_tmp_counter)}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    write_new_file(tmp, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def make_maildir(path: Path) -> None:
    """Create ``path`` with ``cur/ new/ tmp/`` (idempotent)."""
    for sub in ("", "cur", "new", "tmp"):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path / sub, DIR_MODE)


def listdir(path: Path) -> list[str]:
    """Names in ``path`` without dot files; empty if the directory is missing."""
    try:
        return [n for n in os.listdir(path) if not n.startswith(".")]
    except FileNotFoundError:
        return []


def read_file(path: Path | str) -> bytes:
    """The whole file; unbuffered, which halves the cost for small messages."""
    with open(path, "rb", buffering=0) as fh:
        return fh.readall()


def read_small(path: str, size_hint: int) -> bytes:
    """A small file read whole with plain ``os.read`` calls, read until EOF: a third cheaper
    than ``open().readall()`` (no file object, no fstat). ``size_hint`` is the CRLF size,
    never smaller than the LF file, so the first read normally gets everything."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, size_hint + 1)
        while more := os.read(fd, 65536):
            data += more
        return data
    finally:
        os.close(fd)


def read_range(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def sweep_tmp(tmp_dir: Path, now: float | None = None) -> int:
    """Remove files in ``tmp/`` that no writer will ever rename into place; returns how many.

    Why: a message written to ``tmp/`` (a prepared delivery, an APPEND in progress) is
    acknowledged only after it was renamed into ``new/`` or ``cur/``, so a file its writer
    left behind was never acknowledged to anyone. Files named by ``filename.unique()`` on this
    host are removed as soon as their process is gone; any other file once its status has not
    changed for ``STALE_TMP_SECONDS`` (ctime: a writer setting an old mtime does not count).
    Directories (an account's deleted-folder graveyard in INBOX's ``tmp/``) are left alone.
    """
    removed = 0
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(tmp_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            pid = filename.writer_pid(entry.name)
            abandoned = pid is not None and not _process_exists(pid)
            if abandoned or now - entry.stat(follow_symlinks=False).st_ctime > STALE_TMP_SECONDS:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process
        return True
    return True


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)
