"""FETCH / UID FETCH (RFC 9051 §6.4.5, §6.4.9; RFC 3516 BINARY; RFC 7162 §3.1.4 CHANGEDSINCE
and §3.2.6 VANISHED).

A thin layer over :mod:`mailhub.imap.fetching`: resolve the set against the session's view,
send ``* VANISHED (EARLIER)`` first when asked, then stream one response per message. The
flags this command changed (implicit \\Seen) are recorded in the view so the change feed
does not report them a second time.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailhub.imap.fetching import Fetcher, FetchFailed, FetchOptions, vanished_uids
from mailhub.imap.proto import Code
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.responses import Tagged, VanishedResponse
from mailhub.imap.session import CommandError, Session
from mailhub.store.model import MessageInfo


async def handle_fetch(session: Session, cmd: c.Fetch) -> Tagged:
    """RFC 9051 §6.4.5. A message another session expunged meanwhile gets no response and
    the command ends ``OK [EXPUNGEISSUED]`` (Dovecot's answer; clients loop on NO)."""
    view = session.selected
    assert view is not None
    if cmd.vanished:
        # RFC 7162 §3.2.6: only UID FETCH with CHANGEDSINCE, only after ENABLE QRESYNC
        if not session.qresync:
            raise CommandError("BAD", "VANISHED needs ENABLE QRESYNC")
        if not cmd.uid or cmd.changedsince is None:
            raise CommandError("BAD", "VANISHED needs UID FETCH with CHANGEDSINCE")
    if cmd.changedsince is not None or any(a.name == "MODSEQ" for a in cmd.atts):
        session.condstore_used = True  # RFC 7162 §3.1: a CONDSTORE-enabling command
    seqs = view.resolve(cmd.seqset, uid=cmd.uid)
    if cmd.vanished and cmd.changedsince is not None:
        changes = await view.mailbox.changes_since(cmd.changedsince)
        gone = vanished_uids(changes.vanished, cmd.seqset, view.uid_next, session.searchres)
        if gone:
            await session.send(VanishedResponse(tuple(gone), earlier=True))
    fetcher = Fetcher(
        view.mailbox,
        cmd.atts,
        FetchOptions(
            uid_command=cmd.uid,
            readonly=view.readonly,
            condstore=session.condstore,
            changedsince=cmd.changedsince,
            is_recent=view.recent_test,
        ),
    )
    messages = view.messages
    targets: Sequence[tuple[int, MessageInfo]]
    whole = len(seqs) == len(messages)  # 1:* (the numbers are sorted and distinct)
    if whole:
        targets = list(zip(seqs, messages, strict=True))
    else:
        targets = [(s, messages[s - 1]) for s in seqs]
    if fetcher.index_only:
        chunk: list[bytes] = []
        size = 0
        for line in fetcher.encode_index_only(targets, messages if whole else None):
            chunk.append(line)
            size += len(line)
            if size >= 65536:
                await session.send_raw(b"".join(chunk))
                chunk, size = [], 0
        if chunk:
            await session.send_raw(b"".join(chunk))
        return session.ok(cmd, "FETCH completed")
    if fetcher.direct_for(targets):
        for batch in fetcher.batches(targets):
            data = await fetcher.encode_batch(batch)
            if data:
                await session.send_raw(data)
        if fetcher.missing:
            return session.ok(cmd, "Some messages were already expunged", Code.EXPUNGEISSUED)
        return session.ok(cmd, "FETCH completed")
    try:
        async for resp in fetcher.responses(targets):
            await session.send(resp)
    except FetchFailed as exc:
        return Tagged(cmd.tag, "BAD" if exc.status == "BAD" else "NO", exc.text, exc.code)
    finally:
        if fetcher.updated:
            view.note_flags(list(fetcher.updated.values()))
    if fetcher.missing:
        return session.ok(cmd, "Some messages were already expunged", Code.EXPUNGEISSUED)
    return session.ok(cmd, "FETCH completed")
