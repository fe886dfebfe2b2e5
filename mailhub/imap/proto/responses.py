"""Typed server responses and their exact wire encoding (RFC 9051 §7, plus extensions).

Build a response value, then call :func:`encode` (pieces, for streaming) or
:func:`to_bytes` (when no :class:`~.values.BodyRef` is involved). ``utf8`` is the session's
UTF8=ACCEPT / IMAP4rev2 state: it decides mailbox name encoding and whether quoted strings
may carry UTF-8.

Examples::

    to_bytes(Tagged("a1", "OK", "SELECT completed", ResponseCode.of(Code.READ_WRITE)))
    # b'a1 OK [READ-WRITE] SELECT completed\\r\\n'
    to_bytes(ESearchResponse("a2", uid=True, items=(("COUNT", 3), ("ALL", Atom("1:3")))))
    # b'* ESEARCH (TAG "a2") UID COUNT 3 ALL 1:3\\r\\n'
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal as Lit

from .codes import ResponseCode
from .events import ParseError
from .names import format_date_time
from .sequence import format_numbers
from .values import Atom, BodyRef, Builder, MailboxName, Piece, Value

__all__ = [
    "CapabilityResponse",
    "Continuation",
    "ESearchResponse",
    "EnabledResponse",
    "ExistsResponse",
    "ExpungeResponse",
    "FetchResponse",
    "FlagsResponse",
    "IdResponse",
    "ListResponse",
    "NamespaceResponse",
    "QuotaResponse",
    "QuotaRootResponse",
    "RecentResponse",
    "Response",
    "SearchResponse",
    "SortResponse",
    "StatusDataResponse",
    "Tagged",
    "ThreadNode",
    "ThreadResponse",
    "Untagged",
    "UntaggedData",
    "VanishedResponse",
    "encode",
    "error_response",
    "fetch_flags",
    "fetch_internaldate",
    "to_bytes",
]

Status = Lit["OK", "NO", "BAD"]


class Response:
    """Base class: ``write`` emits the whole response line(s) including the final CRLF."""

    __slots__ = ()

    def write(self, b: Builder) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def encode(resp: Response, *, utf8: bool = False) -> list[Piece]:
    """Encode to pieces: ``bytes`` to write, and :class:`BodyRef` to stream in between."""
    b = Builder(utf8)
    resp.write(b)
    return b.finish()


def to_bytes(resp: Response, *, utf8: bool = False) -> bytes:
    """Encode a response that holds no :class:`BodyRef`."""
    pieces = encode(resp, utf8=utf8)
    if any(isinstance(p, BodyRef) for p in pieces):
        raise ValueError("response streams a body; use encode()")
    return b"".join(p for p in pieces if isinstance(p, bytes))


def encode_many(resps: Iterable[Response], *, utf8: bool = False) -> Iterator[Piece]:
    """Encode several responses, coalescing adjacent bytes (one write per batch)."""
    b = Builder(utf8)
    for r in resps:
        r.write(b)
        if len(b.buf) > 65536:
            yield from b.finish()
    yield from b.finish()


def _code(b: Builder, code: ResponseCode | None) -> None:
    if code is None:
        return
    b.raw(b"[" + code.name.encode("ascii"))
    if code.args:
        b.raw(b" ")
        b.values(code.args)
    b.raw(b"] ")


# --------------------------------------------------------------------------------------------
# status responses


@dataclass(frozen=True, slots=True)
class Tagged(Response):
    """``tag OK|NO|BAD [code] text`` (RFC 9051 §7.1)."""

    tag: str
    status: Status
    text: str
    code: ResponseCode | None = None

    def write(self, b: Builder) -> None:
        b.raw(self.tag.encode("ascii") + b" " + self.status.encode() + b" ")
        _code(b, self.code)
        b.text(self.text or self.status)
        b.raw(b"\r\n")


@dataclass(frozen=True, slots=True)
class Untagged(Response):
    """``* OK|NO|BAD|BYE|PREAUTH [code] text``."""

    status: Lit["OK", "NO", "BAD", "BYE", "PREAUTH"]
    text: str
    code: ResponseCode | None = None

    def write(self, b: Builder) -> None:
        b.raw(b"* " + self.status.encode() + b" ")
        _code(b, self.code)
        b.text(self.text or self.status)
        b.raw(b"\r\n")


@dataclass(frozen=True, slots=True)
class Continuation(Response):
    """``+ text``, or ``+ base64`` for a SASL challenge when ``data`` is given."""

    text: str = "Ready"
    data: bytes | None = None

    def write(self, b: Builder) -> None:
        if self.data is not None:
            b.raw(b"+ " + base64.b64encode(self.data) + b"\r\n")
        else:
            b.raw(b"+ ")
            b.text(self.text)
            b.raw(b"\r\n")


def error_response(err: ParseError) -> Tagged | Untagged:
    """The reply for a parser error: tagged when the tag is known, else ``* BAD``."""
    code = ResponseCode.raw(err.code) if err.code else None
    if err.tag == "*":
        return Untagged("BAD", err.text, code)
    return Tagged(err.tag, err.status, err.text, code)


# --------------------------------------------------------------------------------------------
# untagged data


@dataclass(frozen=True, slots=True)
class UntaggedData(Response):
    """Any ``* KEYWORD v1 v2 ...`` (an escape hatch for rare responses)."""

    keyword: str
    values: tuple[Value, ...] = ()

    def write(self, b: Builder) -> None:
        b.raw(b"* " + self.keyword.encode("ascii"))
        if self.values:
            b.raw(b" ")
            b.values(self.values)
        b.raw(b"\r\n")


def _atoms(words: Iterable[str]) -> bytes:
    return " ".join(words).encode("ascii")


@dataclass(frozen=True, slots=True)
class CapabilityResponse(Response):
    capabilities: tuple[str, ...]

    def write(self, b: Builder) -> None:
        b.raw(b"* CAPABILITY " + _atoms(self.capabilities) + b"\r\n")


@dataclass(frozen=True, slots=True)
class EnabledResponse(Response):
    """RFC 5161 §3.1; ``* ENABLED`` with nothing after it is valid."""

    capabilities: tuple[str, ...] = ()

    def write(self, b: Builder) -> None:
        b.raw(
            b"* ENABLED" + b"".join(b" " + c.encode("ascii") for c in self.capabilities) + b"\r\n"
        )


@dataclass(frozen=True, slots=True)
class ExistsResponse(Response):
    count: int

    def write(self, b: Builder) -> None:
        b.raw(b"* %d EXISTS\r\n" % self.count)


@dataclass(frozen=True, slots=True)
class RecentResponse(Response):
    count: int

    def write(self, b: Builder) -> None:
        b.raw(b"* %d RECENT\r\n" % self.count)


@dataclass(frozen=True, slots=True)
class ExpungeResponse(Response):
    seq: int

    def write(self, b: Builder) -> None:
        b.raw(b"* %d EXPUNGE\r\n" % self.seq)


@dataclass(frozen=True, slots=True)
class VanishedResponse(Response):
    """RFC 7162 §3.2.10: ``* VANISHED [(EARLIER)] uids``."""

    uids: tuple[int, ...]
    earlier: bool = False

    def write(self, b: Builder) -> None:
        b.raw(b"* VANISHED " + (b"(EARLIER) " if self.earlier else b""))
        b.raw(format_numbers(self.uids).encode("ascii") + b"\r\n")


@dataclass(frozen=True, slots=True)
class FlagsResponse(Response):
    flags: tuple[str, ...]

    def write(self, b: Builder) -> None:
        b.raw(b"* FLAGS (" + _atoms(self.flags) + b")\r\n")


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
        b.raw(b"* SEARCH" + b"".join(b" %d" % n for n in self.numbers))
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
class FetchResponse(Response):
    """``* seq FETCH (name value ...)`` (RFC 9051 §7.5.2).

    ``items`` are (name, value) pairs; names come from ``FetchAtt.response_name()`` or are
    plain (``UID``, ``FLAGS``, ``MODSEQ``). A body is a :class:`BodyRef` (streamed) or bytes.
    MODSEQ's value is written as ``(n)``: pass an ``int`` and it is wrapped.
    """

    seq: int
    items: tuple[tuple[str, Value], ...] = field(default=())

    def write(self, b: Builder) -> None:
        b.raw(b"* %d FETCH (" % self.seq)
        first = True
        for name, val in self.items:
            if not first:
                b.raw(b" ")
            first = False
            b.raw(name.encode("utf-8") + b" ")
            if name == "MODSEQ" and isinstance(val, int):
                b.raw(b"(%d)" % val)
            else:
                b.value(val)
        b.raw(b")\r\n")


def fetch_flags(flags: Iterable[str]) -> tuple[Value, ...]:
    """The FLAGS value."""
    return tuple(Atom(f) for f in flags)


def fetch_internaldate(when: datetime.datetime | float) -> str:
    """The INTERNALDATE value (a quoted ``date-time``); POSIX seconds are shown in UTC."""
    if not isinstance(when, datetime.datetime):
        when = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return format_date_time(when)


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
