"""The one delivery path shared by LMTP, inbound SMTP and ``mailhub deliver``.

Why one path: the three entry points must agree on who a recipient is (account, alias,
sub-address, catch-all), on the trace headers a stored copy carries, and on which failures are
temporary. Keeping that here means the protocol code only maps a :class:`MailError` to a reply
(:func:`reply_for`, the single MailErrorKind -> SMTP/LMTP table) and never decides policy.

A message is acknowledged only after ``Mailbox.deliver`` returned, and the store contract says
it returns once the file is fsynced in its final place. Anything that goes wrong and is not
the recipient's own fault (unknown address, over quota, too big) becomes ``MailError(TEMP)`` so
the sending MTA keeps the message and retries: a duplicate is better than a lost message.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING

from mailhub.auth.model import AccountRecord
from mailhub.config import Settings
from mailhub.errors import MailError, MailErrorKind
from mailhub.ingest.batch import GroupCommit
from mailhub.store.api import Account, Mailstore
from mailhub.store.model import INBOX, NewMessage, QuotaLimits

if TYPE_CHECKING:
    from mailhub.auth.directory import AccountDirectory

log = logging.getLogger("mailhub.delivery")

__all__ = [
    "DeliveryAgent",
    "ReceivedInfo",
    "Recipient",
    "RecipientResult",
    "reply_for",
    "split_address",
]


@dataclass(frozen=True, slots=True)
class Recipient:
    """A resolved recipient: which account gets the copy and into which folder.

    ``address`` is the envelope address as given (domain lower-cased); ``via`` says how it was
    resolved ("account", "alias", "subaddress" or "catch-all") for the delivery log.
    """

    address: str
    account: str
    record: AccountRecord
    folder: str
    via: str


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """The outcome for one recipient; ``folder``/``uid`` are set when the copy was stored."""

    recipient: str
    ok: bool
    error: MailError | None
    folder: str | None
    uid: int | None


@dataclass(frozen=True, slots=True)
class ReceivedInfo:
    """What the ``Received:`` trace header says about the hop (RFC 5321 §4.4).

    ``protocol`` is the RFC 3848 "with" keyword (LMTP, ESMTP, ESMTPS, UTF8SMTP...).
    """

    protocol: str
    helo: str | None = None
    peer_ip: str | None = None
    queue_id: str | None = None


# --- the single MailErrorKind -> SMTP/LMTP reply table (RFC 5321 §4.2, RFC 3463) -----------

_REPLIES: dict[MailErrorKind, tuple[str, str]] = {
    MailErrorKind.TEMP: ("451 4.3.0", "Temporary failure, please try again later"),
    MailErrorKind.NOTPOSSIBLE: ("451 4.3.0", "Temporary failure, please try again later"),
    MailErrorKind.PERM: ("550 5.2.1", "Mailbox disabled"),
    MailErrorKind.NOQUOTA: ("452 4.2.2", "Mailbox full"),  # or 552 5.2.2, see reply_for
    MailErrorKind.NOTFOUND: ("550 5.1.1", "User unknown"),
    MailErrorKind.EXISTS: ("451 4.3.0", "Temporary failure, please try again later"),
    MailErrorKind.EXPUNGED: ("451 4.3.0", "Temporary failure, please try again later"),
    MailErrorKind.INUSE: ("451 4.2.0", "Mailbox busy, please try again later"),
    MailErrorKind.LIMIT: ("452 4.5.3", "Too many recipients"),
    MailErrorKind.TOOBIG: ("552 5.3.4", "Message too big for system"),
    MailErrorKind.BADNAME: ("550 5.1.3", "Bad destination mailbox address"),
}


def reply_for(
    error: MailError | MailErrorKind, settings: Settings, recipient: str | None = None
) -> str:
    """The SMTP/LMTP reply line for a failure, e.g. ``550 5.1.1 <bob@x> User unknown``.

    Over quota is 452 4.2.2 (the sender retries, RFC 3463 X.2.2) unless the operator chose
    ``delivery.over_quota = "permanent"`` (552 5.2.2: bounce at once).
    """
    kind = error.kind if isinstance(error, MailError) else error
    code, text = _REPLIES[kind]
    if kind is MailErrorKind.NOQUOTA and settings.delivery.over_quota == "permanent":
        code = "552 5.2.2"
    who = f"<{_clean(recipient)}> " if recipient is not None else ""
    return f"{code} {who}{text}"


# --- helpers ---------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^>\r\n]{1,250}>)")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _clean(value: str) -> str:
    """Drop control characters so an envelope value can never inject a header or reply line."""
    return _CONTROL.sub("", value)


def split_address(address: str) -> tuple[str, str]:
    """``(local, domain)`` with the domain lower-cased; raises ``MailError(BADNAME)``.

    The local part keeps its case (RFC 5321 §2.4); lookups are case-insensitive in the
    directory anyway.
    """
    addr = address.strip()
    if addr.startswith("<") and addr.endswith(">"):
        addr = addr[1:-1]
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or _CONTROL.search(addr):
        raise MailError(MailErrorKind.BADNAME, f"not a mailbox address: {_clean(address)!r}")
    return local, domain.lower()


def _message_id(data: bytes) -> str | None:
    """The Message-ID from the header block, for the delivery log (the body is never read)."""
    head = data[:65536]
    end = _HEADER_END.search(head)
    if end is not None:
        head = head[: end.start()]
    match = _MESSAGE_ID.search(head)
    if match is None:
        return None
    return _clean(match.group(1).decode("ascii", "replace"))


def _eol(data: bytes) -> bytes:
    """The line ending the message uses, so prepended headers match it (LF from a pipe)."""
    nl = data.find(b"\n")
    if nl > 0 and data[nl - 1 : nl] == b"\r":
        return b"\r\n"
    return b"\n" if nl >= 0 else b"\r\n"


_date_cache: tuple[int, str] = (-1, "")


def _date_now() -> str:
    """RFC 5322 date of this second, local time; formatted once per second, not per copy."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, localtime=True))
    return _date_cache[1]


def _temp_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    if isinstance(exc, OSError):
        return f"I/O error ({exc.strerror or exc.__class__.__name__})"
    return f"internal error ({exc.__class__.__name__})"


# --- the agent -------------------------------------------------------------------------------


class DeliveryAgent:
    """Resolves recipients and stores one copy per recipient.

    Stateless apart from its collaborators, so LMTP, SMTP and the CLI can share one instance
    (or build their own) without coordination; the store serialises appends per folder.
    """

    def __init__(self, store: Mailstore, directory: AccountDirectory, settings: Settings) -> None:
        self.store = store
        self.directory = directory
        self.settings = settings
        self._group = GroupCommit()  # concurrent deliveries to one folder share a commit

    # -- resolution ---------------------------------------------------------------------------

    async def open_account(self, rec: AccountRecord) -> Account:
        """The account's store, with its current limits (the accounts file may have changed).

        The store serialises first opens of an account itself (concurrent first deliveries
        used to race to create the Maildir), so this needs no lock of its own.
        """
        return await self.store.open_account(
            rec.address, QuotaLimits(rec.quota_bytes, rec.quota_messages)
        )

    def _lookup(self, address: str) -> AccountRecord | None:
        try:
            return self.directory.lookup(address)
        except MailError:
            raise
        except Exception as exc:  # the accounts file is unreadable right now: retry later
            log.warning("account lookup for %s failed: %s", _clean(address), exc)
            raise MailError(MailErrorKind.TEMP, "account directory unavailable") from exc

    async def resolve(self, recipient: str) -> Recipient:
        """Who gets mail sent to ``recipient``.

        Order: the exact address or an alias; then ``user+tag@domain`` sub-addressing (RFC
        5233), filing into folder ``tag`` when the account has it and INBOX otherwise; then the
        domain's catch-all from ``delivery.catch_all``. Raises ``MailError(NOTFOUND)`` for
        nobody, ``MailError(PERM)`` for a disabled account.

        A bare local part ("alice", "alice+tag": what Postfix's ``$USER`` gives a
        ``mailbox_command``) is qualified with the domain of the one account it names.
        """
        recipient = self._qualify(recipient)
        local, domain = split_address(recipient)
        address = f"{local}@{domain}"
        rec = self._lookup(address)
        via, folder = "account", INBOX
        if rec is not None and rec.address.lower() != address.lower():
            via = "alias"
        delim = self.settings.delivery.recipient_delimiter
        if rec is None and delim and delim in local:
            base, _, tag = local.partition(delim)
            if base:
                rec = self._lookup(f"{base}@{domain}")
                if rec is not None:
                    via = "subaddress"
                    folder = await self._subaddress_folder(rec, tag)
        if rec is None:
            target = self.settings.delivery.catch_all.get(domain)
            if target is not None:
                rec = self._lookup(target)
                via = "catch-all"
        if rec is None:
            raise MailError(MailErrorKind.NOTFOUND, f"no such user: {_clean(address)}")
        if not rec.enabled:
            raise MailError(MailErrorKind.PERM, f"account disabled: {rec.address}")
        return Recipient(address=address, account=rec.address, record=rec, folder=folder, via=via)

    def _qualify(self, recipient: str) -> str:
        bare = recipient.strip()
        if "@" in bare or not bare or _CONTROL.search(bare):
            return recipient
        delim = self.settings.delivery.recipient_delimiter
        rec = self._lookup(bare)
        if rec is None and delim and delim in bare:
            base = bare.partition(delim)[0]
            rec = self._lookup(base) if base else None
        if rec is None:
            return recipient  # split_address refuses it: BADNAME
        return f"{bare}@{rec.address.rpartition('@')[2]}"

    async def _subaddress_folder(self, rec: AccountRecord, tag: str) -> str:
        """Folder ``tag`` if it exists (exact name first, then a unique case-insensitive match)."""
        if not tag or tag.upper() == INBOX:
            return INBOX
        account = await self.open_account(rec)
        names = [box.name for box in await account.list_mailboxes()]
        if tag in names:
            return tag
        folded = [name for name in names if name.lower() == tag.lower()]
        return folded[0] if len(folded) == 1 else INBOX

    async def check_quota(self, rcpt: Recipient, size: int | None = None) -> None:
        """Refuse early (at RCPT) when the account is already full or ``size`` would not fit.

        The store checks again at append time; this only saves transferring a message that
        would be refused, and lets inbound SMTP refuse per recipient.
        """
        rec = rcpt.record
        if rec.quota_bytes is None and rec.quota_messages is None:
            return
        usage = await (await self.open_account(rec)).quota()
        if rec.quota_messages is not None and usage.messages_used + 1 > rec.quota_messages:
            raise MailError(MailErrorKind.NOQUOTA, f"{rec.address} has too many messages")
        extra = size or 0
        if rec.quota_bytes is not None and usage.bytes_used + extra > rec.quota_bytes:
            raise MailError(MailErrorKind.NOQUOTA, f"{rec.address} is over its storage quota")

    # -- delivery -----------------------------------------------------------------------------

    def trace_headers(
        self,
        data: bytes,
        mail_from: str | None,
        rcpt: str,
        received: ReceivedInfo | None,
    ) -> bytes:
        """``Return-Path``, ``Delivered-To`` and ``Received`` for one copy (RFC 5321 §4.4).

        ``mail_from`` None means "not known" (no Return-Path); "" or "<>" is the null sender of
        a bounce and gives ``Return-Path: <>``.
        """
        eol = _eol(data)
        lines: list[str] = []
        if mail_from is not None:
            sender = "" if mail_from == "<>" else _clean(mail_from.strip().strip("<>"))
            lines.append(f"Return-Path: <{sender}>")
        lines.append(f"Delivered-To: {_clean(rcpt)}")
        if received is not None:
            parts = ["Received:"]
            if received.helo or received.peer_ip:
                helo = _clean(received.helo or "unknown")
                ip = f" ([{_clean(received.peer_ip)}])" if received.peer_ip else ""
                parts.append(f"from {helo}{ip}")
            by = f"by {_clean(self.settings.hostname)} (mailhub) with {received.protocol}"
            if received.queue_id:
                by += f" id {_clean(received.queue_id)}"
            parts.append(by)
            parts.append(f"for <{_clean(rcpt)}>; {_date_now()}")
            lines.append(f"{eol.decode()}\t".join([" ".join(parts[:2]), *parts[2:]]))
        return eol.join(line.encode("utf-8") for line in lines) + eol

    async def deliver(
        self,
        data: bytes,
        mail_from: str | None,
        recipients: Sequence[str],
        *,
        folder: str | None = None,
        received: ReceivedInfo | None = None,
        resolved: Mapping[str, Recipient] | None = None,
    ) -> list[RecipientResult]:
        """Store one copy per recipient; one result per recipient, in the given order.

        ``folder`` (``mailhub deliver --folder``) overrides the resolved folder; a folder that
        does not exist falls back to INBOX rather than losing or bouncing the message.
        ``resolved`` holds recipients already resolved at RCPT time (LMTP/SMTP): the RCPT
        reply promised delivery to that account, and resolving again would cost a directory
        lookup per copy (and, for sub-addresses, a folder listing).
        """
        msgid = (received.queue_id if received else None) or _message_id(data) or "-"

        async def one(address: str) -> RecipientResult:
            started = time.monotonic()
            known = resolved.get(address) if resolved else None
            result = await self._deliver_one(data, mail_from, address, folder, received, known)
            self._log(msgid, mail_from, result, len(data), time.monotonic() - started)
            return result

        if len(recipients) == 1:  # the common case: no task and loop round trip for gather
            return [await one(recipients[0])]
        # Recipients' copies are written concurrently (their fsyncs overlap); copies for one
        # folder meet in the group commit. gather keeps the results in recipient order.
        return list(await asyncio.gather(*(one(address) for address in recipients)))

    async def _deliver_one(
        self,
        data: bytes,
        mail_from: str | None,
        address: str,
        folder: str | None,
        received: ReceivedInfo | None,
        known: Recipient | None = None,
    ) -> RecipientResult:
        try:
            rcpt = known if known is not None else await self.resolve(address)
        except MailError as exc:
            return RecipientResult(address, False, exc, None, None)
        except Exception as exc:  # e.g. the Maildir unreadable while looking up a folder
            log.exception("resolving %s failed", _clean(address))
            return RecipientResult(
                address, False, MailError(MailErrorKind.TEMP, _temp_reason(exc)), None, None
            )
        target = folder or rcpt.folder
        try:
            message = self.trace_headers(data, mail_from, rcpt.address, received) + data
            account = await self.open_account(rcpt.record)
            try:
                mailbox = await account.open_mailbox(target)
            except MailError as exc:
                if exc.kind is not MailErrorKind.NOTFOUND or target == INBOX:
                    raise
                log.info(
                    "folder %r of %s does not exist, delivering to INBOX", target, rcpt.account
                )
                target = INBOX
                mailbox = await account.open_mailbox(target)
            info = await self._group.deliver(rcpt.account, mailbox, NewMessage(message))
            return RecipientResult(rcpt.address, True, None, target, info.uid)
        except MailError as exc:
            if exc.kind in (MailErrorKind.NOQUOTA, MailErrorKind.TOOBIG):
                return RecipientResult(rcpt.address, False, exc, target, None)
            log.warning("delivery to %s failed temporarily: %r", rcpt.account, exc)
            temp = MailError(MailErrorKind.TEMP, exc.message)
            return RecipientResult(rcpt.address, False, temp, target, None)
        except Exception as exc:  # disk full, store locked, a bug: the sender must retry
            if isinstance(exc, OSError):
                log.warning("delivery to %s failed: %s", rcpt.account, exc)
            else:
                log.exception("delivery to %s failed", rcpt.account)
            temp = MailError(MailErrorKind.TEMP, _temp_reason(exc))
            return RecipientResult(rcpt.address, False, temp, target, None)

    def _log(
        self,
        msgid: str,
        mail_from: str | None,
        result: RecipientResult,
        size: int,
        elapsed: float,
    ) -> None:
        """One grep-able line per recipient: id, sender, recipient, folder, size, result."""
        if result.ok:
            outcome = f"result=stored uid={result.uid}"
        else:
            err = result.error
            kind = err.kind.name if err else "?"
            outcome = f"result=failed kind={kind} reason={_clean(err.message) if err else '-'!r}"
        log.info(
            "delivery id=%s from=<%s> to=<%s> folder=%s size=%d %s time=%.3fs",
            msgid,
            _clean(mail_from or "") if mail_from != "<>" else "",
            _clean(result.recipient),
            result.folder or "-",
            size,
            outcome,
            elapsed,
        )
