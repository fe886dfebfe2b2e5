"""The Maildir++ mailstore: the only code that touches mail files.

Layout under the store root (``<data dir>/mail``): ``<domain>/<local part>/`` is an account's
Maildir++ root (INBOX), with ``.<Folder>`` subfolders; see ``docs/storage-format.md``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from mailhub.errors import MailError, MailErrorKind
from mailhub.store.bus import ChangeBus
from mailhub.store.maildir.account import MaildirAccount
from mailhub.store.maildir.mailbox import MaildirMailbox
from mailhub.store.maildir.watcher import Inotify, NameCallback, try_inotify
from mailhub.store.model import QuotaLimits

__all__ = ["MaildirAccount", "MaildirMailbox", "MaildirMailstore", "account_dir"]

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.5


def account_dir(root: Path, address: str) -> Path:
    """Where an address's Maildir lives; refuses addresses that could escape ``root``."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise MailError(MailErrorKind.BADNAME, f"{address!r} is not an address (user@domain)")
    for part in (local, domain):
        if (
            part in (".", "..")
            or part.startswith(".")
            or any(c in part for c in "/\\\0")
            or any(ord(c) < 0x20 for c in part)
        ):
            raise MailError(MailErrorKind.BADNAME, f"address {address!r} cannot name a mailbox")
    return root / domain.lower() / local.lower()


class MaildirMailstore:
    """Every account under one directory, sharing one change bus and one folder watcher."""

    def __init__(self, root: Path, bus: ChangeBus | None = None) -> None:
        self.root = Path(root)
        self._bus = bus if bus is not None else ChangeBus()
        self._accounts: dict[str, MaildirAccount] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._inotify: Inotify | None = None
        self._watcher_started = False
        self.polling = False
        self._poll_task: asyncio.Task[None] | None = None
        self._watched: dict[int, MaildirMailbox] = {}

    @property
    def bus(self) -> ChangeBus:
        return self._bus

    async def open_account(self, address: str, limits: QuotaLimits | None = None) -> MaildirAccount:
        key = address.lower()
        account = self._accounts.get(key)
        if account is None:
            # Serialised per address: the first open creates the Maildir and its folders, and
            # concurrent first deliveries must not race to create them.
            async with self._opening.setdefault(key, asyncio.Lock()):
                account = self._accounts.get(key)
                if account is None:
                    root = account_dir(self.root, address)
                    account = MaildirAccount(self, address, root, limits or QuotaLimits())
                    await account.initialise()
                    self._accounts[key] = account
            self._opening.pop(key, None)
        if limits is not None:
            account.set_quota_limits(limits)
        return account

    async def close(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()
            self._poll_task = None
        for account in list(self._accounts.values()):
            await account.close()
        self._accounts.clear()
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
        self._watcher_started = False

    # ------------------------------------------------------------------ watching
    def _start_watcher(self) -> None:
        if self._watcher_started:
            return
        self._watcher_started = True
        self._inotify = try_inotify(asyncio.get_running_loop())
        if self._inotify is None:
            self._enable_polling()

    def _enable_polling(self) -> None:
        self.polling = True
        if self._poll_task is None:
            self._poll_task = asyncio.get_running_loop().create_task(self._poll())

    def watch(self, mailbox: MaildirMailbox) -> None:
        """Start noticing outside changes to ``mailbox``'s files."""
        self._start_watcher()
        if self._inotify is None:
            return
        try:
            for sub in ("new", "cur"):
                wd = self._inotify.watch(mailbox.core.path / sub, _forwarder(mailbox, sub))
                mailbox.watches.append(wd)
                self._watched[wd] = mailbox
        except OSError as exc:
            log.warning(
                "cannot watch %s (%s); falling back to polling. Raise "
                "fs.inotify.max_user_watches to avoid this.",
                mailbox.core.path,
                exc,
            )
            self._enable_polling()

    def unwatch(self, mailbox: MaildirMailbox) -> None:
        if self._inotify is not None:
            for wd in mailbox.watches:
                self._inotify.unwatch(wd)
                self._watched.pop(wd, None)
        mailbox.watches.clear()

    async def _poll(self) -> None:
        """Fallback: sync folders somebody watches, every POLL_INTERVAL seconds."""
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            for account in list(self._accounts.values()):
                if not self._bus.subscriber_count(account.address):
                    continue
                for mailbox in list(account._open.values()):
                    try:
                        await mailbox.snapshot()
                    except Exception:
                        log.exception("polling %s of %s failed", mailbox.name, account.address)


def _forwarder(mailbox: MaildirMailbox, sub: str) -> NameCallback:
    def forward(name: str, appeared: bool) -> None:
        mailbox.on_name_event(sub, name, appeared)

    return forward
