"""Reading Dovecot's ``dovecot-uidlist``, so a migrated folder keeps its UIDVALIDITY and UIDs.

Format (Dovecot wiki, "Maildir format"): version 3 starts with ``3 V<uidvalidity> N<next uid>
G<guid> ...``; each following line is ``<uid> [<ext>...] :<file base name>``. Version 1 starts
with ``1 <uidvalidity> <next uid>`` and lines are ``<uid> <file name>``. mailhub only reads the
file, when it builds a folder's index for the first time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FILE_NAME = "dovecot-uidlist"


@dataclass
class DovecotUidList:
    uidvalidity: int
    next_uid: int
    uids: dict[str, int] = field(default_factory=dict)  # base name -> UID


def read(folder_dir: Path) -> DovecotUidList | None:
    """Parse the folder's ``dovecot-uidlist``; ``None`` if absent or unreadable."""
    try:
        text = (folder_dir / FILE_NAME).read_text("utf-8", errors="replace")
    except OSError:
        return None
    lines = text.splitlines()
    if not lines:
        return None
    header = lines[0].split()
    try:
        if header[0] == "3":
            fields = {h[0]: h[1:] for h in header[1:] if h}
            result = DovecotUidList(int(fields["V"]), int(fields.get("N", "1")))
        elif header[0] in ("1", "2"):
            result = DovecotUidList(int(header[1]), int(header[2]))
        else:
            return None
    except (IndexError, KeyError, ValueError):
        return None
    for line in lines[1:]:
        if not line or not line[0].isdigit():
            continue
        uid_text, _, rest = line.partition(" ")
        if not uid_text.isdigit():
            continue
        if header[0] == "3":
            _, colon, name = rest.partition(":")
            if not colon:
                name = rest.split()[-1] if rest.split() else ""
        else:
            name = rest.strip()
        base = name.partition(":")[0]
        if base:
            result.uids[base] = int(uid_text)
    return result
