"""Pipelined group commit for deliveries that arrive at the same folder at the same time.

Why: a delivery's time is mostly the write and fsync of its file; the rest (UIDs, renames into
``new/``, one index transaction, the fsync of ``new/``) must run one folder-commit at a time.
So each message is handed to the store's ``Mailbox.prepare`` (write + fsync in ``tmp/``, many
at once) the moment its DATA is complete, even while earlier messages of the folder are being
committed; the commit step then takes every message at the head of the queue whose file is
ready and commits them together with one ``Mailbox.commit([...])``. Ten senders thus keep
the disk busy with the next files while the folder commits the previous ones, instead of
waiting for a whole batch (write, then commit) before anything new is written.

A lone delivery (nothing else in flight for the folder) skips the queue: one
``Mailbox.deliver`` call, one thread hop instead of two.

Guarantees kept: a message is answered only after its commit returned (file fsynced in its
final place, directory fsynced); UIDs follow arrival order (the queue is committed strictly
from its head, a later message never overtakes one still being written); a message whose
prepare or commit failed is discarded (its temporary file removed) and answered with the
error, never stored half-way. A commit is all or nothing in the store (quota), so when a
batch of several fails, each message is retried on its own: one message over quota, or one
failure, never fails its neighbours.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass, field

from mailhub.errors import MailError, MailErrorKind
from mailhub.store.api import Mailbox, PreparedMessage
from mailhub.store.model import MessageInfo, NewMessage

MAX_BATCH = 64


@dataclass(eq=False, slots=True)
class _Entry:
    ready: asyncio.Future[None]  # done once the prepare finished, well or not
    future: asyncio.Future[MessageInfo]  # what the delivering connection waits for
    prepared: PreparedMessage | None = None
    failure: BaseException | None = None


@dataclass(eq=False)
class _Queue:
    mailbox: Mailbox
    pending: collections.deque[_Entry] = field(default_factory=collections.deque)
    committing: list[_Entry] = field(default_factory=list)
    task: asyncio.Task[None] | None = None  # the commit loop, while it runs
    alone: bool = False  # a lone delivery is being stored with one store call


class GroupCommit:
    """Per-folder queues; ``deliver`` returns the stored message's info or raises."""

    def __init__(self) -> None:
        self._queues: dict[tuple[str, str], _Queue] = {}

    async def deliver(self, account: str, mailbox: Mailbox, message: NewMessage) -> MessageInfo:
        loop = asyncio.get_running_loop()
        key = (account.lower(), mailbox.name)
        queue = self._queues.get(key)
        if queue is None or queue.mailbox is not mailbox:
            queue = self._queues[key] = _Queue(mailbox)
        if queue.task is None and not queue.alone and not queue.pending:
            return await self._deliver_alone(key, queue, message)
        entry = _Entry(loop.create_future(), loop.create_future())
        queue.pending.append(entry)  # its place in the queue is its place in UID order
        if queue.task is None and not queue.alone:
            queue.task = loop.create_task(self._drain(key, queue))
        try:
            entry.prepared = await mailbox.prepare(message)
        except asyncio.CancelledError:
            entry.future.cancel()  # nobody will wait for the outcome
            raise
        except Exception as exc:  # answered in queue order, like every other outcome
            entry.failure = exc
        finally:
            entry.ready.set_result(None)
        return await entry.future

    async def _deliver_alone(
        self, key: tuple[str, str], queue: _Queue, message: NewMessage
    ) -> MessageInfo:
        """Nothing else is in flight for this folder (one sender, the common case): write and
        commit with one ``Mailbox.deliver`` call, one thread hop instead of two. Messages that
        arrive meanwhile are prepared at once and committed after this one."""
        queue.alone = True
        try:
            return (await queue.mailbox.deliver([message]))[0]
        finally:
            queue.alone = False
            if queue.pending:
                queue.task = asyncio.get_running_loop().create_task(self._drain(key, queue))
            elif self._queues.get(key) is queue:
                del self._queues[key]

    async def _drain(self, key: tuple[str, str], queue: _Queue) -> None:
        try:
            while queue.pending:
                head = queue.pending[0].ready
                if not head.done():
                    await head
                batch = queue.committing
                while queue.pending and len(batch) < MAX_BATCH and queue.pending[0].ready.done():
                    batch.append(queue.pending.popleft())
                ready = []
                for entry in batch:
                    if entry.prepared is not None:
                        ready.append(entry)
                    else:
                        _settle(entry.future, exc=entry.failure or _interrupted())
                if ready:
                    await self._commit(queue.mailbox, ready)
                batch.clear()
        except BaseException as exc:  # cancelled at shutdown: nobody may wait forever
            for entry in [*queue.committing, *queue.pending]:
                _settle(entry.future, exc=_interrupted())
                entry.ready.add_done_callback(_discarder(queue.mailbox, entry))
            queue.committing.clear()
            queue.pending.clear()
            if not isinstance(exc, Exception):
                raise
        finally:
            queue.task = None
            if not queue.pending and self._queues.get(key) is queue:
                del self._queues[key]

    async def _commit(self, mailbox: Mailbox, batch: list[_Entry]) -> None:
        prepared = [entry.prepared for entry in batch if entry.prepared is not None]
        try:
            infos = await mailbox.commit(prepared)
        except Exception as exc:
            if len(batch) == 1:
                mailbox.discard(prepared)
                _settle(batch[0].future, exc=exc)
                return
            for entry in batch:  # all or nothing in the store: give each its own chance
                await self._commit(mailbox, [entry])
            return
        for entry, info in zip(batch, infos, strict=True):
            _settle(entry.future, info=info)


def _interrupted() -> MailError:
    return MailError(MailErrorKind.TEMP, "delivery interrupted")


def _discarder(mailbox: Mailbox, entry: _Entry) -> Callable[[asyncio.Future[None]], None]:
    """A done-callback that removes a prepared file nobody will commit (the store skips one
    that was committed or discarded already)."""

    def discard(_: asyncio.Future[None]) -> None:
        if entry.prepared is not None:
            mailbox.discard([entry.prepared])

    return discard


def _settle(
    future: asyncio.Future[MessageInfo],
    *,
    info: MessageInfo | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():  # the waiter is gone (cannot happen while deliveries are shielded)
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert info is not None
        future.set_result(info)
