"""The per-folder keyword table, in Dovecot's ``dovecot-keywords`` format.

Maildir file names can carry 26 keywords as the letters ``a``-``z``; the table says which
keyword each letter stands for (line ``<index> <keyword>``, index 0 is ``a``). Using Dovecot's
file and format means a migrated folder keeps its keywords and Dovecot can read ours back.
Keywords past the 26th are kept in the index only (Dovecot has the same limit in file names).
"""

from __future__ import annotations

from pathlib import Path

from mailhub.store.flags import MAILDIR_LETTERS
from mailhub.store.maildir import _fs

FILE_NAME = "dovecot-keywords"
MAX_LETTERS = 26


class KeywordTable:
    """Letter <-> keyword mapping of one folder, written through on every new keyword."""

    def __init__(self, folder_dir: Path) -> None:
        self._path = folder_dir / FILE_NAME
        self.letter_to_keyword: dict[str, str] = {}
        self.keyword_to_letter: dict[str, str] = {}
        self._mtime_ns = -1
        self.reload()

    def reload(self) -> None:
        """Re-read the file if another process changed it."""
        try:
            st = self._path.stat()
        except FileNotFoundError:
            return
        if st.st_mtime_ns == self._mtime_ns:
            return
        self._mtime_ns = st.st_mtime_ns
        text = self._path.read_text("utf-8", errors="replace")
        for line in text.splitlines():
            idx, _, name = line.partition(" ")
            if idx.isdigit() and name and int(idx) < MAX_LETTERS:
                letter = chr(ord("a") + int(idx))
                self.letter_to_keyword[letter] = name
                self.keyword_to_letter[name] = letter

    def ensure(self, keywords: frozenset[str]) -> None:
        """Give letters to keywords that have none yet (while letters last).

        System flags need no letter and no look at the file: a ``\\Seen`` or ``\\Flagged``
        store (nearly all of them) skips the ``stat``."""
        if all(k.startswith("\\") or k in MAILDIR_LETTERS for k in keywords):
            return
        self.reload()
        missing = [
            k
            for k in sorted(keywords)
            if k not in self.keyword_to_letter
            and not k.startswith("\\")
            and k not in MAILDIR_LETTERS
        ]
        if not missing:
            return
        changed = False
        for keyword in missing:
            if len(self.letter_to_keyword) >= MAX_LETTERS:
                break
            idx = len(self.letter_to_keyword)
            letter = chr(ord("a") + idx)
            self.letter_to_keyword[letter] = keyword
            self.keyword_to_letter[keyword] = letter
            changed = True
        if changed:
            lines = [
                f"{ord(letter) - ord('a')} {kw}\n"
                for letter, kw in sorted(self.letter_to_keyword.items())
            ]
            _fs.write_atomic(self._path, "".join(lines).encode("utf-8"))
            self._mtime_ns = self._path.stat().st_mtime_ns
