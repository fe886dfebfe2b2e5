"""Noticing outside changes to open folders: Linux inotify, with polling as the fallback.

inotify tells which file names appeared or vanished in ``new/`` and ``cur/``, so a folder can
reconcile just those names instead of rescanning 100,000 files, and nothing runs while nothing
happens (idle IMAP sessions cost no CPU). Where inotify is unavailable (another OS, watch limit
reached), the store polls directory mtimes of folders that someone is watching.

The stdlib has no inotify binding and the design card allows no new dependency for it, so it is
called through ``ctypes``: three libc functions.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

_MASK = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
_HEADER = struct.Struct("iIII")

# Called with the changed name ("" when the watcher lost track and a full rescan is needed)
# and whether the name appeared (created, moved in) rather than vanished.
NameCallback = Callable[[str, bool], None]


class Inotify:
    """One inotify instance serving every watched directory of the process."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        libc_name = ctypes.util.find_library("c") or "libc.so.6"
        self._libc = ctypes.CDLL(libc_name, use_errno=True)
        self._libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._fd = fd
        self._loop = loop
        self._callbacks: dict[int, NameCallback] = {}
        loop.add_reader(fd, self._on_readable)

    def watch(self, path: Path, callback: NameCallback) -> int:
        """Watch a directory; raises OSError when the kernel refuses (e.g. watch limit)."""
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), _MASK)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path} failed")
        self._callbacks[wd] = callback
        return int(wd)

    def unwatch(self, wd: int) -> None:
        if self._callbacks.pop(wd, None) is not None:
            self._libc.inotify_rm_watch(self._fd, wd)

    def close(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._callbacks.clear()

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, 256 * 1024)
        except BlockingIOError:
            return
        offset = 0
        while offset + _HEADER.size <= len(data):
            wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            raw = data[offset + _HEADER.size : offset + _HEADER.size + length]
            offset += _HEADER.size + length
            if mask & IN_Q_OVERFLOW:
                for callback in list(self._callbacks.values()):
                    callback("", False)
                continue
            target = self._callbacks.get(wd)
            if target is None or mask & IN_IGNORED:
                continue
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                target("", False)
                continue
            name = os.fsdecode(raw.rstrip(b"\0"))
            if name and not name.startswith("."):
                target(name, bool(mask & (IN_CREATE | IN_MOVED_TO)))


def try_inotify(loop: asyncio.AbstractEventLoop) -> Inotify | None:
    """An inotify instance, or None (then the store polls)."""
    try:
        return Inotify(loop)
    except (OSError, AttributeError) as exc:
        log.info("inotify unavailable (%s); polling folders for outside changes", exc)
        return None
