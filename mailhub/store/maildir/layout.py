"""Maildir++ layout: mailbox names at the API <-> folder directories on disk.

INBOX is the account's root Maildir; every other folder is a sibling directory named
``.<Part>.<Sub>``, each part in modified UTF-7, exactly as Dovecot's and Courier's Maildir++
layout writes them, so an existing Dovecot store opens as it is. At the API (and in IMAP) the
hierarchy separator is ``/``; ``.`` is the separator on disk, so a ``.`` inside a name part is
refused, as Dovecot does for this layout. Names that could escape the account's directory
(``..``, path separators, control characters) are refused with ``BADNAME``.
"""

from __future__ import annotations

from pathlib import Path

from mailhub import mutf7
from mailhub.errors import MailError, MailErrorKind
from mailhub.store.model import INBOX, SEPARATOR

MAX_PART_BYTES = 200
MAX_DEPTH = 16


def canonical(name: str) -> str:
    """Validate ``name`` and return it with INBOX (case-insensitive) spelled ``INBOX``."""
    if not name:
        raise MailError(MailErrorKind.BADNAME, "empty mailbox name")
    parts = name.split(SEPARATOR)
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    if len(parts) > MAX_DEPTH:
        raise MailError(MailErrorKind.BADNAME, f"mailbox name nested deeper than {MAX_DEPTH}")
    for part in parts:
        _check_part(part)
    return SEPARATOR.join(parts)


def _check_part(part: str) -> None:
    if not part:
        raise MailError(MailErrorKind.BADNAME, "mailbox name has an empty hierarchy level")
    if part in (".", ".."):
        raise MailError(MailErrorKind.BADNAME, f"mailbox name part {part!r} is not allowed")
    for ch in part:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise MailError(MailErrorKind.BADNAME, "mailbox name contains a control character")
        if ch in "./\\":
            raise MailError(MailErrorKind.BADNAME, f"character {ch!r} is not allowed in a name")
    if part.startswith("~"):
        raise MailError(MailErrorKind.BADNAME, "mailbox names may not start with '~'")
    if len(mutf7.encode(part).encode("ascii")) > MAX_PART_BYTES:
        raise MailError(MailErrorKind.BADNAME, "mailbox name part is too long")


def folder_dir(root: Path, name: str) -> Path:
    """The directory of (canonical) mailbox ``name``."""
    if name == INBOX:
        return root
    return root / ("." + ".".join(mutf7.encode(p) for p in name.split(SEPARATOR)))


def name_of_dir(dirname: str) -> str | None:
    """The mailbox name of a ``.A.B`` directory, or None if it is not a valid folder name."""
    if not dirname.startswith(".") or dirname in (".", ".."):
        return None
    try:
        parts = [mutf7.decode(p) for p in dirname[1:].split(".")]
    except mutf7.MUTF7Error:
        return None
    if any(not p for p in parts):
        return None
    name = SEPARATOR.join(parts)
    try:
        return canonical(name)
    except MailError:
        return None


def is_child(name: str, parent: str) -> bool:
    return name.startswith(parent + SEPARATOR)
