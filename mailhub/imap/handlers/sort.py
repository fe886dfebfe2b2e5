"""SORT / UID SORT (RFC 5256 §3, RFC 5957 SORT=DISPLAY) and ESORT (RFC 5267 §3).

Search with :func:`~mailhub.imap.handlers.search.run_search`, order with
:mod:`mailhub.imap.sorting`; with RETURN the answer is an ESEARCH response whose MIN/MAX are
the first/last message in sort order and whose ALL keeps the sort order.
"""

from __future__ import annotations

from mailhub.imap.handlers.search import result_modseq, run_search, save_and_options
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.responses import SortResponse, Tagged
from mailhub.imap.session import Session
from mailhub.imap.sorting import esort_response, sort_messages


async def handle_sort(session: Session, cmd: c.Sort) -> Tagged:
    """RFC 5256 §3 (SORT), RFC 5267 §3.2 (RETURN), RFC 5182 §2.4 (SAVE)."""
    view = session.selected
    assert view is not None
    found = await run_search(session, cmd.criteria)
    ordered = await sort_messages(view.mailbox, found, cmd.keys)
    numbers = [info.uid if cmd.uid else seq for seq, info in ordered]
    modseq = result_modseq(cmd.criteria, found)
    if cmd.return_opts is None:
        await session.send(SortResponse(tuple(numbers), modseq))
    else:
        send, rest = save_and_options(session, cmd.return_opts, [i.uid for _, i in ordered])
        if send:
            await session.send(esort_response(cmd.tag, cmd.uid, numbers, rest, modseq))
    return session.ok(cmd, "SORT completed")
