"""STORE / UID STORE (RFC 9051 §6.4.6) with .SILENT and CONDSTORE's UNCHANGEDSINCE
(RFC 7162 §3.1.3: refused messages are listed in ``[MODIFIED]``)."""

from __future__ import annotations

from mailhub.imap.proto import Code, ResponseCode
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.responses import Tagged
from mailhub.imap.session import CommandError, Session
from mailhub.store.flags import FlagOp, normalise

_OPS = {"replace": FlagOp.REPLACE, "add": FlagOp.ADD, "remove": FlagOp.REMOVE}


async def handle_store(session: Session, cmd: c.Store) -> Tagged:
    """The answer's FETCH responses come from this command's own results (the view records
    them, so the change feed does not report them a second time)."""
    view = session.selected
    assert view is not None
    if view.readonly:
        raise CommandError("NO", "Mailbox is read-only (EXAMINE)", Code.READ_ONLY)
    if cmd.unchangedsince is not None:
        session.condstore_used = True
    seqs = view.resolve(cmd.seqset, uid=cmd.uid)
    live = [s for s in seqs if not view.is_expunged(view.uid(s))]
    uids = [view.uid(s) for s in live]
    flags = normalise(tuple(f for f in cmd.flags if f.lower() != "\\recent"))
    changed, refused = await view.mailbox.store_flags(
        uids, _OPS[cmd.mode], flags, cmd.unchangedsince
    )
    view.note_flags(changed)
    refused_set = set(refused)
    changed_uids = {i.uid for i in changed}
    if not cmd.silent or session.condstore:
        for seq in live:
            uid = view.uid(seq)
            if uid in refused_set:
                continue
            if cmd.silent and uid not in changed_uids:
                continue
            if cmd.silent:  # RFC 7162 §3.1.3: .SILENT still reports the new MODSEQ
                resp = view.flags_response(seq, with_uid=cmd.uid)
                await session.send(type(resp)(seq, tuple(i for i in resp.items if i[0] != "FLAGS")))
            else:
                await session.send_raw(view.flags_update(seq, with_uid=cmd.uid).data)
    if refused:
        numbers = (
            sorted(refused)
            if cmd.uid
            else sorted(s for s in (view.seq_of(u) for u in refused) if s is not None)
        )
        return session.ok(cmd, "Conditional STORE failed", ResponseCode.modified(numbers))
    if len(live) < len(seqs) and not cmd.uid:
        return session.no(cmd, "Some messages were expunged", Code.EXPUNGEISSUED)
    return session.ok(cmd, "STORE completed")
