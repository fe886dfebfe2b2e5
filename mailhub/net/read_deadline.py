"""A read timeout that costs nothing per read.

Why: ``async with asyncio.timeout(t)`` around every read schedules and cancels a timer
handle for each command - about a tenth of the server's CPU for a small IMAP command, paid
tens of thousands of times a second under load, for a timeout that almost never fires. Here
each read only moves a deadline (one float). One timer per connection stays armed; when it
fires early (the deadline moved on meanwhile) it re-arms itself for the new deadline, so it
fires about once per timeout period, not once per read.

When the deadline passes during a read, the reading task is cancelled and the cancellation
turned into ``TimeoutError``, as ``asyncio.timeout`` does; a cancellation from elsewhere
(shutdown) stays a cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["ReadDeadline"]

T = TypeVar("T")
# A timer may fire this much before its time (uvloop counts in milliseconds): close enough.
_EARLY = 0.002


class ReadDeadline:
    """The deadline of one connection's reads (one reader at a time)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._reader: asyncio.Task[object] | None = None
        self._expired = False

    async def run(self, read: Awaitable[T], timeout: float | None) -> T:
        """Await ``read``; ``TimeoutError`` if it takes longer than ``timeout`` seconds."""
        if timeout is None:
            return await read
        deadline = self._deadline = self._loop.time() + timeout
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(deadline, self._check)
        task = asyncio.current_task(self._loop)
        assert task is not None
        self._reader = task
        self._expired = False
        try:
            return await read
        except asyncio.CancelledError:
            if self._expired and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            self._reader = None

    def close(self) -> None:
        """Stop the timer (the connection ended): it must not keep the connection alive."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._reader = None

    def _check(self) -> None:
        self._timer = None
        reader = self._reader
        if reader is None:
            return  # not reading now; the next read arms the timer again
        if self._loop.time() < self._deadline - _EARLY:
            self._timer = self._loop.call_at(self._deadline, self._check)
            return
        self._expired = True
        reader.cancel()
