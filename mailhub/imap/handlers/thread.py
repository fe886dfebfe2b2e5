"""THREAD / UID THREAD (RFC 5256 §3-4): ORDEREDSUBJECT and REFERENCES over the messages a
search matched, answered as one ``* THREAD`` response."""

from __future__ import annotations

from mailhub.imap.handlers.search import run_search
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.responses import Tagged
from mailhub.imap.session import Session
from mailhub.imap.threading_ import DeepThreadResponse, thread_messages


async def handle_thread(session: Session, cmd: c.Thread) -> Tagged:
    """RFC 5256 §3: the numbers are UIDs for UID THREAD, else sequence numbers."""
    view = session.selected
    assert view is not None
    found = await run_search(session, cmd.criteria)
    threads = await thread_messages(view.mailbox, found, cmd.algorithm, uid=cmd.uid)
    await session.send(DeepThreadResponse(threads))
    return session.ok(cmd, "THREAD completed")
