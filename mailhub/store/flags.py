"""Message flags: the IMAP system flags plus free-form keywords.

The store speaks IMAP's flag vocabulary because it is the richest one; POP3 only ever uses
``\\Seen`` and ``\\Deleted``. ``\\Recent`` is not a stored flag: it is a per-session notion that
the IMAP frontend derives, so it never appears here.
"""

from __future__ import annotations

import enum

SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DELETED = "\\Deleted"
DRAFT = "\\Draft"

SYSTEM_FLAGS: frozenset[str] = frozenset({SEEN, ANSWERED, FLAGGED, DELETED, DRAFT})

# Maildir info letters for the system flags (https://cr.yp.to/proto/maildir.html), in the
# ASCII order the spec requires in a file name. "P" (passed) has no IMAP flag; it is kept as
# the keyword "$Forwarded", as Dovecot does.
MAILDIR_LETTERS: dict[str, str] = {
    DRAFT: "D",
    FLAGGED: "F",
    "$Forwarded": "P",
    ANSWERED: "R",
    SEEN: "S",
    DELETED: "T",
}
LETTER_TO_FLAG: dict[str, str] = {v: k for k, v in MAILDIR_LETTERS.items()}


class FlagOp(enum.Enum):
    """How ``Mailbox.store_flags`` combines the given flags with a message's current ones."""

    REPLACE = "replace"
    ADD = "add"
    REMOVE = "remove"


def canonical(flag: str) -> str:
    """Return the canonical spelling of a flag.

    System flags are case-insensitive in IMAP (RFC 9051 §2.3.2) and are stored in their
    canonical case; keywords keep the case they were first given (comparison of keywords is
    case-insensitive too, which ``normalise`` handles).
    """
    for system in SYSTEM_FLAGS:
        if flag.lower() == system.lower():
            return system
    return flag


def normalise(flags: frozenset[str] | set[str] | list[str] | tuple[str, ...]) -> frozenset[str]:
    """Canonicalise every flag of a collection."""
    return frozenset(canonical(f) for f in flags)


def apply(current: frozenset[str], op: FlagOp, given: frozenset[str]) -> frozenset[str]:
    """Combine ``current`` and ``given`` the way ``op`` says."""
    if op is FlagOp.REPLACE:
        return given
    if op is FlagOp.ADD:
        return current | given
    lowered = {g.lower() for g in given}
    return frozenset(f for f in current if f.lower() not in lowered)
