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
from pathlib import Path

_tmp_counter = itertools.count()

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


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)
