"""Plain value types the store hands to frontends: immutable, protocol-neutral."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple


class SpecialUse(enum.Enum):
    """RFC 6154 roles. A new account gets one folder for each of the first five."""

    DRAFTS = "\\Drafts"
    SENT = "\\Sent"
    TRASH = "\\Trash"
    JUNK = "\\Junk"
    ARCHIVE = "\\Archive"
    ALL = "\\All"
    FLAGGED = "\\Flagged"


# Folder name and role created for every new account (the names Dovecot's and Thunderbird's
# defaults use, so clients pick them up without configuration).
DEFAULT_FOLDERS: tuple[tuple[str, SpecialUse], ...] = (
    ("Drafts", SpecialUse.DRAFTS),
    ("Sent", SpecialUse.SENT),
    ("Trash", SpecialUse.TRASH),
    ("Junk", SpecialUse.JUNK),
    ("Archive", SpecialUse.ARCHIVE),
)

INBOX = "INBOX"
# Hierarchy separator of mailbox names at the API (and in IMAP). On disk, Maildir++ uses ".".
SEPARATOR = "/"


class MessageInfo(NamedTuple):
    """What the index knows about one message.

    ``size`` is the size with CRLF line endings (RFC822.SIZE, POP3 sizes), whatever the file
    holds. ``internal_date`` is POSIX seconds (the file's mtime, as Maildir defines it).
    A named tuple rather than a frozen dataclass: a 100,000-message folder creates 100,000 of
    them when it opens, and a tuple is built about four times faster.
    """

    uid: int
    flags: frozenset[str]
    size: int
    internal_date: float
    modseq: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A folder at one instant. Position ``i`` in ``messages`` is sequence number ``i + 1``."""

    mailbox: str
    uidvalidity: int
    uid_next: int
    highest_modseq: int
    messages: tuple[MessageInfo, ...]


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    """One folder as LIST shows it."""

    name: str
    special_use: SpecialUse | None
    subscribed: bool
    has_children: bool


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """Counters for STATUS, SELECT and POP3 STAT; ``size`` is the CRLF size of all messages."""

    messages: int
    unseen: int
    uid_next: int
    uidvalidity: int
    highest_modseq: int
    size: int
    deleted: int


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """An account's limits; ``None`` means unlimited."""

    max_bytes: int | None = None
    max_messages: int | None = None


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """What an account uses, against its limits."""

    bytes_used: int
    messages_used: int
    limits: QuotaLimits


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append: its bytes (any line ending), flags, and internal date (or now)."""

    data: bytes
    flags: frozenset[str] = frozenset()
    internal_date: float | None = None


@dataclass(frozen=True, slots=True)
class ChangesSince:
    """For CONDSTORE/QRESYNC: messages changed after a MODSEQ, and UIDs expunged after it."""

    changed: tuple[MessageInfo, ...]
    vanished: tuple[int, ...]
