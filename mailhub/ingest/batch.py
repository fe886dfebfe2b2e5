"""Group commit for deliveries that arrive at the same folder at the same time.

Why: a store append pays a fixed cost besides writing the file - a hop to a worker thread, an
index transaction, fsyncs of ``new/`` and ``cur/`` - and appends to one folder run one after
another. When ten LMTP connections deliver into one INBOX, handing the store the messages that
queued up meanwhile as one ``Mailbox.deliver([...])`` call pays that cost once per batch.
Every message is still fsynced in its final place before its sender is answered, and UIDs are
still assigned in arrival order. A lone delivery goes straight through (a batch of one).

A batch is all or nothing in the store (quota is checked for the whole batch), so when a
batch of several fails, each message is retried on its own: one message over quota, or one
failure, never fails its neighbours.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mailhub.errors import MailError, MailErrorKind
from mailhub.store.api import Mailbox
from mailhub.store.model import MessageInfo, NewMessage

MAX_BATCH = 64


@dataclass
class _Queue:
    mailbox: Mailbox
    pending: list[tuple[NewMessage, asyncio.Future[MessageInfo]]] = field(default_factory=list)
    running: bool = False
    task: asyncio.Task[None] | None = None  # a strong reference while it runs


class GroupCommit:
    """Per-folder queues; ``deliver`` returns the stored message's info or raises."""

    def __init__(self) -> None:
        self._queues: dict[tuple[str, str], _Queue] = {}

    async def deliver(self, account: str, mailbox: Mailbox, message: NewMessage) -> MessageInfo:
        key = (account.lower(), mailbox.name)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(mailbox)
        future: asyncio.Future[MessageInfo] = asyncio.get_running_loop().create_future()
        queue.pending.append((message, future))
        if not queue.running:
            queue.running = True
            queue.task = asyncio.get_running_loop().create_task(self._drain(key, queue))
        return await future

    async def _drain(self, key: tuple[str, str], queue: _Queue) -> None:
        batch: list[tuple[NewMessage, asyncio.Future[MessageInfo]]] = []
        try:
            while queue.pending:
                batch = queue.pending[:MAX_BATCH]
                del queue.pending[:MAX_BATCH]
                await self._commit(queue.mailbox, batch)
        except BaseException as exc:  # cancelled at shutdown: nobody may wait forever
            failure = MailError(MailErrorKind.TEMP, "delivery interrupted")
            for _, future in batch + queue.pending:
                _settle(future, exc=failure)
            queue.pending.clear()
            if not isinstance(exc, Exception):
                raise
        finally:
            queue.running = False
            queue.task = None
            if not queue.pending and self._queues.get(key) is queue:
                del self._queues[key]

    async def _commit(
        self, mailbox: Mailbox, batch: list[tuple[NewMessage, asyncio.Future[MessageInfo]]]
    ) -> None:
        try:
            infos = await mailbox.deliver([message for message, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
            for item in batch:  # all or nothing in the store: give each its own chance
                await self._commit(mailbox, [item])
            return
        for (_, future), info in zip(batch, infos, strict=True):
            _settle(future, info=info)


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
