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

from mailhub.imap.proto import IdleDone, ParseError
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.responses import Continuation, Tagged, Untagged, encode
from mailhub.imap.session import Session


async def handle_idle(session: Session, cmd: c.Idle) -> Tagged:
    conn = session.conn
    limits = session.settings.limits
    view = session.selected
    if view is not None:
        await session.send(*await view.updates(allow_expunge=True))
    await conn.write(encode(Continuation("idling")))
    await conn.flush()
    conn.parser.start_idle()
    started = time.monotonic()
    deadline = started + limits.imap_autologout
    next_keepalive = started + limits.imap_idle_keepalive
    read = asyncio.ensure_future(conn.next_event(limits.imap_autologout))
    try:
        while True:
            now = time.monotonic()
            wait_for = max(0.0, min(deadline, next_keepalive) - now)
            waiter: asyncio.Future[bool] | None = None
            if view is not None and view is session.selected:
                waiter = asyncio.ensure_future(view.sub.wait(wait_for))
            tasks: set[asyncio.Future[object]] = {read}  # type: ignore[arg-type]
            if waiter is not None:
                tasks.add(waiter)  # type: ignore[arg-type]
            done, _ = await asyncio.wait(tasks, timeout=wait_for, return_when="FIRST_COMPLETED")
            if waiter is not None and not waiter.done():
                waiter.cancel()
            if read in done:
                ev = read.result()
                if ev is None:
                    raise ConnectionError("connection closed during IDLE")
                conn.parser.resume()
                if isinstance(ev, IdleDone):
                    return session.ok(cmd, "IDLE terminated")
                if isinstance(ev, ParseError):
                    return session.bad(cmd, "Expected DONE")
                return session.bad(cmd, "Expected DONE")
            if view is not None and view.sub.pending():
                updates = await view.updates(allow_expunge=True)
                if updates:
                    await session.send(*updates)
                    await conn.flush()
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError("IDLE exceeded the autologout")
            if now >= next_keepalive:
                await session.send(Untagged("OK", "Still here"))
                await conn.flush()
                next_keepalive = now + limits.imap_idle_keepalive
    finally:
        if not read.done():
            read.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read
