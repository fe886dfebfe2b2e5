"""APPEND with MULTIAPPEND (RFC 3502), UIDPLUS's APPENDUID (RFC 4315 §3), APPENDLIMIT
(RFC 7889), BINARY literal8 (RFC 3516 §4.4) and UTF8 (RFC 6855 §4), RFC 9051 §6.3.12."""

from __future__ import annotations

from mailhub.errors import MailError, MailErrorKind
from mailhub.imap.proto import Code, ResponseCode
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.responses import Tagged
from mailhub.imap.session import CommandError, Session
from mailhub.store.flags import normalise
from mailhub.store.model import NewMessage


async def handle_append(session: Session, cmd: c.Append) -> Tagged:
    """All messages of a MULTIAPPEND are stored or none (the store checks quota first).

    A missing target mailbox answers ``NO [TRYCREATE]`` (RFC 9051 §6.3.12). If the target
    is the selected mailbox, the new messages reach this session's view through the change
    feed like anyone else's, so the dispatcher sends ``* n EXISTS`` before the tagged OK.
    """
    account = session.account
    assert account is not None
    limit = session.settings.limits.max_literal_size
    batch: list[NewMessage] = []
    for msg in cmd.messages:
        if not msg.data:
            raise CommandError("NO", "Cannot store an empty message", Code.CANNOT)
        if len(msg.data) > limit:
            raise CommandError("NO", f"Message larger than APPENDLIMIT {limit}", Code.TOOBIG)
        flags = normalise(tuple(f for f in msg.flags if f.lower() != "\\recent"))
        when = msg.date.timestamp() if msg.date is not None else None
        batch.append(NewMessage(msg.data, flags, when))
    try:
        mailbox = await account.open_mailbox(cmd.mailbox)
    except MailError as exc:
        if exc.kind is MailErrorKind.NOTFOUND:
            raise CommandError("NO", "No such mailbox", Code.TRYCREATE) from None
        raise
    infos = await mailbox.append(batch)
    code = ResponseCode.appenduid(mailbox.uidvalidity, [i.uid for i in infos])
    return session.ok(cmd, "APPEND completed", code)
