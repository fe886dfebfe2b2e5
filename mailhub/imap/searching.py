"""The SEARCH engine: typed search keys evaluated over a mailbox view (RFC 9051 §6.4.4).

Keys come from :mod:`mailhub.imap.proto.search` (string arguments already decoded from the
command's CHARSET by the parser, which answers ``NO [BADCHARSET]`` for charsets it cannot
decode). Each key is compiled once into a small evaluator that answers True, False, or None
("needs message bytes I have not read yet"), with Kleene logic for AND/OR/NOT and the
cheap keys of an AND/OR tried first. A message's bytes are read only when the program's
answer still depends on them, and then only as far as needed: the header block for
HEADER/FROM/SUBJECT/SENT* keys (read in chunks up to the blank line, so SUBJECT never reads a
50 MB attachment), the whole message for BODY/TEXT.

Semantics:

* BEFORE/ON/SINCE compare the internal date's calendar day in the server's time zone
  (``tz``; the local zone by default) - RFC 9051 "disregarding time and timezone".
* SENTBEFORE/SENTON/SENTSINCE use the Date header's calendar date as written; a message
  without a parseable Date falls back to its internal date (as RFC 5256 does for SORT).
* HEADER/FROM/TO/CC/BCC/SUBJECT match RFC 2047-decoded values, BODY/TEXT the decoded text
  (base64, quoted-printable, charsets), case-insensitively (:mod:`mailhub.mime.text`).
  An empty HEADER string matches messages that have the field.
* YOUNGER/OLDER (RFC 5032): age of the internal date <= / > the interval, so one is the
  other's complement. MODSEQ (RFC 7162 §3.1.5): the message's MODSEQ >= the value (the
  store keeps no per-flag MODSEQ; the message's own is the allowed approximation).
* ``$`` (RFC 5182) is the saved result, kept by the session as UIDs; it means the same
  messages in a sequence-number and in a UID context.
"""

from __future__ import annotations

import bisect
import datetime as dt
import time
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field

from mailhub.errors import MailError, MailErrorKind
from mailhub.imap.fetch_items import STREAM_THRESHOLD, MessageOpener, read_prefix
from mailhub.imap.proto import search as sk
from mailhub.mime import text as T
from mailhub.mime.headers import split_fields
from mailhub.store.flags import SYSTEM_FLAGS
from mailhub.store.model import MessageInfo

__all__ = ["SearchContext", "header_fields", "search", "uses_modseq"]

Fields = list[tuple[bytes, bytes]]

META, HEADER, FULL = 0, 1, 2


@dataclass(slots=True)
class SearchContext:
    """The session's view a search runs against.

    ``messages[i]`` is sequence number ``i + 1``; ``saved`` the SEARCHRES result (UIDs);
    ``recent`` the UIDs that are \\Recent for this session; ``tz`` the server's zone for
    BEFORE/ON/SINCE (None: the local zone); ``now`` for YOUNGER/OLDER (None: the clock).
    """

    messages: Sequence[MessageInfo]
    saved: Sequence[int] = ()
    recent: Container[int] = field(default_factory=frozenset)
    tz: dt.tzinfo | None = None
    now: float | None = None


class _Msg:
    __slots__ = ("fields", "info", "seq", "text")

    def __init__(self, seq: int, info: MessageInfo) -> None:
        self.seq = seq
        self.info = info
        self.fields: Fields | None = None
        self.text: T.MessageText | None = None


Eval = Callable[[_Msg], "bool | None"]


def uses_modseq(key: sk.SearchKey) -> bool:
    """Whether the program has a MODSEQ key: then the reply carries ``(MODSEQ n)``."""
    if isinstance(key, sk.ModSeqKey):
        return True
    if isinstance(key, sk.Not):
        return uses_modseq(key.key)
    if isinstance(key, sk.Or):
        return uses_modseq(key.left) or uses_modseq(key.right)
    if isinstance(key, sk.And):
        return any(uses_modseq(k) for k in key.keys)
    return False


def _day_start(day: dt.date, tz: dt.tzinfo | None) -> float:
    if tz is None:
        return dt.datetime(day.year, day.month, day.day).timestamp()  # local zone
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def _date_test(op: str, lo: float, hi: float) -> Callable[[float], bool]:
    if op == "before":
        return lambda t: t < lo
    if op == "on":
        return lambda t: lo <= t < hi
    return lambda t: t >= lo


def _day_test(op: str, day: dt.date) -> Callable[[dt.date], bool]:
    if op == "before":
        return lambda d: d < day
    if op == "on":
        return lambda d: d == day
    return lambda d: d >= day


class _Compiler:
    def __init__(self, ctx: SearchContext) -> None:
        self.ctx = ctx
        self.now = time.time() if ctx.now is None else ctx.now
        msgs = ctx.messages
        self.max_uid = msgs[-1].uid if msgs else 0
        self.saved = frozenset(ctx.saved)

    def compile(self, key: sk.SearchKey) -> tuple[Eval, int]:
        if isinstance(key, sk.And):
            return self._and([self.compile(k) for k in key.keys])
        if isinstance(key, sk.Or):
            return self._or([self.compile(key.left), self.compile(key.right)])
        if isinstance(key, sk.Not):
            inner, level = self.compile(key.key)

            def not_(m: _Msg) -> bool | None:
                r = inner(m)
                return None if r is None else not r

            return not_, level
        if isinstance(key, sk.AllKey):
            return (lambda m: True), META
        if isinstance(key, sk.FlagKey):
            return self._flag(key), META
        if isinstance(key, sk.SeqKey):
            return self._seq(key), META
        if isinstance(key, sk.SizeKey):
            n = key.size
            if key.op == "larger":
                return (lambda m: m.info.size > n), META
            return (lambda m: m.info.size < n), META
        if isinstance(key, sk.ModSeqKey):
            ms = key.modseq
            return (lambda m: m.info.modseq >= ms), META
        if isinstance(key, sk.WithinKey):
            limit = self.now - key.seconds
            if key.older:
                return (lambda m: m.info.internal_date < limit), META
            return (lambda m: m.info.internal_date >= limit), META
        if isinstance(key, sk.DateKey):
            return self._date(key)
        if isinstance(key, sk.HeaderKey):
            name, needle = key.name, key.value

            def header(m: _Msg) -> bool | None:
                if m.fields is None:
                    return None
                return T.header_matches(m.fields, name, needle)

            return header, HEADER
        if isinstance(key, sk.TextKey):
            value, body_only = key.value, key.body_only

            def text(m: _Msg) -> bool | None:
                if m.text is None:
                    return None
                if body_only:
                    return m.text.body_contains(value)
                return m.text.text_contains(value)

            return text, FULL
        raise TypeError(f"unknown search key {key!r}")  # pragma: no cover

    @staticmethod
    def _and(parts: list[tuple[Eval, int]]) -> tuple[Eval, int]:
        parts.sort(key=lambda p: p[1])  # cheap keys first: they usually decide
        fns = [p[0] for p in parts]
        level = max((p[1] for p in parts), default=META)
        if len(fns) == 1:
            return fns[0], level

        def and_(m: _Msg) -> bool | None:
            unknown = False
            for f in fns:
                r = f(m)
                if r is False:
                    return False
                if r is None:
                    unknown = True
            return None if unknown else True

        return and_, level

    @staticmethod
    def _or(parts: list[tuple[Eval, int]]) -> tuple[Eval, int]:
        parts.sort(key=lambda p: p[1])
        fns = [p[0] for p in parts]
        level = max(p[1] for p in parts)

        def or_(m: _Msg) -> bool | None:
            unknown = False
            for f in fns:
                r = f(m)
                if r is True:
                    return True
                if r is None:
                    unknown = True
            return None if unknown else False

        return or_, level

    def _flag(self, key: sk.FlagKey) -> Eval:
        flag, present = key.flag, key.present
        if flag == "\\Recent":
            recent = self.ctx.recent
            return lambda m: (m.info.uid in recent) == present
        if flag in SYSTEM_FLAGS:
            return lambda m: (flag in m.info.flags) == present
        low = flag.lower()  # keywords compare case-insensitively (RFC 9051 §2.3.2)
        return lambda m: any(f.lower() == low for f in m.info.flags) == present

    def _seq(self, key: sk.SeqKey) -> Eval:
        largest = self.max_uid if key.uid else len(self.ctx.messages)
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(key.seqset.bounds(largest) if key.seqset.ranges else ()):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        starts = [lo for lo, _ in merged]
        saved = self.saved if key.seqset.saved else frozenset()
        use_uid = key.uid

        def seq(m: _Msg) -> bool:
            n = m.info.uid if use_uid else m.seq
            i = bisect.bisect_right(starts, n) - 1
            if i >= 0 and n <= merged[i][1]:
                return True
            return m.info.uid in saved

        return seq

    def _date(self, key: sk.DateKey) -> tuple[Eval, int]:
        tz = self.ctx.tz
        lo = _day_start(key.date, tz)
        hi = _day_start(key.date + dt.timedelta(days=1), tz)
        on_internal = _date_test(key.op, lo, hi)
        if not key.sent:
            return (lambda m: on_internal(m.info.internal_date)), META
        on_day = _day_test(key.op, key.date)

        def sent(m: _Msg) -> bool | None:
            if m.fields is None:
                return None
            day = T.sent_date(m.fields)
            if day is None:
                return on_internal(m.info.internal_date)
            return on_day(day)

        return sent, HEADER


def _fields_of(block: bytes) -> Fields:
    """Header fields of a message's leading bytes (the whole message or its header block)."""
    if block.startswith(b"\r\n"):
        return []
    end = block.find(b"\r\n\r\n")
    return split_fields(block if end < 0 else block[: end + 2])


async def header_fields(mailbox: MessageOpener, info: MessageInfo) -> Fields:
    """The parsed header fields of a message ([] when it was expunged meanwhile); a big
    message is read only up to its blank line."""
    try:
        source = await mailbox.open_message(info.uid)
        if info.size <= STREAM_THRESHOLD:
            return _fields_of(await source.read())
        return _fields_of(await read_prefix(source))
    except MailError as exc:
        if exc.kind is not MailErrorKind.EXPUNGED:
            raise
        return []


async def _load(mailbox: MessageOpener, m: _Msg, level: int) -> bool:
    """Read what ``level`` needs; False when the message is gone."""
    try:
        source = await mailbox.open_message(m.info.uid)
        if level == HEADER:
            small = m.info.size <= STREAM_THRESHOLD
            m.fields = _fields_of(await (source.read() if small else read_prefix(source)))
            return True
        m.text = T.MessageText(await source.read())
        m.fields = m.text.fields
        return True
    except MailError as exc:
        if exc.kind is not MailErrorKind.EXPUNGED:
            raise
        return False


async def search(mailbox: MessageOpener, key: sk.SearchKey, ctx: SearchContext) -> list[int]:
    """Sequence numbers (ascending) of the messages of ``ctx`` that match ``key``.

    Messages expunged by someone else while we read them do not match.
    """
    messages = ctx.messages
    while isinstance(key, sk.And) and len(key.keys) == 1:  # "SEARCH UNSEEN" parses as AND
        key = key.keys[0]
    if isinstance(key, sk.FlagKey) and key.flag in SYSTEM_FLAGS:
        # SEARCH UNSEEN / FLAGGED / DELETED... (what clients poll with): one C-level pass,
        # no evaluator call per message
        flag = key.flag
        if key.present:
            return [i for i, info in enumerate(messages, 1) if flag in info.flags]
        return [i for i, info in enumerate(messages, 1) if flag not in info.flags]
    fn, level = _Compiler(ctx).compile(key)
    out: list[int] = []
    if level == META:
        # decided by the index alone: one reused message record, no bytes read
        m = _Msg(0, messages[0]) if messages else None
        for i, info in enumerate(messages, 1):
            assert m is not None
            m.seq = i
            m.info = info
            if fn(m):
                out.append(i)
        return out
    for i, info in enumerate(messages):
        m = _Msg(i + 1, info)
        r = fn(m)
        if r is None:
            # a big message: its header block first, the whole only if still undecided
            first = HEADER if level == HEADER or info.size > STREAM_THRESHOLD else FULL
            if not await _load(mailbox, m, first):
                continue
            r = fn(m)
            if r is None and m.text is None:
                if not await _load(mailbox, m, FULL):
                    continue
                r = fn(m)
        if r:
            out.append(i + 1)
    return out
