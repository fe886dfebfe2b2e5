"""SORT (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO) and ESORT results (RFC 5267 §3).

The keys come from :mod:`mailhub.mime.text`: ARRIVAL is the internal date, DATE the Date
header in UTC (the internal date when there is none, RFC 5256 §3), FROM/TO/CC the first
address's local part, SUBJECT the base subject (§2.1), DISPLAYFROM/DISPLAYTO the display
name or else the address; strings compare casefolded (close to i;unicode-casemap). Ties are
broken by sequence number (§3), REVERSE applies to its own key only. Message headers are read
only when a header key is asked for, and only up to the blank line for big messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mailhub.imap.fetch_items import MessageOpener
from mailhub.imap.proto.commands import SortKey
from mailhub.imap.proto.responses import ESearchResponse
from mailhub.imap.proto.sequence import format_numbers
from mailhub.imap.proto.values import Atom, Value
from mailhub.imap.searching import Fields, header_fields
from mailhub.mime import text as T
from mailhub.store.model import MessageInfo

__all__ = ["HEADER_KEYS", "SortItem", "esort_response", "sort_items", "sort_messages"]

HEADER_KEYS = frozenset({"CC", "DATE", "FROM", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"})

SortItem = tuple[int, MessageInfo, Fields]
"""(sequence number, index entry, header fields or [] when no header key is used)."""


def _date(item: SortItem) -> float:
    d = T.sort_date(item[2])
    return item[1].internal_date if d is None else d.timestamp()


_KEYS: dict[str, Callable[[SortItem], Any]] = {
    "ARRIVAL": lambda it: it[1].internal_date,
    "SIZE": lambda it: it[1].size,
    "DATE": _date,
    "FROM": lambda it: T.sort_mailbox(it[2], "from"),
    "TO": lambda it: T.sort_mailbox(it[2], "to"),
    "CC": lambda it: T.sort_mailbox(it[2], "cc"),
    "SUBJECT": lambda it: T.sort_subject(it[2]),
    "DISPLAYFROM": lambda it: T.display_name(it[2], "from"),
    "DISPLAYTO": lambda it: T.display_name(it[2], "to"),
}


def sort_items(items: Sequence[SortItem], keys: Sequence[SortKey]) -> list[SortItem]:
    """Pure SORT: ``items`` ordered by ``keys`` (ties by sequence number)."""
    out = sorted(items, key=lambda it: it[0])
    for k in reversed(keys):  # stable sorts, least significant key first
        fn = _KEYS[k.key]
        values = {id(it): fn(it) for it in out}
        out.sort(key=lambda it: values[id(it)], reverse=k.reverse)
    return out


async def sort_messages(
    mailbox: MessageOpener, targets: Sequence[tuple[int, MessageInfo]], keys: Sequence[SortKey]
) -> list[tuple[int, MessageInfo]]:
    """SORT the (sequence number, entry) pairs a search matched."""
    need_headers = any(k.key in HEADER_KEYS for k in keys)
    items: list[SortItem] = []
    for seq, info in targets:
        fields = await header_fields(mailbox, info) if need_headers else []
        items.append((seq, info, fields))
    return [(seq, info) for seq, info, _ in sort_items(items, keys)]


def esort_response(
    tag: str, uid: bool, numbers: Sequence[int], options: Sequence[str], modseq: int | None = None
) -> ESearchResponse:
    """``* ESEARCH (TAG "t") [UID] ...`` for a SORT with RETURN (RFC 5267 §3.2).

    MIN and MAX are the first and last message in *sort* order; ALL lists the numbers in
    sort order (ascending runs compressed to ranges); COUNT as in ESEARCH.
    """
    opts = {o.upper() for o in options} or {"ALL"}
    items: list[tuple[str, Value]] = []
    if numbers:
        if "MIN" in opts:
            items.append(("MIN", numbers[0]))
        if "MAX" in opts:
            items.append(("MAX", numbers[-1]))
        if "ALL" in opts:
            items.append(("ALL", Atom(_ordered_set(numbers))))
    if "COUNT" in opts:
        items.append(("COUNT", len(numbers)))
    if modseq is not None and numbers:
        items.append(("MODSEQ", modseq))
    return ESearchResponse(tag, uid, tuple(items))


def _ordered_set(numbers: Sequence[int]) -> str:
    """A sequence set in the given order: ascending runs become ``a:b``."""
    parts: list[str] = []
    run: list[int] = []
    for n in numbers:
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            parts.append(format_numbers(run))
        run = [n]
    if run:
        parts.append(format_numbers(run))
    return ",".join(parts)
