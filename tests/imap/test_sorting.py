"""SORT, ESORT and THREAD over a real Maildir store, plus hypothesis properties of the pure
algorithms (a sort is an ordered permutation; a thread tree holds every message once)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from engine_support import add, command, mailbox_fixture, msg  # noqa: F401 - fixture
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhub.imap.proto.commands import Sort, SortKey
from mailhub.imap.proto.responses import ThreadNode, ThreadResponse, to_bytes
from mailhub.imap.sorting import esort_response, sort_items, sort_messages
from mailhub.imap.threading_ import (
    DeepThreadResponse,
    ThreadMsg,
    ordered_subject,
    references,
    thread_messages,
)
from mailhub.mime.text import base_subject
from mailhub.store.maildir import MaildirMailbox

UTC = dt.UTC


def day(n: int) -> dt.datetime:
    return dt.datetime(2024, 2, n, 12, tzinfo=UTC)


async def targets(mb: MaildirMailbox) -> list[tuple[int, Any]]:
    return list(enumerate((await mb.snapshot()).messages, 1))


async def sort_by(mb: MaildirMailbox, keys: str) -> list[int]:
    cmd = command(f"a SORT ({keys}) UTF-8 ALL")
    assert isinstance(cmd, Sort)
    return [seq for seq, _ in await sort_messages(mb, await targets(mb), cmd.keys)]


async def test_sort_every_key(mailbox: MaildirMailbox) -> None:
    await add(
        mailbox,
        msg(
            "Re: beta",
            sender="Zed <zed@example.org>",
            to="Mia <bmia@example.org>",
            date="Tue, 6 Feb 2024 10:00:00 +0000",
            extra="Cc: carl@example.org\r\n",
        ),
        when=day(3),
    )
    await add(
        mailbox,
        msg(
            "alpha",
            sender="ann@example.org",
            to="yves@example.org",
            date="Tue, 6 Feb 2024 09:00:00 -0200",  # 11:00 UTC: after message 1
        )
        + b"x" * 500,
        when=day(1),
    )
    await add(
        mailbox,
        msg(
            "[list] Fwd: Gamma (fwd)",
            sender="=?utf-8?q?=C3=89mile?= <emile@example.org>",
            to="amy@example.org",
            date=None,  # DATE falls back to the internal date (2 Feb)
            extra="Cc: Abe <abe@example.org>\r\n",
        ),
        when=day(2),
    )
    assert await sort_by(mailbox, "ARRIVAL") == [2, 3, 1]
    assert await sort_by(mailbox, "REVERSE ARRIVAL") == [1, 3, 2]
    assert await sort_by(mailbox, "DATE") == [3, 1, 2]
    sizes = [(m.size, i) for i, m in await targets(mailbox)]
    assert await sort_by(mailbox, "SIZE") == [i for _, i in sorted(sizes)]
    assert await sort_by(mailbox, "REVERSE SIZE") == [i for _, i in sorted(sizes, reverse=True)]
    assert await sort_by(mailbox, "FROM") == [2, 3, 1]  # ann, emile, zed
    assert await sort_by(mailbox, "TO") == [3, 1, 2]  # amy, bmia, yves
    assert await sort_by(mailbox, "CC") == [2, 3, 1]  # "", abe, carl
    assert await sort_by(mailbox, "SUBJECT") == [2, 1, 3]  # alpha, beta, gamma
    assert await sort_by(mailbox, "DISPLAYFROM") == [2, 1, 3]  # ann@, zed, émile
    assert await sort_by(mailbox, "DISPLAYTO") == [3, 1, 2]  # amy@, mia, yves@
    assert await sort_by(mailbox, "REVERSE SUBJECT") == [3, 1, 2]


async def test_ties_go_by_sequence_number(mailbox: MaildirMailbox) -> None:
    for _ in range(4):
        await add(mailbox, msg("same"), when=day(1))
    assert await sort_by(mailbox, "SUBJECT") == [1, 2, 3, 4]
    assert await sort_by(mailbox, "REVERSE SUBJECT") == [1, 2, 3, 4]
    assert await sort_by(mailbox, "REVERSE ARRIVAL SUBJECT") == [1, 2, 3, 4]


def test_esort_items() -> None:
    wire = to_bytes(esort_response("t1", True, [7, 3, 4, 5, 1], ["MIN", "MAX", "ALL", "COUNT"]))
    assert wire == b'* ESEARCH (TAG "t1") UID MIN 7 MAX 1 ALL 7,3:5,1 COUNT 5\r\n'
    assert to_bytes(esort_response("t2", False, [], ["COUNT", "MIN"])) == (
        b'* ESEARCH (TAG "t2") COUNT 0\r\n'
    )
    assert to_bytes(esort_response("t3", False, [2, 1], [])) == b'* ESEARCH (TAG "t3") ALL 2,1\r\n'


fields_strategy = st.lists(
    st.tuples(
        st.sampled_from([b"from", b"to", b"cc", b"subject", b"date"]),
        st.sampled_from(
            [b"a@x.org", b"Re: b", b"Zed <z@x.org>", b"", b"Mon, 1 Jan 2024 00:00:00 +0000", b"x"]
        ),
    ),
    max_size=5,
)
sort_keys = st.lists(
    st.builds(
        SortKey,
        st.sampled_from(
            ["ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"]
        ),
        st.booleans(),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), fields_strategy), max_size=12),
    sort_keys,
)
def test_sort_is_an_ordered_permutation(
    raw: list[tuple[int, int, list[tuple[bytes, bytes]]]], keys: list[SortKey]
) -> None:
    from mailhub.imap import sorting
    from mailhub.store.model import MessageInfo

    items = [
        (i + 1, MessageInfo(i + 10, frozenset(), size, float(date), 1), fields)
        for i, (size, date, fields) in enumerate(raw)
    ]
    out = sort_items(items, keys)
    assert sorted(it[0] for it in out) == [it[0] for it in items]
    for a, b in itertools.pairwise(out):
        for k in keys:
            va, vb = sorting._KEYS[k.key](a), sorting._KEYS[k.key](b)
            if va != vb:
                assert (va > vb) if k.reverse else (va < vb)
                break
        else:
            assert a[0] < b[0]  # full tie: sequence order


# ------------------------------------------------------------------------------ THREAD


def thread_text(nodes: list[ThreadNode]) -> bytes:
    return to_bytes(ThreadResponse(tuple(nodes)))


async def threaded_mailbox(mb: MaildirMailbox) -> None:
    def m(
        subject: str, mid: str, n: int, refs: str = "", date: bool = True
    ) -> tuple[bytes, dt.datetime]:
        extra = f"References: {refs}\r\n" if refs else ""
        d = f"Thu, {n} Feb 2024 10:00:00 +0000" if date else None
        return msg(subject, date=d, message_id=mid, extra=extra), day(1)

    for data, when in [
        m("Topic", "a@x", 2),
        m("Re: Topic", "b@x", 3, "<a@x>"),
        m("Re: Topic", "c@x", 4, "<a@x> <b@x>"),
        m("Re: Topic", "d@x", 5, "<a@x>"),
        m("Other", "e@x", 1),
        m("Re: Lost", "f@x", 6, "<missing@x>"),
        m("Re: Lost", "g@x", 7, "<missing@x>"),
        m("Re: Other", "h@x", 8),
    ]:
        await add(mb, data, when=when)


async def test_thread_references(mailbox: MaildirMailbox) -> None:
    await threaded_mailbox(mailbox)
    nodes = await thread_messages(mailbox, await targets(mailbox), "REFERENCES")
    assert thread_text(nodes) == b"* THREAD (5 8)(1 (2 3)(4))((6)(7))\r\n"
    uid_nodes = await thread_messages(mailbox, await targets(mailbox), "REFERENCES", uid=True)
    assert thread_text(uid_nodes) == thread_text(nodes)  # UIDs equal seqs in a fresh box


async def test_thread_orderedsubject(mailbox: MaildirMailbox) -> None:
    await threaded_mailbox(mailbox)
    nodes = await thread_messages(mailbox, await targets(mailbox), "ORDEREDSUBJECT")
    assert thread_text(nodes) == b"* THREAD (5 8)(1 (2)(3)(4))(6 7)\r\n"


async def test_thread_of_a_search_subset(mailbox: MaildirMailbox) -> None:
    await threaded_mailbox(mailbox)
    subset = [t for t in await targets(mailbox) if t[0] in (1, 3)]
    nodes = await thread_messages(mailbox, subset, "REFERENCES")
    assert thread_text(nodes) == b"* THREAD (1 3)\r\n"  # the missing 2 is a pruned dummy


def numbers(nodes: list[ThreadNode]) -> list[int]:
    out: list[int] = []
    stack = list(nodes)
    while stack:
        n = stack.pop()
        if n.message is not None:
            out.append(n.message)
        stack.extend(n.children)
    return out


ids = st.sampled_from([f"id{i}@x" for i in range(8)])
thread_msgs = st.lists(
    st.tuples(
        st.one_of(st.none(), ids),
        st.lists(ids, max_size=4),
        st.sampled_from(["a", "Re: a", "b", "Fwd: b", "", "Re: [x] a (fwd)"]),
        st.integers(0, 4),
    ),
    max_size=14,
)


@settings(max_examples=300, deadline=None)
@given(thread_msgs)
def test_every_message_appears_once_in_the_threads(raw: list[Any]) -> None:
    """Loops, duplicate and missing Message-IDs, self-references: never lost, never twice."""
    msgs = [
        ThreadMsg(
            number=100 + i, seq=i + 1, date=float(d), subject=s, message_id=mid, refs=tuple(r)
        )
        for i, (mid, r, s, d) in enumerate(raw)
    ]
    want = sorted(m.number for m in msgs)
    for algo in (references, ordered_subject):
        nodes = algo(msgs)
        assert sorted(numbers(nodes)) == want
        thread_text(nodes)  # renders
    grouped = ordered_subject(msgs)
    assert len(grouped) == len({base_subject(m.subject).casefold() for m in msgs})


def test_deep_reply_chain_does_not_recurse() -> None:
    n = 5000
    msgs = [
        ThreadMsg(i, i, float(i), "Re: x", f"m{i}", tuple(f"m{j}" for j in range(max(0, i - 3), i)))
        for i in range(1, n + 1)
    ]
    nodes = references(msgs)
    assert len(nodes) == 1 and sorted(numbers(nodes)) == list(range(1, n + 1))
    assert thread_text(nodes).startswith(b"* THREAD (1 2 3 4")


tree = st.recursive(
    st.builds(ThreadNode, st.integers(1, 99)),
    lambda kids: st.builds(
        ThreadNode, st.one_of(st.none(), st.integers(1, 99)), st.lists(kids, max_size=3).map(tuple)
    ),
    max_leaves=12,
)


@given(st.lists(tree, max_size=4))
def test_iterative_thread_rendering_equals_the_encoder(threads: list[ThreadNode]) -> None:
    assert to_bytes(DeepThreadResponse(threads)) == to_bytes(ThreadResponse(tuple(threads)))


def test_deep_branching_thread_renders() -> None:
    """A comb (each reply answered twice, 1,500 levels) is beyond the recursive encoder."""
    msgs = []
    for i in range(1500):
        parent = (f"c{i - 1}",) if i else ()
        msgs.append(ThreadMsg(2 * i + 1, 2 * i + 1, float(i), "x", f"c{i}", parent))
        msgs.append(ThreadMsg(2 * i + 2, 2 * i + 2, float(i), "x", f"l{i}", parent))
    nodes = references(msgs)
    wire = to_bytes(DeepThreadResponse(nodes))
    assert wire.startswith(b"* THREAD ((1 (3 (5 ") and wire.count(b"(") == wire.count(b")")
    assert sorted(numbers(nodes)) == list(range(1, 3001))
