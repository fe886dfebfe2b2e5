"""Maildir file names: ``<unique>,U=<uid>,S=<size>,W=<crlf size>:2,<flags>``.

``S=`` and ``W=`` are Dovecot's fields (file size and CRLF size), so a mailhub Maildir opened by
Dovecot needs no stat or read to know sizes. ``U=`` is mailhub's own: the UID the message was
given when it was stored. The index is the authority for UIDs, but if an index commit is lost
(power failure with SQLite's ``synchronous=NORMAL``) the UID can be recovered from the name, so
an acknowledged UID is never handed to another message. Other programs ignore unknown
``,X=`` fields.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from dataclasses import dataclass

from mailhub.store.flags import LETTER_TO_FLAG, MAILDIR_LETTERS

_counter = itertools.count()
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072").replace(",", "\\054")


@dataclass(frozen=True, slots=True)
class ParsedName:
    """What a Maildir file name tells without opening the file."""

    base: str  # everything before the ":2," info: stable across flag changes
    uid: int | None
    size: int | None
    crlf_size: int | None
    letters: str  # the info letters after ":2,"


def unique() -> str:
    """A new unique base in the style of the Maildir spec (time, microseconds, pid, counter)."""
    now = time.time()
    sec = int(now)
    usec = int((now - sec) * 1_000_000)
    return f"{sec}.M{usec}P{os.getpid()}Q{next(_counter)}.{_HOST}"


def parse(name: str) -> ParsedName:
    """Split a file name into its base, the fields mailhub and Dovecot write, and flag letters."""
    base, sep, info = name.partition(":")
    letters = info[2:] if sep and info.startswith("2,") else ""
    uid = size = crlf = None
    for field in base.split(",")[1:]:
        key, eq, value = field.partition("=")
        if not eq or not value.isdigit():
            continue
        if key == "U":
            uid = int(value)
        elif key == "S":
            size = int(value)
        elif key == "W":
            crlf = int(value)
    return ParsedName(base, uid, size, crlf, letters)


def build(base: str, letters: str) -> str:
    """The ``cur/`` name for ``base`` with the given info letters."""
    return f"{base}:2,{letters}"


def new_base(uid: int, size: int, crlf_size: int) -> str:
    """A fresh base carrying the UID and both sizes."""
    return f"{unique()},U={uid},S={size},W={crlf_size}"


def flags_to_letters(flags: frozenset[str], keyword_letter: dict[str, str]) -> str:
    """Info letters for ``flags``: system letters, then keyword letters, each sorted (ASCII)."""
    system = sorted(MAILDIR_LETTERS[f] for f in flags if f in MAILDIR_LETTERS)
    keywords = sorted(
        keyword_letter[f] for f in flags if f not in MAILDIR_LETTERS and f in keyword_letter
    )
    return "".join(system) + "".join(keywords)


def letters_to_flags(letters: str, letter_keyword: dict[str, str]) -> frozenset[str]:
    """Flags for info letters; unknown letters are ignored (Maildir says to keep them as is)."""
    flags: set[str] = set()
    for ch in letters:
        if ch in LETTER_TO_FLAG:
            flags.add(LETTER_TO_FLAG[ch])
        elif ch in letter_keyword:
            flags.add(letter_keyword[ch])
    return frozenset(flags)
