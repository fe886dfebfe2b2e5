"""COPY / UID COPY (RFC 9051 §6.4.7) and MOVE / UID MOVE (RFC 6851), with UIDPLUS's
COPYUID (RFC 4315 §3). A missing target answers ``NO [TRYCREATE]``."""

from __future__ import annotations

from mailhub.errors import MailError, MailErrorKind
from mailhub.imap.proto import Code, ResponseCode
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.responses import Tagged, Untagged
from mailhub.imap.selected import SelectedView
from mailhub.imap.session import CommandError, Session
from mailhub.store.api import Mailbox


async def _target(session: Session, name: str) -> Mailbox:
    assert session.account is not None
    try:
        return await session.account.open_mailbox(name)
    except MailError as exc:
        if exc.kind is MailErrorKind.NOTFOUND:
            raise CommandError("NO", "No such mailbox", Code.TRYCREATE) from None
        raise


def _uids(view: SelectedView, cmd: c.Copy | c.Move) -> list[int]:
    seqs = view.resolve(cmd.seqset, uid=cmd.uid)
    return [view.uid(s) for s in seqs if not view.is_expunged(view.uid(s))]


def _copyuid(dest: Mailbox, mapping: dict[int, int]) -> ResponseCode | None:
    if not mapping:
        return None
    src = sorted(mapping)
    return ResponseCode.copyuid(dest.uidvalidity, src, [mapping[u] for u in src])


async def handle_copy(session: Session, cmd: c.Copy) -> Tagged:
    view = session.selected
    assert view is not None
    uids = _uids(view, cmd)
    dest = await _target(session, cmd.mailbox)
    mapping = await view.mailbox.copy(uids, dest.name) if uids else {}
    return session.ok(cmd, "COPY completed", _copyuid(dest, mapping))


async def handle_move(session: Session, cmd: c.Move) -> Tagged:
    """RFC 6851 §4.3: ``* OK [COPYUID ...]`` first, then the EXPUNGEs (sent by the dispatcher
    from the change feed: MOVE may break sequence numbers), then the tagged OK."""
    view = session.selected
    assert view is not None
    if view.readonly:
        raise CommandError("NO", "Mailbox is read-only (EXAMINE)", Code.READ_ONLY)
    uids = _uids(view, cmd)
    dest = await _target(session, cmd.mailbox)
    if dest.name == view.name:
        raise CommandError("NO", "Cannot move into the same mailbox", Code.CANNOT)
    mapping = await view.mailbox.move(uids, dest.name) if uids else {}
    code = _copyuid(dest, mapping)
    if code is not None:
        await session.send(Untagged("OK", "Moved", code))
    return session.ok(cmd, "MOVE completed")
