"""Untagged data responses about mailboxes and search results (RFC 9051 §7.2-7.3, RFC 4731
ESEARCH, RFC 5256 SORT/THREAD, RFC 5258 LIST-EXTENDED, RFC 2342 NAMESPACE, RFC 2971 ID,
RFC 9208 QUOTA). Re-exported by :mod:`.responses`; see there for how to encode them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal as Lit

from .sequence import format_numbers
from .values import Atom, Builder, MailboxName, Response, Value


def _atoms(words: Iterable[str]) -> bytes:
    return " ".join(words).encode("ascii")


@dataclass(frozen=True, slots=True)
class ListResponse(Response):
    """``* LIST (attrs) "sep" name [(extended items)]`` (RFC 9051 §7.3.1, RFC 5258 §3.5).

    ``kind`` LSUB / XLIST reuse the syntax. ``extended`` items are (label, value) pairs, e.g.
    ``("CHILDINFO", ("SUBSCRIBED",))`` or ``("OLDNAME", (MailboxName("old"),))``.
    """

    attributes: tuple[str, ...]
    separator: str | None
    mailbox: str
    extended: tuple[tuple[str, Value], ...] = ()
    kind: Lit["LIST", "LSUB", "XLIST"] = "LIST"

    def write(self, b: Builder) -> None:
        b.raw(b"* " + self.kind.encode() + b" (" + _atoms(self.attributes) + b") ")
        b.value(self.separator)
        b.raw(b" ")
        b.mailbox(self.mailbox)
        if self.extended:
            b.raw(b" (")
            first = True
            for label, val in self.extended:
                if not first:
                    b.raw(b" ")
                first = False
                b.string(label.encode("ascii"))
                b.raw(b" ")
                b.value(val)
            b.raw(b")")
        b.raw(b"\r\n")


@dataclass(frozen=True, slots=True)
class StatusDataResponse(Response):
    """``* STATUS name (MESSAGES 3 UIDNEXT 4 ...)`` (RFC 9051 §7.2.4)."""

    mailbox: str
    items: tuple[tuple[str, int], ...]

    def write(self, b: Builder) -> None:
        b.raw(b"* STATUS ")
        b.mailbox(self.mailbox)
        b.raw(b" (" + " ".join(f"{k} {v}" for k, v in self.items).encode("ascii") + b")\r\n")


@dataclass(frozen=True, slots=True)
class SearchResponse(Response):
    """``* SEARCH 2 3 [(MODSEQ n)]`` (RFC 3501 §7.2.5, RFC 7162 §3.1.5)."""

    numbers: tuple[int, ...]
    modseq: int | None = None

    def write(self, b: Builder) -> None:
        nums = self.numbers
        b.raw(b"* SEARCH " + " ".join(map(str, nums)).encode("ascii") if nums else b"* SEARCH")
        if self.modseq is not None:
            b.raw(b" (MODSEQ %d)" % self.modseq)
        b.raw(b"\r\n")


@dataclass(frozen=True, slots=True)
class SortResponse(Response):
    """``* SORT 5 3 4`` (RFC 5256 §4), in sort order, with RFC 7162 MODSEQ if given."""

    numbers: tuple[int, ...]
    modseq: int | None = None

    def write(self, b: Builder) -> None:
        b.raw(b"* SORT" + b"".join(b" %d" % n for n in self.numbers))
        if self.modseq is not None:
            b.raw(b" (MODSEQ %d)" % self.modseq)
        b.raw(b"\r\n")


@dataclass(frozen=True, slots=True)
class ESearchResponse(Response):
    """``* ESEARCH (TAG "t") [UID] item value ...`` (RFC 4731 §3.1, RFC 9051 §7.3.4).

    The tag is always a *quoted* string: some clients choke on an unquoted one. Typical
    items: ("MIN", 1), ("MAX", 9), ("COUNT", 3), ("ALL", Atom("1:3,9")), ("MODSEQ", 7).
    Use :meth:`from_numbers` to build the standard items from a result.
    """

    tag: str | None
    uid: bool
    items: tuple[tuple[str, Value], ...] = ()

    @classmethod
    def from_numbers(
        cls,
        tag: str | None,
        uid: bool,
        numbers: Iterable[int],
        options: Iterable[str],
        modseq: int | None = None,
        *,
        ordered: bool = False,
    ) -> ESearchResponse:
        """Items for RETURN ``options`` (empty = ALL); ``ordered`` keeps SORT order for ALL."""
        nums = list(numbers)
        opts = [o.upper() for o in options] or ["ALL"]
        items: list[tuple[str, Value]] = []
        if nums:
            for o in ("MIN", "MAX", "ALL", "COUNT"):
                if o not in opts:
                    continue
                if o == "MIN":
                    items.append(("MIN", min(nums)))
                elif o == "MAX":
                    items.append(("MAX", max(nums)))
                elif o == "ALL":
                    all_ = ",".join(str(n) for n in nums) if ordered else format_numbers(nums)
                    items.append(("ALL", Atom(all_)))
                else:
                    items.append(("COUNT", len(nums)))
        elif "COUNT" in opts:
            items.append(("COUNT", 0))
        if modseq is not None and nums:
            items.append(("MODSEQ", modseq))
        return cls(tag, uid, tuple(items))

    def write(self, b: Builder) -> None:
        b.raw(b"* ESEARCH")
        if self.tag is not None:
            b.raw(
                b' (TAG "'
                + self.tag.encode("ascii").replace(b"\\", b"\\\\").replace(b'"', b'\\"')
                + b'")'
            )
        if self.uid:
            b.raw(b" UID")
        for name, val in self.items:
            b.raw(b" " + name.encode("ascii") + b" ")
            b.value(val)
        b.raw(b"\r\n")


@dataclass(frozen=True, slots=True)
class ThreadNode:
    """A thread tree node; ``message`` None is a dummy parent (RFC 5256 §4)."""

    message: int | None
    children: tuple[ThreadNode, ...] = ()


def _thread(node: ThreadNode) -> str:
    parts: list[str] = []
    while True:
        if node.message is not None:
            parts.append(str(node.message))
        if len(node.children) == 1:
            node = node.children[0]
            continue
        nested = "".join("(" + _thread(ch) + ")" for ch in node.children)
        if nested:
            parts.append(nested)
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class ThreadResponse(Response):
    """``* THREAD (2)(3 6 (4 23)(44 7 96))``: one :class:`ThreadNode` tree per thread."""

    threads: tuple[ThreadNode, ...]

    def write(self, b: Builder) -> None:
        b.raw(b"* THREAD")
        if self.threads:
            b.raw(b" " + "".join("(" + _thread(t) + ")" for t in self.threads).encode("ascii"))
        b.raw(b"\r\n")


@dataclass(frozen=True, slots=True)
class NamespaceResponse(Response):
    """``* NAMESPACE (("" "/")) NIL NIL`` (RFC 2342, RFC 9051 §7.3.5)."""

    personal: tuple[tuple[str, str | None], ...] | None = (("", "/"),)
    other: tuple[tuple[str, str | None], ...] | None = None
    shared: tuple[tuple[str, str | None], ...] | None = None

    def write(self, b: Builder) -> None:
        b.raw(b"* NAMESPACE")
        for ns in (self.personal, self.other, self.shared):
            b.raw(b" ")
            if ns is None:
                b.raw(b"NIL")
            else:
                b.value(tuple((MailboxName(p), s) for p, s in ns))
        b.raw(b"\r\n")


@dataclass(frozen=True, slots=True)
class IdResponse(Response):
    """``* ID ("name" "mailhub" ...)`` or ``* ID NIL`` (RFC 2971 §3.2)."""

    params: tuple[tuple[str, str | None], ...] | None

    def write(self, b: Builder) -> None:
        b.raw(b"* ID ")
        if self.params is None:
            b.raw(b"NIL")
        else:
            flat: list[Value] = []
            for k, v in self.params:
                flat += [k, v]
            b.value(tuple(flat))
        b.raw(b"\r\n")


@dataclass(frozen=True, slots=True)
class QuotaResponse(Response):
    """``* QUOTA root (STORAGE used limit MESSAGE used limit)`` (RFC 9208 §5.1).

    STORAGE is in units of 1024 octets."""

    root: str
    resources: tuple[tuple[str, int, int], ...]

    def write(self, b: Builder) -> None:
        b.raw(b"* QUOTA ")
        b.string(self.root.encode("utf-8"))
        b.raw(
            b" ("
            + " ".join(f"{n} {u} {lim}" for n, u, lim in self.resources).encode("ascii")
            + b")\r\n"
        )


@dataclass(frozen=True, slots=True)
class QuotaRootResponse(Response):
    """``* QUOTAROOT mailbox root...`` (RFC 9208 §5.2)."""

    mailbox: str
    roots: tuple[str, ...]

    def write(self, b: Builder) -> None:
        b.raw(b"* QUOTAROOT ")
        b.mailbox(self.mailbox)
        for r in self.roots:
            b.raw(b" ")
            b.string(r.encode("utf-8"))
        b.raw(b"\r\n")
