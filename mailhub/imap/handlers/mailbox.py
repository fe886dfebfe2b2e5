"""Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE, LIST (LIST-EXTENDED
RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE RFC 6154, CHILDREN RFC 3348), LSUB, XLIST,
STATUS (RFC 9051 §6.3.11, STATUS=SIZE RFC 8438, CONDSTORE, APPENDLIMIT RFC 7889) and QUOTA
(RFC 9208). Names use the one separator ``/``; the parser already decoded them (mUTF-7 or
UTF-8) and refused the unsafe ones with ``NO [CANNOT]``."""

from __future__ import annotations

import re
from collections.abc import Iterable

from mailhub.imap.proto import Code
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.responses import (
    ListResponse,
    QuotaResponse,
    QuotaRootResponse,
    StatusDataResponse,
    Tagged,
)
from mailhub.imap.session import CommandError, Session
from mailhub.store.api import Account
from mailhub.store.model import INBOX, SEPARATOR, MailboxInfo, SpecialUse

_USE = {s.value.lower(): s for s in SpecialUse}
# Gmail's XLIST flags, which Outlook looks for (no RFC; Gmail's XLIST documentation).
_XLIST = {
    SpecialUse.DRAFTS: "\\Drafts",
    SpecialUse.SENT: "\\Sent",
    SpecialUse.TRASH: "\\Trash",
    SpecialUse.JUNK: "\\Spam",
    SpecialUse.ALL: "\\AllMail",
    SpecialUse.FLAGGED: "\\Starred",
    SpecialUse.ARCHIVE: "\\Archive",
}


def _account(session: Session) -> Account:
    assert session.account is not None  # the dispatcher checked the state
    return session.account


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """RFC 9051 §6.3.9: ``*`` matches anything, ``%`` anything but the separator."""
    full = pattern
    if reference:
        full = reference + pattern
    if full[:5].upper() == "INBOX" and (len(full) == 5 or full[5] in (SEPARATOR, "*", "%")):
        full = "INBOX" + full[5:]
    out = []
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^" + re.escape(SEPARATOR) + "]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _ancestors(name: str) -> Iterable[str]:
    parts = name.split(SEPARATOR)
    for i in range(1, len(parts)):
        yield SEPARATOR.join(parts[:i])


def _children_of(names: Iterable[str]) -> set[str]:
    """Every name that has at least one child among ``names``."""
    parents: set[str] = set()
    for n in names:
        parents.update(_ancestors(n))
    return parents


async def handle_create(session: Session, cmd: c.Create) -> Tagged:
    """RFC 9051 §6.3.4 (a trailing separator is dropped), CREATE-SPECIAL-USE RFC 6154 §3."""
    name = cmd.mailbox.rstrip(SEPARATOR)
    if not name:
        raise CommandError("NO", "Empty mailbox name", Code.CANNOT)
    if name.upper() == INBOX:
        raise CommandError("NO", "INBOX always exists", Code.ALREADYEXISTS)
    role: SpecialUse | None = None
    if cmd.special_use:
        if len(cmd.special_use) > 1:
            raise CommandError("NO", "Only one special use per mailbox", Code.USEATTR)
        role = _USE.get(cmd.special_use[0].lower())
        if role is None:
            raise CommandError("NO", "Unsupported special use", Code.USEATTR)
    await _account(session).create_mailbox(name, role)
    return session.ok(cmd, "CREATE completed")


async def handle_delete(session: Session, cmd: c.Delete) -> Tagged:
    """RFC 9051 §6.3.5: INBOX cannot be deleted; children survive (the parent then shows as
    ``\\NonExistent``)."""
    if cmd.mailbox == INBOX:
        raise CommandError("NO", "INBOX cannot be deleted", Code.CANNOT)
    await _account(session).delete_mailbox(cmd.mailbox)
    return session.ok(cmd, "DELETE completed")


async def handle_rename(session: Session, cmd: c.Rename) -> Tagged:
    """RFC 9051 §6.3.6; renaming INBOX moves its messages (done by the store)."""
    new = cmd.new_name.rstrip(SEPARATOR)
    if not new or new == INBOX:
        raise CommandError("NO", "Cannot rename to that name", Code.ALREADYEXISTS)
    await _account(session).rename_mailbox(cmd.mailbox, new)
    return session.ok(cmd, "RENAME completed")


async def handle_subscribe(session: Session, cmd: c.Subscribe | c.Unsubscribe) -> Tagged:
    """RFC 9051 §6.3.7-6.3.8 (subscribing to a name that does not exist is allowed)."""
    sub = isinstance(cmd, c.Subscribe)
    await _account(session).subscribe(cmd.mailbox, sub)
    return session.ok(cmd, f"{'UN' if not sub else ''}SUBSCRIBE completed")


async def handle_list(session: Session, cmd: c.List) -> Tagged:
    """RFC 9051 §6.3.9 with RFC 5258 selection/return options, LIST-STATUS and SPECIAL-USE."""
    if len(cmd.patterns) == 1 and cmd.patterns[0] == "" and not cmd.extended:
        # RFC 9051 §6.3.9: the hierarchy delimiter and root of the reference.
        await session.send(ListResponse(("\\Noselect",), SEPARATOR, ""))
        return session.ok(cmd, "LIST completed")
    account = _account(session)
    infos = await account.list_mailboxes()
    selection = set(cmd.selection)
    ret = set(cmd.return_opts)
    subs_only = "SUBSCRIBED" in selection
    special_only = "SPECIAL-USE" in selection
    recursive = "RECURSIVEMATCH" in selection
    show_subscribed = subs_only or "SUBSCRIBED" in ret
    by_name = {i.name: i for i in infos}
    subscribed = set(await account.subscriptions()) if (show_subscribed or recursive) else set()
    universe = set(subscribed) if subs_only else set(by_name)
    parents = _children_of(by_name)
    sub_parents = _children_of(subscribed)
    regexes = [pattern_regex(cmd.reference, p) for p in cmd.patterns if p != ""]
    candidates = set(universe)
    if not subs_only:
        candidates |= parents  # non-existent parents of existing mailboxes
    elif recursive:
        candidates |= sub_parents
    matched = sorted(n for n in candidates if any(r.fullmatch(n) for r in regexes))
    if INBOX in matched:
        matched.remove(INBOX)
        matched.insert(0, INBOX)
    status_items = cmd.status_items if cmd.return_status else ()
    for name in matched:
        info = by_name.get(name)
        attrs: list[str] = []
        extended: list[tuple[str, object]] = []
        if subs_only and name not in subscribed:
            if not (recursive and name in sub_parents):
                continue
            # only listed because a child is subscribed
            extended.append(("CHILDINFO", ("SUBSCRIBED",)))
            if info is None:
                attrs.append("\\NonExistent")
        elif subs_only and recursive and name in sub_parents:
            extended.append(("CHILDINFO", ("SUBSCRIBED",)))
        if info is None and "\\NonExistent" not in attrs:
            attrs.append("\\NonExistent" if (cmd.extended or session.rev2) else "\\Noselect")
        if info is not None or name in parents:
            attrs.append("\\HasChildren" if name in parents else "\\HasNoChildren")
        if show_subscribed and name in subscribed:
            attrs.append("\\Subscribed")
        if info is not None and info.special_use is not None:
            attrs.append(info.special_use.value)
        elif special_only:
            continue
        await session.send(
            ListResponse(tuple(attrs), SEPARATOR, name, tuple(extended))  # type: ignore[arg-type]
        )
        if status_items and info is not None:
            try:
                await _send_status(session, name, status_items)
            except Exception:
                continue
    return session.ok(cmd, "LIST completed")


async def handle_lsub(session: Session, cmd: c.Lsub) -> Tagged:
    """RFC 3501 §6.3.9 (deprecated in rev2 but still used)."""
    account = _account(session)
    subscribed = await account.subscriptions()
    existing = {i.name for i in await account.list_mailboxes()}
    rx = pattern_regex(cmd.reference, cmd.pattern)
    for name in sorted(subscribed, key=lambda n: (n != INBOX, n)):
        if rx.fullmatch(name):
            attrs = () if name in existing else ("\\Noselect",)
            await session.send(ListResponse(attrs, SEPARATOR, name, kind="LSUB"))
    return session.ok(cmd, "LSUB completed")


async def handle_xlist(session: Session, cmd: c.XList) -> Tagged:
    """Gmail's XLIST, for Outlook versions that find special folders only this way."""
    infos: list[MailboxInfo] = await _account(session).list_mailboxes()
    parents = _children_of(i.name for i in infos)
    rx = pattern_regex(cmd.reference, cmd.pattern)
    for info in infos:
        if not rx.fullmatch(info.name):
            continue
        attrs = ["\\HasChildren" if info.name in parents else "\\HasNoChildren"]
        if info.name == INBOX:
            attrs.append("\\Inbox")
        elif info.special_use is not None:
            attrs.append(_XLIST[info.special_use])
        await session.send(ListResponse(tuple(attrs), SEPARATOR, info.name, kind="XLIST"))
    return session.ok(cmd, "XLIST completed")


async def _send_status(session: Session, name: str, items: tuple[str, ...]) -> None:
    mailbox = await _account(session).open_mailbox(name)
    st = await mailbox.status()
    values = {
        "MESSAGES": st.messages,
        "UIDNEXT": st.uid_next,
        "UIDVALIDITY": st.uidvalidity,
        "UNSEEN": st.unseen,
        "DELETED": st.deleted,
        "SIZE": st.size,
        "HIGHESTMODSEQ": st.highest_modseq,
        "RECENT": 0,
        "APPENDLIMIT": session.settings.limits.max_literal_size,
    }
    view = session.selected
    if view is not None and view.name == name and "RECENT" in items:
        values["RECENT"] = view.recent_count
    out = tuple((k, values[k]) for k in items if k in values)
    await session.send(StatusDataResponse(name, out))


async def handle_status(session: Session, cmd: c.Status) -> Tagged:
    """RFC 9051 §6.3.11; HIGHESTMODSEQ is a CONDSTORE-enabling item (RFC 7162 §3.1.2)."""
    if "HIGHESTMODSEQ" in cmd.items:
        session.condstore_used = True
    await _send_status(session, cmd.mailbox, cmd.items)
    return session.ok(cmd, "STATUS completed")


async def _quota_resources(session: Session) -> tuple[tuple[str, int, int], ...]:
    usage = await _account(session).quota()
    res: list[tuple[str, int, int]] = []
    if usage.limits.max_bytes is not None:
        res.append(("STORAGE", (usage.bytes_used + 1023) // 1024, usage.limits.max_bytes // 1024))
    if usage.limits.max_messages is not None:
        res.append(("MESSAGE", usage.messages_used, usage.limits.max_messages))
    return tuple(res)


async def handle_getquota(session: Session, cmd: c.GetQuota) -> Tagged:
    """RFC 9208 §4.2: one quota root, ``""``, for the whole account (when it has limits)."""
    res = await _quota_resources(session)
    if cmd.root != "" or not res:
        raise CommandError("NO", "No such quota root", Code.NONEXISTENT)
    await session.send(QuotaResponse("", res))
    return session.ok(cmd, "GETQUOTA completed")


async def handle_getquotaroot(session: Session, cmd: c.GetQuotaRoot) -> Tagged:
    """RFC 9208 §4.3."""
    await _account(session).open_mailbox(cmd.mailbox)  # NONEXISTENT if it is not there
    res = await _quota_resources(session)
    await session.send(QuotaRootResponse(cmd.mailbox, ("",) if res else ()))
    if res:
        await session.send(QuotaResponse("", res))
    return session.ok(cmd, "GETQUOTAROOT completed")


async def handle_setquota(session: Session, cmd: c.SetQuota) -> Tagged:
    """RFC 9208 §4.1.3: limits come from the accounts file, set by the administrator."""
    return session.no(cmd, "Quotas are set by the administrator", Code.NOPERM)


__all__ = ["pattern_regex"]
