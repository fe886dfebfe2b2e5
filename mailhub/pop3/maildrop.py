"""The POP3 view of an INBOX: the maildrop snapshot, deletion marks, and the UPDATE state.

RFC 1939 numbers messages 1..n for the whole session, so the list is fixed at login: message
number ``i`` is position ``i - 1`` of the (policy-filtered) INBOX snapshot, whatever IMAP or
delivery do meanwhile (Dovecot's ``msgnum_to_seq_map``). Nothing is changed in the store until a
clean QUIT: DELE only sets a mark, RSET clears the marks, and a dropped connection forgets
everything, which is also when a message counts as "downloaded" (Gmail's rule).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from mailhub.auth.model import Pop3DeleteAction, Pop3Policy, Pop3Scope
from mailhub.errors import MailError, MailErrorKind
from mailhub.store.api import Account, Mailbox
from mailhub.store.flags import SEEN, FlagOp
from mailhub.store.model import DEFAULT_FOLDERS, MessageInfo, Snapshot, SpecialUse

log = logging.getLogger(__name__)

# Gmail's "recent mode": logging in as recent:<user> offers the last 30 days again.
RECENT_WINDOW = 30 * 24 * 3600


def uidl_of(uid: int, uidvalidity: int) -> str:
    """Dovecot's default ``pop3_uidl_format = %08Xu%08Xv``: UID then UIDVALIDITY, upper hex.

    Deriving the UIDL from (UIDVALIDITY, UID) instead of storing one means it survives restarts
    and index rebuilds that keep UIDs, and a Maildir migrated from Dovecot (whose
    dovecot-uidlist keeps both numbers) shows its clients the very UIDLs Dovecot showed.
    Both numbers are below 2**32, so the value is always 16 characters (RFC 1939 §7 allows 70).
    """
    return f"{uid:08x}{uidvalidity:08x}"


# Whole LIST and UIDL bodies of recent maildrops, keyed by (account, UIDVALIDITY): a client
# that polls an unchanged INBOX (fetchmail, a phone every few minutes) gets them without
# formatting 10,000 lines again. An entry is used only for the very same message list; it
# maps "list"/"uidl" to the body made so far.
_LISTING_CACHE: OrderedDict[tuple[str, int], tuple[tuple[MessageInfo, ...], dict[str, bytes]]] = (
    OrderedDict()
)
_LISTING_CACHE_SIZE = 64


def _format(kind: str, numbered: Iterable[tuple[int, MessageInfo]], uidvalidity: int) -> bytes:
    if kind == "list":
        return "".join([f"{n} {m.size}\r\n" for n, m in numbered]).encode()
    v = f"{uidvalidity:08x}"
    return "".join([f"{n} {m.uid:08x}{v}\r\n" for n, m in numbered]).encode()


def select_messages(
    snapshot: Snapshot,
    policy: Pop3Policy,
    retrieved: frozenset[int],
    *,
    recent_mode: bool,
    now: float | None = None,
) -> tuple[MessageInfo, ...]:
    """The INBOX messages this session offers, in UID order, under the account's scope.

    ``recent_mode`` (login as ``recent:<user>``) offers the last 30 days whether or not they
    were downloaded before, so a second device can fetch what the first already took.
    """
    messages: Iterable[MessageInfo] = snapshot.messages
    if policy.scope is Pop3Scope.SINCE_ENABLED:
        messages = [m for m in messages if m.uid >= policy.enabled_from_uid]
    if recent_mode:
        cutoff = (time.time() if now is None else now) - RECENT_WINDOW
        messages = [m for m in messages if m.internal_date >= cutoff]
    elif policy.scope is Pop3Scope.NOT_RETRIEVED and retrieved:
        messages = [m for m in messages if m.uid not in retrieved]
    return tuple(messages)


@dataclass
class Maildrop:
    """One session's maildrop: the fixed message list and what the client did to it."""

    account: Account
    mailbox: Mailbox
    uidvalidity: int
    messages: tuple[MessageInfo, ...]
    policy: Pop3Policy
    deleted: set[int] = field(default_factory=set)  # message numbers marked by DELE
    retrieved: set[int] = field(default_factory=set)  # UIDs fully sent by RETR
    _count: int = 0
    _size: int = 0

    def __post_init__(self) -> None:
        self._count = len(self.messages)
        self._size = sum(m.size for m in self.messages)

    def stat(self) -> tuple[int, int]:
        """(messages, octets) not marked as deleted (RFC 1939 §5 STAT)."""
        return self._count, self._size

    def lookup(self, msg: int) -> MessageInfo | str:
        """The message with number ``msg``, or the reason it cannot be used."""
        if msg < 1 or msg > len(self.messages):
            return "No such message"
        if msg in self.deleted:
            return f"Message {msg} already deleted"
        return self.messages[msg - 1]

    def live(self) -> Iterable[tuple[int, MessageInfo]]:
        """(number, info) of every message not marked as deleted."""
        deleted = self.deleted
        for i, info in enumerate(self.messages, 1):
            if i not in deleted:
                yield i, info

    def _listing(self, kind: str) -> bytes:
        """The LIST or UIDL body ("n size"/"n uidl" lines) of the live messages."""
        if self.deleted:
            return _format(kind, self.live(), self.uidvalidity)
        key = (self.account.address, self.uidvalidity)
        entry = _LISTING_CACHE.get(key)
        if entry is None or entry[0] != self.messages:  # identical objects: a fast compare
            entry = (self.messages, {})
            _LISTING_CACHE[key] = entry
            if len(_LISTING_CACHE) > _LISTING_CACHE_SIZE:
                _LISTING_CACHE.popitem(last=False)
        else:
            _LISTING_CACHE.move_to_end(key)
        body = entry[1].get(kind)
        if body is None:
            body = entry[1][kind] = _format(kind, enumerate(self.messages, 1), self.uidvalidity)
        return body

    def list_body(self) -> bytes:
        """``n size`` lines of every message not marked deleted, CRLF-terminated."""
        return self._listing("list")

    def uidl_body(self) -> bytes:
        """``n uidl`` lines of every message not marked deleted, CRLF-terminated."""
        return self._listing("uidl")

    def mark_deleted(self, msg: int) -> None:
        info = self.messages[msg - 1]
        self.deleted.add(msg)
        self._count -= 1
        self._size -= info.size

    def reset(self) -> None:
        """RSET (RFC 1939 §5): unmark everything."""
        self.deleted.clear()
        self._count = len(self.messages)
        self._size = sum(m.size for m in self.messages)

    async def commit(self) -> None:
        """The UPDATE state (RFC 1939 §6), applying the account's POP3 policy.

        Order: first flags (``\\Seen`` for retrieved mail, and for DELE'd mail under ``keep``),
        then the "downloaded" record, then removal from INBOX (expunge or a move to the Archive
        or Trash folder), so a message moved away carries its ``\\Seen`` flag along. IMAP
        sessions see each step as an ordinary flag change, expunge or move on the change bus.
        Messages another session expunged meanwhile are skipped by the store, not errors.
        """
        action = self.policy.on_delete
        deleted_uids = sorted(self.messages[n - 1].uid for n in self.deleted)
        seen: set[int] = set(self.retrieved) if self.policy.mark_seen_on_retr else set()
        if action is Pop3DeleteAction.KEEP:
            seen.update(deleted_uids)
            downloaded = self.retrieved | set(deleted_uids)
        else:
            downloaded = self.retrieved - set(deleted_uids)
        if seen:
            await self.mailbox.store_flags(sorted(seen), FlagOp.ADD, frozenset({SEEN}))
        if downloaded:
            await self.mailbox.mark_retrieved(sorted(downloaded))
        if not deleted_uids or action is Pop3DeleteAction.KEEP:
            return
        if action is Pop3DeleteAction.DELETE:
            await self.mailbox.expunge(deleted_uids)
            return
        role = SpecialUse.ARCHIVE if action is Pop3DeleteAction.ARCHIVE else SpecialUse.TRASH
        dest = await self._folder_for(role)
        await self.mailbox.move(deleted_uids, dest)

    async def _folder_for(self, role: SpecialUse) -> str:
        """The account's Archive/Trash folder, created with its role if the user deleted it."""
        name = await self.account.special_use_folder(role)
        if name is not None:
            return name
        default = next(n for n, r in DEFAULT_FOLDERS if r is role)
        try:
            await self.account.create_mailbox(default, role)
            log.info("pop3: created %s folder %r for %s", role.value, default, self.account.address)
        except MailError as exc:
            if exc.kind is not MailErrorKind.EXISTS:
                raise
        return default
