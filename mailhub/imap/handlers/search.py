"""SEARCH / UID SEARCH (RFC 9051 §6.4.4, RFC 3501 §6.4.4) with ESEARCH (RFC 4731), SEARCHRES
(RFC 5182), CONDSTORE's MODSEQ (RFC 7162 §3.1.5) and WITHIN (RFC 5032).

The evaluation is :mod:`mailhub.imap.searching`; here: the session's view as the search
context, the reply form (``* SEARCH``, or ``* ESEARCH (TAG "t") ...`` when RETURN was given
or IMAP4rev2 is enabled), and ``SAVE``. SORT and THREAD reuse :func:`run_search`.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailhub.imap.proto import commands as c
from mailhub.imap.proto import search as sk
from mailhub.imap.proto.responses import ESearchResponse, SearchResponse, Tagged
from mailhub.imap.searching import SearchContext, search, uses_modseq
from mailhub.imap.selected import SelectedView
from mailhub.imap.session import Session
from mailhub.store.model import MessageInfo


class _Recent:
    """The view's \\Recent test as a container (what SearchContext takes)."""

    __slots__ = ("view",)

    def __init__(self, view: SelectedView) -> None:
        self.view = view

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self.view.is_recent(uid)


async def run_search(
    session: Session, criteria: sk.SearchKey | None
) -> list[tuple[int, MessageInfo]]:
    """(sequence number, entry) of the selected messages matching ``criteria``."""
    view = session.selected
    assert view is not None
    messages = view.messages
    return [(s, messages[s - 1]) for s in await _matching(session, view, criteria)]


async def _matching(
    session: Session, view: SelectedView, criteria: sk.SearchKey | None
) -> list[int]:
    """Sequence numbers (ascending) of the selected messages matching ``criteria``."""
    key = criteria if criteria is not None else sk.AllKey()
    if uses_modseq(key):
        session.condstore_used = True
    ctx = SearchContext(view.messages, saved=session.searchres, recent=_Recent(view))
    return await search(view.mailbox, key, ctx)


def result_modseq(
    criteria: sk.SearchKey | None, found: Sequence[tuple[int, MessageInfo]]
) -> int | None:
    """RFC 7162 §3.1.5: with a MODSEQ key, the highest MODSEQ of the (non-empty) result."""
    if criteria is None or not found or not uses_modseq(criteria):
        return None
    return max(info.modseq for _, info in found)


def save_and_options(
    session: Session, opts: Sequence[str], uids_in_order: Sequence[int]
) -> tuple[bool, tuple[str, ...]]:
    """Apply ``SAVE`` (RFC 5182 §2.1) and return (send an ESEARCH?, the other options).

    With MIN and/or MAX but neither ALL nor COUNT, only those messages are saved; ``RETURN
    (SAVE)`` alone sends no ESEARCH response at all.
    """
    upper = tuple(o.upper() for o in opts)
    rest = tuple(o for o in upper if o != "SAVE")
    if "SAVE" in upper:
        if rest and set(rest) <= {"MIN", "MAX"} and uids_in_order:
            picked: list[int] = []
            if "MIN" in rest:
                picked.append(uids_in_order[0])
            if "MAX" in rest and uids_in_order[-1] not in picked:
                picked.append(uids_in_order[-1])
            session.save_result(sorted(picked))
        else:
            session.save_result(sorted(uids_in_order))
        return bool(rest), rest
    return True, rest


async def handle_search(session: Session, cmd: c.Search) -> Tagged:
    """RFC 9051 §6.4.4 / RFC 4731 §3.1 / RFC 5182 §2."""
    view = session.selected
    assert view is not None
    messages = view.messages
    seqs = await _matching(session, view, cmd.criteria)
    opts = cmd.return_opts
    if opts is None and session.rev2:
        opts = ()  # IMAP4rev2 has no "* SEARCH": ESEARCH with ALL (RFC 9051 §6.4.4)
    # UIDs only when the reply or SAVE needs them: a plain SEARCH answers with seqs as found
    uids = [messages[s - 1].uid for s in seqs] if cmd.uid or opts is not None else []
    numbers = uids if cmd.uid else seqs
    modseq = None
    if cmd.criteria is not None and seqs and uses_modseq(cmd.criteria):
        modseq = result_modseq(cmd.criteria, [(s, messages[s - 1]) for s in seqs])
    if opts is None:
        await session.send(SearchResponse(tuple(numbers), modseq))
    else:
        send, rest = save_and_options(session, opts, uids)
        if send:
            await session.send(
                ESearchResponse.from_numbers(cmd.tag, cmd.uid, numbers, rest, modseq)
            )
    return session.ok(cmd, "SEARCH completed")
