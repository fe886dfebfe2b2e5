"""Change records: what a mutation did, published so every other view can catch up.

Every store mutation commits to disk and index, then publishes these records on the
:class:`~mailhub.store.bus.ChangeBus`, then returns (the order mox uses). The same records are
produced when the store notices another process or an outside program changed a Maildir, so a
frontend has one path for "someone else changed this folder". Records carry UIDs, never sequence
numbers: those belong to each frontend's own view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailhub.store.model import MessageInfo


@dataclass(frozen=True, slots=True)
class MessagesAdded:
    """New messages in ``mailbox`` (ascending UID)."""

    mailbox: str
    messages: tuple[MessageInfo, ...]
    origin: object | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class FlagsChanged:
    """Messages of ``mailbox`` whose flags changed; each info carries its new flags and MODSEQ."""

    mailbox: str
    messages: tuple[MessageInfo, ...]
    origin: object | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class MessagesExpunged:
    """Messages removed from ``mailbox``; ``modseq`` is the folder's MODSEQ after the removal."""

    mailbox: str
    uids: tuple[int, ...]
    modseq: int
    origin: object | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class MailboxCreated:
    """A folder was created."""

    mailbox: str
    origin: object | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class MailboxDeleted:
    """A folder was deleted; views of it must close (IMAP answers BYE or deselects)."""

    mailbox: str
    origin: object | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class MailboxRenamed:
    """A folder (and its children) got a new name."""

    mailbox: str
    new_name: str
    origin: object | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class UidValidityChanged:
    """The folder's index was rebuilt with a new UIDVALIDITY: every cached UID is void."""

    mailbox: str
    uidvalidity: int
    origin: object | None = field(default=None, compare=False)


Change = (
    MessagesAdded
    | FlagsChanged
    | MessagesExpunged
    | MailboxCreated
    | MailboxDeleted
    | MailboxRenamed
    | UidValidityChanged
)
