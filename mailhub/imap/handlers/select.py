"""SELECT / EXAMINE (with CONDSTORE and QRESYNC parameters), CLOSE, UNSELECT, CHECK,
EXPUNGE and UID EXPUNGE (RFC 9051 §6.3.2-6.3.3, §6.4.1-6.4.3, RFC 4315 §2.1, RFC 3691,
RFC 7162 §3.1.8 and §3.2.5)."""

from __future__ import annotations

from mailhub.imap.proto import Code, ResponseCode, State
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.responses import (
    ExistsResponse,
    FetchResponse,
    FlagsResponse,
    ListResponse,
    RecentResponse,
    Response,
    Tagged,
    Untagged,
    VanishedResponse,
    fetch_flags,
)
from mailhub.imap.selected import SelectedView
from mailhub.imap.session import CommandError, Session
from mailhub.store.flags import DELETED, SYSTEM_FLAGS
from mailhub.store.model import SEPARATOR

_SYSTEM_ORDER = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
assert set(_SYSTEM_ORDER) == SYSTEM_FLAGS


def _view(session: Session) -> SelectedView:
    view = session.selected
    assert view is not None  # SELECTED-only commands
    return view


async def _deselect(session: Session) -> None:
    if session.selected is not None:
        session.selected.close()
        session.selected = None
    session.state = State.AUTHENTICATED


async def handle_select(session: Session, cmd: c.Select) -> Tagged:
    """RFC 9051 §6.3.2 (SELECT) and §6.3.3 (EXAMINE)."""
    account = session.account
    assert account is not None and session.address is not None
    if cmd.qresync is not None and not session.qresync:
        raise CommandError("BAD", "QRESYNC parameter without ENABLE QRESYNC")
    if session.selected is not None:
        # RFC 9051 §7.1 / RFC 7162 §3.2.11: the old mailbox is closed (no expunge).
        await _deselect(session)
        if session.rev2 or session.condstore:
            await session.send(
                Untagged("OK", "Previous mailbox closed", ResponseCode.of(Code.CLOSED))
            )
    session.state = State.AUTHENTICATED
    mailbox = await account.open_mailbox(cmd.mailbox)
    # Subscribe before the snapshot so nothing that happens in between is missed.
    sub = account.bus.subscribe(session.address, mailbox.name)
    try:
        snap = await mailbox.snapshot()
        first_recent = None
        if not session.rev2 and not cmd.readonly:
            first_recent = await mailbox.claim_recent()
        keywords = await mailbox.keywords()
    except BaseException:
        sub.close()
        raise
    view = SelectedView(
        session, mailbox, snap, sub, readonly=cmd.readonly, first_recent=first_recent
    )
    if cmd.condstore or cmd.qresync is not None:
        session.condstore_used = True
    flags = list(_SYSTEM_ORDER) + sorted(k for k in keywords if k not in SYSTEM_FLAGS)
    out: list[Response] = [FlagsResponse(tuple(flags))]
    perm = () if cmd.readonly else (*flags, "\\*")
    out.append(Untagged("OK", "Flags permitted", ResponseCode.permanentflags(perm)))
    out.append(ExistsResponse(view.exists))
    if not session.rev2:
        out.append(RecentResponse(view.recent_count))
        first_unseen = next(
            (i + 1 for i, m in enumerate(view.messages) if "\\Seen" not in m.flags), None
        )
        if first_unseen is not None:
            out.append(Untagged("OK", "First unseen", ResponseCode.unseen(first_unseen)))
    out.append(Untagged("OK", "UIDs valid", ResponseCode.uidvalidity(snap.uidvalidity)))
    out.append(Untagged("OK", "Predicted next UID", ResponseCode.uidnext(snap.uid_next)))
    out.append(Untagged("OK", "Highest", ResponseCode.highestmodseq(snap.highest_modseq)))
    if session.rev2:
        out.append(ListResponse((), SEPARATOR, mailbox.name))
    await session.send(*out)
    session.selected = view
    session.state = State.SELECTED
    if cmd.qresync is not None and cmd.qresync.uidvalidity == snap.uidvalidity:
        await _qresync(session, view, cmd.qresync)
    code = Code.READ_ONLY if cmd.readonly else Code.READ_WRITE
    return session.ok(cmd, f"{'EXAMINE' if cmd.readonly else 'SELECT'} completed", code)


async def _qresync(session: Session, view: SelectedView, params: c.QResyncParams) -> None:
    """RFC 7162 §3.2.5.1: VANISHED (EARLIER) for known UIDs that are gone, then FETCH for
    messages changed since the client's MODSEQ."""
    changes = await view.mailbox.changes_since(params.modseq)
    vanished = list(changes.vanished)
    if params.known_uids is not None:
        top = max(vanished, default=0)
        vanished = [u for u in vanished if params.known_uids.contains(u, top)]
    if vanished:
        await session.send(VanishedResponse(tuple(sorted(vanished)), earlier=True))
    for info in changes.changed:
        seq = view.seq_of(info.uid)
        if seq is None:
            continue
        flags = sorted(info.flags)
        if view.is_recent(info.uid):
            flags.append("\\Recent")
        await session.send(
            FetchResponse(
                seq, (("UID", info.uid), ("FLAGS", fetch_flags(flags)), ("MODSEQ", info.modseq))
            )
        )


async def handle_close(session: Session, cmd: c.Close) -> Tagged:
    """RFC 9051 §6.4.1: silently expunge ``\\Deleted`` messages (unless read-only)."""
    view = _view(session)
    if not view.readonly:
        await view.updates(allow_expunge=False)  # others' \Deleted flags count; CLOSE is silent
        uids = [m.uid for m in view.messages if DELETED in m.flags]
        if uids:
            await view.mailbox.expunge(uids)
    await _deselect(session)
    return session.ok(cmd, "CLOSE completed")


async def handle_unselect(session: Session, cmd: c.Unselect) -> Tagged:
    """RFC 3691 / RFC 9051 §6.4.2: deselect without expunging."""
    await _deselect(session)
    return session.ok(cmd, "UNSELECT completed")


async def handle_check(session: Session, cmd: c.Check) -> Tagged:
    """RFC 3501 §6.4.1: a checkpoint; we fold in outside changes now."""
    await _view(session).mailbox.sync()
    return session.ok(cmd, "CHECK completed")


async def handle_expunge(session: Session, cmd: c.Expunge) -> Tagged:
    """RFC 9051 §6.4.3 and UID EXPUNGE (RFC 4315 §2.1). The EXPUNGE (or VANISHED) responses
    come from the change feed, through the dispatcher's updates, like anyone else's."""
    view = _view(session)
    if view.readonly:
        raise CommandError("NO", "Mailbox is read-only", Code.READ_ONLY)
    # Flags other sessions set count too: fold them in first.
    await session.send(*await view.updates(allow_expunge=True))
    uids = [m.uid for m in view.messages if DELETED in m.flags and not view.is_expunged(m.uid)]
    if cmd.uid and cmd.uids is not None:
        top = view.uid(view.exists) if view.exists else 0
        uids = [u for u in uids if cmd.uids.contains(u, top)] if top else []
    if uids:
        await view.mailbox.expunge(uids)
    await session.send(*await view.updates(allow_expunge=True))
    if session.condstore:
        return session.ok(cmd, "EXPUNGE completed", ResponseCode.highestmodseq(view.highest_modseq))
    return session.ok(cmd, "EXPUNGE completed")
