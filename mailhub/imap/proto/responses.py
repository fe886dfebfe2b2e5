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
from .responses_data import (
    ESearchResponse,
    IdResponse,
    ListResponse,
    NamespaceResponse,
    QuotaResponse,
    QuotaRootResponse,
    SearchResponse,
    SortResponse,
    StatusDataResponse,
    ThreadNode,
    ThreadResponse,
)
from .sequence import format_numbers
from .values import Atom, BodyRef, Builder, Piece, Response, Value

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


# (status, text, utf8) -> b" <text>\r\n" of a tagged line: the texts are a few constants.
_TAILS: dict[tuple[str, str, bool], bytes] = {}


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

    def line(self, utf8: bool) -> bytes:
        """The encoded line; what :meth:`write` produces, without a Builder when there is
        no response code (every command ends with one of these)."""
        if self.code is not None:
            b = Builder(utf8)
            self.write(b)
            return bytes(b.buf)
        key = (self.status, self.text, utf8)
        tail = _TAILS.get(key)
        if tail is None:
            b = Builder(utf8)
            b.text(self.text or self.status)
            tail = b" " + bytes(b.buf) + b"\r\n"
            if len(_TAILS) < 4096:
                _TAILS[key] = tail
        return self.tag.encode("ascii") + b" " + self.status.encode() + tail


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
