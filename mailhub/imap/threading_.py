"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §4).

The algorithms work on :class:`ThreadMsg` values (pure, testable); :func:`thread_messages`
builds them from a mailbox. "Sent date" is the Date header in UTC, or the internal date when
it has none (RFC 5256 §2.2); ties go by sequence number. Every walk over the container
tree is iterative: a reply chain of 100,000 messages must not hit Python's recursion limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailhub.imap.fetch_items import MessageOpener
from mailhub.imap.proto.responses import ThreadNode
from mailhub.imap.proto.values import Builder, Response
from mailhub.imap.searching import header_fields
from mailhub.mime import text as T
from mailhub.store.model import MessageInfo

__all__ = [
    "DeepThreadResponse",
    "ThreadMsg",
    "ordered_subject",
    "references",
    "render_threads",
    "thread_messages",
]


@dataclass(frozen=True, slots=True)
class ThreadMsg:
    """What threading needs of one message; ``number`` is what the reply shows (seq or UID)."""

    number: int
    seq: int
    date: float
    subject: str = ""
    message_id: str | None = None
    refs: tuple[str, ...] = ()

    @property
    def order(self) -> tuple[float, int]:
        return (self.date, self.seq)


def ordered_subject(msgs: Sequence[ThreadMsg]) -> list[ThreadNode]:
    """ORDEREDSUBJECT: group by base subject; in each group the earliest message is the
    parent of all others (in date order); groups ordered by their first message's date."""
    groups: dict[str, list[ThreadMsg]] = {}
    for m in sorted(msgs, key=lambda m: m.order):
        groups.setdefault(T.base_subject(m.subject).casefold(), []).append(m)
    threads = sorted(groups.values(), key=lambda g: g[0].order)
    return [ThreadNode(g[0].number, tuple(ThreadNode(m.number) for m in g[1:])) for g in threads]


class _C:
    """A container of the REFERENCES algorithm (``msg`` None: a dummy)."""

    __slots__ = ("children", "msg", "parent")

    def __init__(self, msg: ThreadMsg | None = None) -> None:
        self.msg = msg
        self.parent: _C | None = None
        self.children: list[_C] = []


def _is_ancestor(a: _C, b: _C) -> bool:
    """Whether ``a`` is ``b`` or above it (linking b -> a would make a loop)."""
    node: _C | None = b
    while node is not None:
        if node is a:
            return True
        node = node.parent
    return False


def _link(parent: _C, child: _C) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def _first_msg(c: _C) -> ThreadMsg | None:
    while c.msg is None and c.children:
        c = c.children[0]
    return c.msg


def _order(c: _C) -> tuple[float, int]:
    m = _first_msg(c)
    return (0.0, 0) if m is None else m.order


def _postorder(roots: list[_C]) -> list[_C]:
    out: list[_C] = []
    stack = list(roots)
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(c.children)
    out.reverse()  # children before parents
    return out


def _sort_all(roots: list[_C]) -> list[_C]:
    """RFC 5256 §4 (6): sort every sibling set by sent date, the deepest first, a dummy by
    its first child; then the top level."""
    for c in _postorder(roots):
        if len(c.children) > 1:
            c.children.sort(key=_order)
    return sorted(roots, key=_order)


def _prune(roots: list[_C]) -> list[_C]:
    """RFC 5256 §4 (3): drop childless dummies, splice other dummies' children into their
    place, except at the top level where a dummy with several children stays."""
    for c in _postorder(roots):
        kept: list[_C] = []
        for ch in c.children:
            if ch.msg is None:
                for g in ch.children:
                    g.parent = c
                kept.extend(ch.children)
            else:
                kept.append(ch)
        c.children = kept
    out: list[_C] = []
    for c in roots:
        if c.msg is None:
            if not c.children:
                continue
            if len(c.children) == 1:
                c.children[0].parent = None
                out.append(c.children[0])
                continue
        out.append(c)
    return out


def references(msgs: Sequence[ThreadMsg]) -> list[ThreadNode]:
    """THREAD=REFERENCES (RFC 5256 §4, steps 1-6)."""
    table: dict[str, _C] = {}
    for m in sorted(msgs, key=lambda m: m.seq):
        mid = m.message_id
        if mid is None or (mid in table and table[mid].msg is not None):
            mid = f"\x00{m.seq}"  # missing or duplicate Message-ID: a unique one
        c = table.get(mid)
        if c is None:
            c = table[mid] = _C(m)
        else:
            c.msg = m
        prev: _C | None = None
        for ref in m.refs:  # (1A) link the references chain, never re-linking or looping
            rc = table.get(ref)
            if rc is None:
                rc = table[ref] = _C()
            if prev is not None and rc.parent is None and not _is_ancestor(rc, prev):
                _link(prev, rc)
            prev = rc
        # (1B) the last reference is the parent; a wrong (truncated) earlier link goes
        if c.parent is not None:
            c.parent.children.remove(c)
            c.parent = None
        if prev is not None and not _is_ancestor(c, prev):
            _link(prev, c)
    roots = _prune([c for c in table.values() if c.parent is None])  # (2), (3)
    for c in roots:  # (4) a dummy sorts by its earliest child
        if c.msg is None:
            c.children.sort(key=_order)
    roots = sorted(roots, key=_order)
    # (5) gather top-level threads by base subject
    subjects: dict[str, tuple[_C, bool]] = {}
    info: dict[int, tuple[str, bool]] = {}
    for c in roots:
        first = _first_msg(c)
        base, is_reply = T.base_subject_info(first.subject if first is not None else "")
        key = base.casefold()
        info[id(c)] = (key, is_reply)
        if not key:
            continue
        old = subjects.get(key)
        if (
            old is None
            or (old[0].msg is not None and c.msg is None)
            or (old[1] and not is_reply and old[0].msg is not None and c.msg is not None)
        ):
            subjects[key] = (c, is_reply)
    result: list[_C] = []
    for c in roots:
        key, is_reply = info[id(c)]
        entry = subjects.get(key) if key else None
        if entry is None or entry[0] is c:
            result.append(c)
            continue
        t, t_reply = entry
        if t.msg is None and c.msg is None:
            for ch in list(c.children):
                _link(t, ch)
        elif t.msg is None:
            _link(t, c)
        elif c.msg is None:  # cannot happen with the table's preferences; kept for safety
            _link(c, t)
            subjects[key] = (c, is_reply)
            result = [r for r in result if r is not t]
            result.append(c)
        elif is_reply and not t_reply:
            _link(t, c)
        else:
            dummy = _C()
            idx = next((i for i, r in enumerate(result) if r is t), None)
            _link(dummy, t)
            _link(dummy, c)
            subjects[key] = (dummy, False)
            if idx is not None:
                result[idx] = dummy
            else:  # pragma: no cover - t is always an earlier root
                result.append(dummy)
    return [_node(c) for c in _sort_all(result)]


def _node(root: _C) -> ThreadNode:
    """The container tree as :class:`ThreadNode` values, built bottom-up without recursion."""
    built: dict[int, ThreadNode] = {}
    for c in _postorder([root]):
        kids = tuple(built.pop(id(ch)) for ch in c.children)
        built[id(c)] = ThreadNode(None if c.msg is None else c.msg.number, kids)
    return built[id(root)]


async def thread_messages(
    mailbox: MessageOpener,
    targets: Sequence[tuple[int, MessageInfo]],
    algorithm: str,
    *,
    uid: bool = False,
) -> list[ThreadNode]:
    """THREAD over the (sequence number, entry) pairs a search matched."""
    msgs: list[ThreadMsg] = []
    for seq, info in targets:
        fields = await header_fields(mailbox, info)
        d = T.sort_date(fields)
        msgs.append(
            ThreadMsg(
                number=info.uid if uid else seq,
                seq=seq,
                date=info.internal_date if d is None else d.timestamp(),
                subject=T.subject_of(fields),
                message_id=T.message_id_of(fields),
                refs=tuple(T.references_of(fields)),
            )
        )
    if algorithm.upper() == "ORDEREDSUBJECT":
        return ordered_subject(msgs)
    return references(msgs)


def render_threads(threads: Sequence[ThreadNode]) -> bytes:
    """The ``thread-list`` of a THREAD response (RFC 5256 §4), written without recursion.

    Same syntax as :class:`~mailhub.imap.proto.responses.ThreadResponse` (a chain of single
    children is "a b c", several children are "(..)(..)"), but a tree thousands of levels
    deep (hostile References headers) cannot exhaust Python's stack.
    """
    out: list[str] = []
    stack: list[ThreadNode | str] = []
    for t in reversed(threads):
        stack += [")", t, "("]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node, first = item, True
        while True:
            if node.message is not None:
                if not first:
                    out.append(" ")
                out.append(str(node.message))
                first = False
            if len(node.children) == 1:
                node = node.children[0]
                continue
            if node.children:
                if not first:
                    out.append(" ")
                for ch in reversed(node.children):
                    stack += [")", ch, "("]
            break
    return "".join(out).encode("ascii")


class DeepThreadResponse(Response):
    """``* THREAD ...`` rendered by :func:`render_threads` (any depth)."""

    __slots__ = ("threads",)

    def __init__(self, threads: Sequence[ThreadNode]) -> None:
        self.threads = tuple(threads)

    def write(self, b: Builder) -> None:
        b.raw(b"* THREAD")
        if self.threads:
            b.raw(b" " + render_threads(self.threads))
        b.raw(b"\r\n")
