"""IDLE (RFC 2177, RFC 9051 §6.3.13): push changes of the selected mailbox as they happen.

Changes arrive on the view's change-bus subscription, so a delivery or another session's
STORE reaches an idling client within milliseconds (well under the one second the issue
asks for). Keep-alive ``* OK Still here`` lines are rare (``limits.imap_idle_keepalive``,
ten minutes by default): phones re-issue IDLE every 24-29 minutes and every wake-up costs
battery. IDLE ends with ``DONE``; a command pipelined right after it (iOS does this) stays
in the parser's buffer and runs next. An IDLE running longer than the autologout ends with
``* BYE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from mailhub.imap.proto import IdleDone
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.responses import Continuation, Tagged, Untagged, encode
from mailhub.imap.session import Session
from mailhub.store.bus import Subscription


class _Wakeup:
    """One cheap future per wake-up instead of tasks: with 5,000 sessions in IDLE, a
    delivery wakes them all, and creating tasks per wake-up (``asyncio.wait``, ``wait_for``
    with a timeout) cost more than the updates themselves."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.flag = False
        self.fut: asyncio.Future[None] | None = None
        self.resume: asyncio.Future[None] | None = None

    def wake(self, *_: object) -> None:
        self.flag = True
        if self.fut is not None and not self.fut.done():
            self.fut.set_result(None)

    async def wait(self) -> None:
        if not self.flag:
            self.fut = self.loop.create_future()
            await self.fut
        self.flag = False

    def drained(self) -> None:
        """The handler folded the pending changes in: the watcher may wait again."""
        if self.resume is not None and not self.resume.done():
            self.resume.set_result(None)


async def _watch(sub: Subscription, state: _Wakeup) -> None:
    """Long-lived (one per IDLE): wake the handler whenever the subscription has changes."""
    while True:
        await sub.wait(None)  # no timeout: no helper task
        state.resume = state.loop.create_future()
        state.wake()
        await state.resume


async def handle_idle(session: Session, cmd: c.Idle) -> Tagged:
    conn = session.conn
    limits = session.settings.limits
    view = session.selected
    if view is not None:
        await session.send(*await view.updates(allow_expunge=True))
    await conn.write(encode(Continuation("idling")))
    await conn.flush()
    conn.parser.start_idle()
    loop = asyncio.get_running_loop()
    state = _Wakeup(loop)
    started = time.monotonic()
    deadline = started + limits.imap_autologout
    next_keepalive = started + limits.imap_idle_keepalive
    read = asyncio.ensure_future(conn.next_event(limits.imap_autologout))
    read.add_done_callback(state.wake)
    watcher = asyncio.ensure_future(_watch(view.sub, state)) if view is not None else None
    timer = loop.call_later(min(deadline, next_keepalive) - started, state.wake)
    try:
        while True:
            await state.wait()
            if read.done():
                ev = read.result()
                if ev is None:
                    raise ConnectionError("connection closed during IDLE")
                conn.parser.resume()
                if isinstance(ev, IdleDone):
                    return session.ok(cmd, "IDLE terminated")
                return session.bad(cmd, "Expected DONE")
            if view is not None and view is session.selected and view.sub.pending():
                updates = await view.updates(allow_expunge=True)
                if updates:
                    await session.send(*updates)
                    await conn.flush()
            state.drained()
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError("IDLE exceeded the autologout")
            if now >= next_keepalive:
                await session.send(Untagged("OK", "Still here"))
                await conn.flush()
                next_keepalive = now + limits.imap_idle_keepalive
                timer.cancel()
                timer = loop.call_later(min(deadline, next_keepalive) - now, state.wake)
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
        if not read.done():
            read.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read
