"""The in-process change bus: how one session learns what every other writer did.

``publish`` is synchronous and never awaits, so a store mutation can announce its changes
without yielding to a slow reader. Each subscription has a bounded buffer; when a reader falls
too far behind, its buffer is dropped and ``overflowed`` is set, and the reader resynchronises
from a fresh ``Mailbox.snapshot()`` (mox's ``Comm`` overflow rule).

Changes made by other processes (``mailhub deliver``) or outside programs reach the bus through
the store's folder watcher, which publishes what ``Mailbox.sync`` finds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from types import TracebackType

from mailhub.store.changes import Change, MailboxDeleted, MailboxRenamed

DEFAULT_BUFFER = 10_000


class Subscription:
    """A reader's queue of changes for one account, optionally one folder.

    Use as a context manager (or call ``close``) so the bus forgets it.
    """

    def __init__(self, bus: ChangeBus, account: str, mailbox: str | None, limit: int) -> None:
        self._bus = bus
        self.account = account
        self.mailbox = mailbox
        self._limit = limit
        self._queue: deque[Change] = deque()
        self._event = asyncio.Event()
        self.overflowed = False

    def _offer(self, change: Change) -> None:
        if self.mailbox is not None and not _concerns(change, self.mailbox):
            return
        if self.overflowed:
            return
        if len(self._queue) >= self._limit:
            self._queue.clear()
            self.overflowed = True
        else:
            self._queue.append(change)
        self._event.set()

    def follow_rename(self, new_name: str) -> None:
        """Keep watching a folder after it was renamed."""
        self.mailbox = new_name

    def pending(self) -> bool:
        """Whether ``drain`` would return something."""
        return bool(self._queue) or self.overflowed

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until a change is pending; returns False on timeout."""
        if self.pending():
            return True
        self._event.clear()
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return self.pending()
        return True

    def drain(self) -> tuple[list[Change], bool]:
        """Take every pending change; the flag says the buffer overflowed (resync needed)."""
        changes = list(self._queue)
        overflowed = self.overflowed
        self._queue.clear()
        self.overflowed = False
        self._event.clear()
        return changes, overflowed

    def close(self) -> None:
        self._bus._forget(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _concerns(change: Change, mailbox: str) -> bool:
    name = change.mailbox
    if name == mailbox:
        return True
    # A rename or delete of a parent concerns its children too.
    return isinstance(change, MailboxRenamed | MailboxDeleted) and mailbox.startswith(name + "/")


class ChangeBus:
    """Fan-out of change records to every subscription of an account."""

    def __init__(self, buffer_limit: int = DEFAULT_BUFFER) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self._buffer_limit = buffer_limit

    def subscribe(self, account: str, mailbox: str | None = None) -> Subscription:
        """Start receiving the changes of ``account`` (only of ``mailbox`` when given)."""
        sub = Subscription(self, account, mailbox, self._buffer_limit)
        self._subs.setdefault(account, set()).add(sub)
        return sub

    def publish(self, account: str, changes: Iterable[Change]) -> None:
        """Hand changes to every subscriber of ``account``. Never blocks."""
        subs = self._subs.get(account)
        if not subs:
            return
        for change in changes:
            for sub in tuple(subs):
                sub._offer(change)

    def subscriber_count(self, account: str, mailbox: str | None = None) -> int:
        """How many subscriptions watch ``account`` (and ``mailbox`` when given)."""
        subs = self._subs.get(account, set())
        if mailbox is None:
            return len(subs)
        return sum(1 for s in subs if s.mailbox in (None, mailbox))

    def _forget(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.account)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.account]
