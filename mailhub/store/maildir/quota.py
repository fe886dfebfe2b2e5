"""Maildir++ quota bookkeeping in the account's ``maildirsize`` file.

Format (Courier's Maildir++ quota spec, also used by Dovecot's ``maildir`` quota backend):
the first line holds the limits (``<bytes>S,<count>C``), each further line a change
``<bytes> <count>`` (negative for removals). The sum is the usage. The file is recalculated
from the folders when it is missing, too long (over 5120 bytes, as the spec says), or its
limits line no longer matches the account's limits. Sizes are file sizes (``S=``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mailhub.store.maildir import _fs
from mailhub.store.model import QuotaLimits

FILE_NAME = "maildirsize"
_MAX_FILE = 5120


def _limits_line(limits: QuotaLimits) -> str:
    parts = []
    if limits.max_bytes is not None:
        parts.append(f"{limits.max_bytes}S")
    if limits.max_messages is not None:
        parts.append(f"{limits.max_messages}C")
    return ",".join(parts) or "0S"


class MaildirSize:
    """Usage of one account, kept in ``maildirsize``."""

    def __init__(self, root: Path, recalculate: Callable[[], tuple[int, int]]) -> None:
        self.path = root / FILE_NAME
        self._recalculate = recalculate

    def usage(self, limits: QuotaLimits) -> tuple[int, int]:
        """(bytes, messages) in use, recalculating the file when it cannot be trusted."""
        try:
            text = self.path.read_text("ascii", errors="replace")
        except FileNotFoundError:
            text = ""
        lines = text.splitlines()
        if not lines or len(text) > _MAX_FILE or lines[0].strip() != _limits_line(limits):
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
        return max(used_bytes, 0), max(used_count, 0)

    def add(self, size: int, count: int) -> None:
        """Record a change with one ``O_APPEND`` write (atomic for such short lines)."""
        if not self.path.exists() or (size == 0 and count == 0):
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            os.write(fd, f"{size} {count}\n".encode("ascii"))
        finally:
            os.close(fd)

    def _rewrite(self, limits: QuotaLimits) -> tuple[int, int]:
        used_bytes, used_count = self._recalculate()
        _fs.write_atomic(
            self.path, f"{_limits_line(limits)}\n{used_bytes} {used_count}\n".encode("ascii")
        )
        return used_bytes, used_count
