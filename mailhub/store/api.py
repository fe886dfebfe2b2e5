"""The mailstore API: the one contract shared by IMAP, POP3, ingest and the CLI.

Frontends import this module (and ``model``, ``changes``, ``flags``, ``bus``), never a concrete
backend; only the composition root (``mailhub.app``) and the CLI name
``mailhub.store.maildir``. Everything here is protocol-neutral: no sequence numbers, POP3
message numbers or reply text. Failures raise :class:`mailhub.errors.MailError`.

Methods are coroutines so that slow filesystem work (fsync, big reads, rescans) runs off the
event loop; each mutation is durable before it returns (files fsynced in their final place),
then publishes its change records, then returns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Protocol

from mailhub.store.bus import ChangeBus
from mailhub.store.changes import Change
from mailhub.store.flags import FlagOp
from mailhub.store.model import (
    ChangesSince,
    MailboxInfo,
    MailboxStatus,
    MessageInfo,
    NewMessage,
    QuotaLimits,
    QuotaUsage,
    Snapshot,
    SpecialUse,
)


class MessageSource(Protocol):
    """One message's bytes, always with CRLF line endings."""

    @property
    def size(self) -> int:
        """The CRLF size in bytes."""

    async def read(self) -> bytes:
        """The whole message (for small messages; large ones should use ``chunks``)."""

    async def read_range(self, offset: int, length: int | None = None) -> bytes:
        """``length`` bytes from ``offset`` of the CRLF form (to the end when ``None``)."""

    def chunks(self, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        """The CRLF form in pieces, so a 50 MB message is never held whole in memory."""


class PreparedMessage(Protocol):
    """A message written durably to a private temporary place of one folder, not yet stored.

    It has no UID and no reader can see it. ``Mailbox.commit`` stores it (or
    ``Mailbox.discard`` drops it); one that is never committed was never acknowledged, and
    the store removes what a crash left behind when it next opens the folder.
    """

    @property
    def size(self) -> int:
        """The bytes it will take in the store (what quota counts once it is committed)."""


class Mailbox(Protocol):
    """An open folder of one account.

    A ``Mailbox`` is shared by every session of the process that opened the folder; it holds no
    per-session state. ``sync`` folds in what other processes and outside programs did.
    """

    @property
    def name(self) -> str:
        """The folder's name at the API ("INBOX", "Archive/2024")."""

    @property
    def uidvalidity(self) -> int: ...

    async def snapshot(self) -> Snapshot:
        """Every message, ascending UID, after folding in outside changes."""

    async def status(self) -> MailboxStatus: ...

    async def sync(self) -> Sequence[Change]:
        """Notice changes made by other processes or outside programs; publish and return them."""

    async def append(self, messages: Sequence[NewMessage]) -> list[MessageInfo]:
        """Store messages durably; returns their infos (UIDs ascending, in the given order).

        All or nothing: quota is checked for the whole batch first.
        """

    async def deliver(self, messages: Sequence[NewMessage]) -> list[MessageInfo]:
        """Like ``append``, for mail arriving from outside (LMTP, SMTP, ``mailhub deliver``).

        Files land in the Maildir's ``new/``, where other Maildir readers expect new mail.
        """

    async def prepare(self, message: NewMessage) -> PreparedMessage:
        """First half of ``deliver``: write ``message`` to a temporary file and fsync it.

        Why split: the file write and its fsync are most of a delivery's time and need no
        lock, so a frontend can start them as soon as a message is complete, while earlier
        messages of the same folder are still being committed. Nothing is visible and no
        quota is taken until ``commit``.
        """

    async def commit(
        self, prepared: Sequence[PreparedMessage], *, into_new: bool = True
    ) -> list[MessageInfo]:
        """Second half of ``deliver`` (``into_new=False``: of ``append``): give the prepared
        messages UIDs in the given order and move them into place, durably, in one step.

        All or nothing, like ``append``: on failure (quota, I/O) nothing was stored and every
        prepared message stays prepared, so the caller can commit them again one at a time
        or ``discard`` them. A message committed once cannot be committed again.
        """

    def discard(self, prepared: Sequence[PreparedMessage]) -> None:
        """Remove prepared messages that will not be committed (one unlink each; messages
        already committed or discarded are skipped)."""

    async def store_flags(
        self,
        uids: Iterable[int],
        op: FlagOp,
        flags: frozenset[str],
        unchanged_since: int | None = None,
    ) -> tuple[list[MessageInfo], list[int]]:
        """Change flags; returns (infos whose flags changed, UIDs refused by UNCHANGEDSINCE).

        UIDs that do not exist (any more) are ignored. Messages whose flags do not change keep
        their MODSEQ and are not returned.
        """

    async def expunge(self, uids: Iterable[int]) -> list[int]:
        """Remove messages; returns the UIDs actually removed."""

    async def copy(self, uids: Iterable[int], dest: str) -> dict[int, int]:
        """Copy into folder ``dest``; returns {source UID: destination UID}."""

    async def move(self, uids: Iterable[int], dest: str) -> dict[int, int]:
        """Move into folder ``dest`` (copy, then expunge here); returns the UID mapping."""

    async def open_message(self, uid: int) -> MessageSource:
        """The message's bytes; raises ``MailError(EXPUNGED)`` if it is gone."""

    async def changes_since(self, modseq: int) -> ChangesSince:
        """Messages whose MODSEQ is above ``modseq`` and UIDs expunged after it."""

    async def claim_recent(self) -> int:
        """Return the first UID that is \\Recent for the caller, and mark all current mail old.

        RFC 3501 §2.3.2: exactly one session sees a message as recent.
        """

    async def get_cached(self, uid: int, key: str) -> bytes | None:
        """A value a frontend cached for this message (ENVELOPE, BODYSTRUCTURE...), if any."""

    async def set_cached(self, uid: int, key: str, value: bytes) -> None:
        """Cache a value computed from the message's bytes; dropped with the message."""

    async def get_cached_many(self, uids: Iterable[int], key: str) -> dict[int, bytes]:
        """``get_cached`` for many messages in one index lookup (FETCH of a whole folder)."""

    async def set_cached_many(self, key: str, values: Mapping[int, bytes]) -> None:
        """``set_cached`` for many messages in one index transaction."""

    async def keywords(self) -> list[str]:
        """Every keyword known to this folder (for IMAP FLAGS/PERMANENTFLAGS)."""

    async def mark_retrieved(self, uids: Iterable[int]) -> None:
        """Remember that a download client (POP3) fetched these messages for good."""

    async def retrieved_uids(self) -> frozenset[int]:
        """The UIDs ``mark_retrieved`` recorded and that still exist."""


class Account(Protocol):
    """One user's mailstore: the folder tree and its messages."""

    @property
    def address(self) -> str: ...

    @property
    def bus(self) -> ChangeBus: ...

    async def list_mailboxes(self) -> list[MailboxInfo]:
        """Every folder, INBOX first, then in name order."""

    async def create_mailbox(self, name: str, special_use: SpecialUse | None = None) -> None: ...

    async def delete_mailbox(self, name: str) -> None: ...

    async def rename_mailbox(self, old: str, new: str) -> None:
        """Rename a folder and its children. Renaming INBOX moves its messages (RFC 9051)."""

    async def subscribe(self, name: str, subscribed: bool = True) -> None: ...

    async def subscriptions(self) -> list[str]: ...

    async def special_use_folder(self, role: SpecialUse) -> str | None:
        """The folder holding ``role``, if any."""

    async def open_mailbox(self, name: str) -> Mailbox:
        """The shared open folder; raises ``MailError(NOTFOUND)`` if it does not exist."""

    async def quota(self) -> QuotaUsage: ...

    def set_quota_limits(self, limits: QuotaLimits) -> None:
        """Apply new limits (the accounts file changed); takes effect on the next append."""


class Mailstore(Protocol):
    """Every account's mail under one data directory."""

    @property
    def bus(self) -> ChangeBus: ...

    async def open_account(self, address: str, limits: QuotaLimits | None = None) -> Account:
        """Open (creating on first use, with the default folders) the store of ``address``."""

    async def close(self) -> None:
        """Stop watchers and close indexes (server shutdown)."""
