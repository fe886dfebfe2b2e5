"""Maildir++ quota bookkeeping in the account's ``maildirsize`` file.

Format (Courier's Maildir++ quota spec, also used by Dovecot's ``maildir`` quota backend):
the first line holds the limits (``<bytes>S,<count>C``), each further line a change
``<bytes> <count>`` (negative for removals). The sum is the usage. The file is recalculated
from the folders when it is missing, too long (over 5120 bytes, as the spec says), or its
limits line no longer matches the account's limits. Sizes are file sizes (``S=``).

Why a cache: a delivery to an account with a quota asks for the usage twice (at RCPT and when
the store appends) and then appends a line, and parsing a file of a few hundred lines costs
~0.3 ms each time. The parsed sums are kept together with the file's identity (inode, size,
times), taken *before* the file is read: any later write by anybody (an append grows the file,
a rewrite replaces its inode) changes the identity, and the next call parses again. Our own
appends update the cached sums when the file grew by exactly our line (nobody else wrote in
between), so a run of deliveries costs one ``stat`` per question instead of a parse.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mailhub.store.maildir import _fs
from mailhub.store.model import QuotaLimits

FILE_NAME = "maildirsize"
_MAX_FILE = 5120

_Stamp = tuple[int, int, int, int]  # (inode, size, mtime_ns, ctime_ns)


def _limits_line(limits: QuotaLimits) -> str:
    parts = []
    if limits.max_bytes is not None:
        parts.append(f"{limits.max_bytes}S")
    if limits.max_messages is not None:
        parts.append(f"{limits.max_messages}C")
    return ",".join(parts) or "0S"


def _stamp(st: os.stat_result) -> _Stamp:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class MaildirSize:
    """Usage of one account, kept in ``maildirsize``."""

    def __init__(self, root: Path, recalculate: Callable[[], tuple[int, int]]) -> None:
        self.path = root / FILE_NAME
        self._recalculate = recalculate
        # (file identity, limits line, raw sums) of the last parse; replaced as a whole, so a
        # reader on another thread always sees one consistent tuple.
        self._known: tuple[_Stamp, str, tuple[int, int]] | None = None

    def usage(self, limits: QuotaLimits) -> tuple[int, int]:
        """(bytes, messages) in use, recalculating the file when it cannot be trusted."""
        want = _limits_line(limits)
        try:
            stamp: _Stamp | None = _stamp(os.stat(self.path))
        except FileNotFoundError:
            stamp = None
        known = self._known
        if stamp is not None and known is not None and known[0] == stamp and known[1] == want:
            return _clamp(known[2])
        try:
            text = self.path.read_text("ascii", errors="replace")
        except FileNotFoundError:
            text = ""
        lines = text.splitlines()
        if not lines or len(text) > _MAX_FILE or lines[0].strip() != want:
            return self._rewrite(limits)
        used_bytes = used_count = 0
        for line in lines[1:]:
            fields = line.split()
            if len(fields) != 2:
                return self._rewrite(limits)
            try:
                used_bytes += int(fields[0])
                used_count += int(fields[1])
            except ValueError:
                return self._rewrite(limits)
        if stamp is not None:
            # The stamp is from before the read: if the file changed meanwhile, the next
            # call sees another stamp and parses again (never a stale answer).
            self._known = (stamp, want, (used_bytes, used_count))
        return _clamp((used_bytes, used_count))

    def add(self, size: int, count: int) -> None:
        """Record a change with one ``O_APPEND`` write (atomic for such short lines)."""
        if size == 0 and count == 0:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # no quota file: nothing to keep up to date (it is rebuilt when needed)
        try:
            line = f"{size} {count}\n".encode("ascii")
            known = self._known
            before = _stamp(os.fstat(fd))
            os.write(fd, line)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if known is None or known[0] != before:
            self._known = None
        elif after.st_size != before[1] + len(line) or after.st_size > _MAX_FILE:
            self._known = None  # somebody else appended too, or the file is due a rewrite
        else:
            used_bytes, used_count = known[2]
            self._known = (_stamp(after), known[1], (used_bytes + size, used_count + count))

    def _rewrite(self, limits: QuotaLimits) -> tuple[int, int]:
        self._known = None  # the next call parses the new two-line file (and caches it)
        used_bytes, used_count = self._recalculate()
        _fs.write_atomic(
            self.path, f"{_limits_line(limits)}\n{used_bytes} {used_count}\n".encode("ascii")
        )
        return used_bytes, used_count


def _clamp(sums: tuple[int, int]) -> tuple[int, int]:
    return max(sums[0], 0), max(sums[1], 0)
