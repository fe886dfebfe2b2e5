"""The closed set of ways a mail operation can fail, with no protocol text.

Storage, accounts and delivery raise :class:`MailError` with a :class:`MailErrorKind`; each
protocol frontend maps the kind to its own reply in exactly one table (IMAP response codes,
POP3 ``-ERR [IN-USE]``/``[SYS/TEMP]``, SMTP 4xx/5xx). This follows Dovecot's ``mail-error.h``:
keeping reply text out of the store is what lets three protocols share it.
"""

from __future__ import annotations

import enum


class MailErrorKind(enum.Enum):
    """Why an operation failed; the frontends map each kind to a reply."""

    TEMP = "temp"  # transient server-side trouble (disk full, I/O error): retry later
    NOTPOSSIBLE = "notpossible"  # the request cannot be done (e.g. rename INBOX into itself)
    PERM = "perm"  # not allowed for this account
    NOQUOTA = "noquota"  # the account's quota would be exceeded
    NOTFOUND = "notfound"  # no such mailbox / account / message
    EXISTS = "exists"  # the mailbox already exists
    EXPUNGED = "expunged"  # the message was expunged meanwhile
    INUSE = "inuse"  # locked by someone else (POP3 maildrop lock, store lock timeout)
    LIMIT = "limit"  # a configured limit was reached
    TOOBIG = "toobig"  # a message is larger than allowed
    BADNAME = "badname"  # a mailbox name that is invalid or could escape the Maildir


class MailError(Exception):
    """A failed mail operation.

    ``message`` is written for the person on the other end (operator or client) and must never
    contain a password or message body.
    """

    def __init__(self, kind: MailErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"MailError({self.kind.name}, {self.message!r})"
