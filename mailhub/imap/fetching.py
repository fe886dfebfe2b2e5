"""The FETCH engine: typed attributes + index entries in, FETCH responses out (RFC 9051 §6.4.5).

Sans-socket and session-free: :class:`Fetcher` takes the mailbox (``store.api.Mailbox``), the
attributes the parser produced (macros already expanded) and :class:`FetchOptions` saying
what the session knows (UID command, read-only, CONDSTORE enabled, which UIDs are \\Recent).
:meth:`Fetcher.responses` yields one :class:`FetchResponse` per message, so a FETCH over
100,000 messages holds one response at a time, and big bodies are
:class:`~mailhub.imap.proto.values.BodyRef` pieces that the connection streams.

Semantics that live here rather than in the handler:

* RFC 9051 §6.4.5: BODY[...] (not PEEK), BINARY[...] and RFC822 / RFC822.TEXT set \\Seen
  unless the mailbox is read-only (EXAMINE); the changed flags come back as FLAGS in the
  same response (with MODSEQ under CONDSTORE, RFC 7162 §3.1.4). \\Seen is set with one
  ``store_flags`` call per batch of messages, not one per message.
* RFC 9051 §6.4.9: UID FETCH answers always carry UID (we put it first, as Dovecot does).
* RFC 7162 §3.1.4.1: CHANGEDSINCE keeps only messages whose MODSEQ is higher and implies
  MODSEQ; the handler computes VANISHED (§3.2.6) with :func:`vanished_uids`.
* RFC 3516: BINARY of an unknown Content-Transfer-Encoding stops the command with
  ``NO [UNKNOWN-CTE]`` (:class:`FetchFailed`); earlier responses stay valid.
* A message expunged by another session meanwhile is skipped and counted in
  :attr:`Fetcher.missing` (the handler answers ``OK [EXPUNGEISSUED]``, as Dovecot does).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from mailhub.errors import MailError, MailErrorKind
from mailhub.imap.fetch_items import (
    MAX_HEADER_READ,
    STREAM_THRESHOLD,
    MessageAccess,
    MessageOpener,
    range_chunks,
    read_prefix,
)
from mailhub.imap.line_blocks import encode_in_blocks
from mailhub.imap.proto.codes import Code, ResponseCode
from mailhub.imap.proto.fetch import FetchAtt, Section
from mailhub.imap.proto.responses import FetchResponse, fetch_flags, fetch_internaldate
from mailhub.imap.proto.sequence import SequenceSet
from mailhub.imap.proto.values import Atom, BodyRef, Literal, Raw, Value
from mailhub.imap.render.cache import (
    CACHE_KEY,
    StructureValues,
    envelope_of,
    pack,
    pack_envelope,
    render_all,
    unpack,
)
from mailhub.imap.render.envelope import envelope
from mailhub.imap.render.quote import quoted
from mailhub.mime import sections as S
from mailhub.mime.structure import has_header_end, part_by_number, root_fields
from mailhub.store.api import MessageSource
from mailhub.store.flags import SEEN, SYSTEM_FLAGS, FlagOp
from mailhub.store.model import MessageInfo

__all__ = [
    "FetchFailed",
    "FetchMailbox",
    "FetchOptions",
    "Fetcher",
    "flag_values",
    "vanished_uids",
]


SEEN_BATCH = 256  # messages per batch: one \Seen store call, concurrent cache lookups
_SYSTEM_ORDER = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
_STRUCTURE = frozenset({"ENVELOPE", "BODY", "BODYSTRUCTURE"})
# Items encoded straight to bytes: 1-4 from the index alone (``index_only``), 5-7 from the
# structure cache, 8 from the index too but formatted as a date (``direct``).
_FAST = {
    "UID": 1,
    "FLAGS": 2,
    "RFC822.SIZE": 3,
    "MODSEQ": 4,
    "ENVELOPE": 5,
    "BODY": 6,
    "BODYSTRUCTURE": 7,
    "INTERNALDATE": 8,
}
_WHOLE_BODY = 9  # BODY.PEEK[] of a message small enough to be sent from one read
_WHOLE = Section()


def _fast_code(att: FetchAtt) -> int:
    if att.section is None:
        return _FAST.get(att.name, 0)
    if att.name == "BODY" and att.section == _WHOLE and att.partial is None:
        return _WHOLE_BODY
    return 0


# Index-only FETCH answers are produced this many messages at a time (one bytes each).
_LINES_PER_CHUNK = 512


class FetchMailbox(MessageOpener, Protocol):
    """What FETCH needs of ``store.api.Mailbox``."""

    async def store_flags(
        self,
        uids: Iterable[int],
        op: FlagOp,
        flags: frozenset[str],
        unchanged_since: int | None = None,
    ) -> tuple[list[MessageInfo], list[int]]: ...


class FetchFailed(Exception):
    """The command must end with ``status [code] text`` (after the responses already sent)."""

    def __init__(self, status: str, text: str, code: ResponseCode | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """What the session contributes to a FETCH.

    ``condstore``: CONDSTORE/QRESYNC is enabled (RFC 7162 §3.1): FLAGS go out with MODSEQ.
    ``is_recent``: whether a UID is \\Recent in this session (IMAP4rev1 only; None = never).
    """

    uid_command: bool = False
    readonly: bool = False
    condstore: bool = False
    changedsince: int | None = None
    is_recent: Callable[[int], bool] | None = None


def flag_values(flags: Iterable[str], recent: bool = False) -> tuple[Value, ...]:
    """FLAGS in a stable order: system flags (RFC order), \\Recent, then keywords sorted."""
    fs = set(flags)
    out = [f for f in _SYSTEM_ORDER if f in fs]
    if recent:
        out.append("\\Recent")
    out += sorted(f for f in fs if f not in SYSTEM_FLAGS and f != "\\Recent")
    return fetch_flags(out)


_FLAG_WIRE: dict[tuple[frozenset[str], bool], Raw] = {}


def _flags_raw(flags: frozenset[str], recent: bool) -> Raw:
    """The FLAGS value pre-encoded, memoised: a mailbox has few distinct flag sets, and
    ``UID FETCH 1:* (FLAGS)`` over 100,000 messages should not sort and encode 100,000 times."""
    key = (flags, recent)
    raw = _FLAG_WIRE.get(key)
    if raw is None:
        if len(_FLAG_WIRE) > 4096:
            _FLAG_WIRE.clear()
        words = [str(v.text) for v in flag_values(flags, recent) if isinstance(v, Atom)]
        raw = _FLAG_WIRE[key] = Raw(("(" + " ".join(words) + ")").encode("utf-8"))
    return raw


def _mime_section(sec: Section) -> S.Section:
    return S.Section(
        sec.part, sec.text, tuple(h.encode("utf-8", "surrogateescape") for h in sec.headers)
    )


def _response_name(att: FetchAtt) -> str:
    """The echo of an attribute; HEADER.FIELDS names upper-cased as Dovecot sends them."""
    sec = att.section
    if sec is not None and sec.headers:
        att = dataclasses.replace(
            att, section=dataclasses.replace(sec, headers=tuple(h.upper() for h in sec.headers))
        )
    return att.response_name()


def _clip(start: int, end: int, partial: tuple[int, int] | None) -> tuple[int, int]:
    """Apply ``<origin.count>`` to a byte range (RFC 9051 §6.4.5: past the end is empty)."""
    if partial is None:
        return start, end
    origin, count = partial
    s = min(start + origin, end)
    return s, min(s + count, end)


def vanished_uids(
    expunged: Iterable[int], uidset: SequenceSet, uid_next: int, saved: Sequence[int] = ()
) -> list[int]:
    """UIDs of a UID FETCH set that were expunged (RFC 7162 §3.2.6 VANISHED (EARLIER)).

    ``*`` is the highest UID ever assigned (``uid_next - 1``), so a deleted last message
    is reported too.
    """
    s = uidset.with_saved(saved) if uidset.saved else uidset
    largest = max(uid_next - 1, 0)
    bounds = list(s.bounds(largest))
    return sorted(u for u in set(expunged) if any(lo <= u <= hi for lo, hi in bounds))


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a FETCH attribute list asks for, worked out once per distinct list."""

    atts: tuple[FetchAtt, ...]
    names: tuple[str, ...]
    steps: tuple[tuple[str, FetchAtt, int], ...]
    prefixes: tuple[tuple[bytes, int], ...]  # (b"NAME ", fast-path code) per step
    sets_seen: bool
    wants_flags: bool
    wants_modseq: bool
    wants_structure: bool


@functools.lru_cache(maxsize=256)
def _plan_of(atts: tuple[FetchAtt, ...], uid_command: bool) -> _Plan:
    """Memoised: a client sends the same few attribute lists all session long, and the
    parse cache hands them over as the same tuples."""
    seen: set[str] = set()
    ordered: list[FetchAtt] = []
    if uid_command:
        ordered.append(FetchAtt("UID"))
        seen.add("UID")
    for att in atts:
        name = _response_name(att)
        if name not in seen:
            seen.add(name)
            ordered.append(att)
    names = tuple(_response_name(a) for a in ordered)
    steps = tuple((n, a, _fast_code(a)) for n, a in zip(names, ordered, strict=True))
    return _Plan(
        atts=tuple(ordered),
        names=names,
        steps=steps,
        prefixes=tuple((name.encode("ascii") + b" ", fast) for name, _, fast in steps),
        sets_seen=any(a.sets_seen for a in ordered),
        wants_flags="FLAGS" in seen,
        wants_modseq="MODSEQ" in seen,
        wants_structure=any(a.name in _STRUCTURE and a.section is None for a in ordered),
    )


class Fetcher:
    """Produces the FETCH responses of one command. See the module docstring."""

    def __init__(
        self,
        mailbox: FetchMailbox,
        atts: Sequence[FetchAtt],
        options: FetchOptions | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.options = opts = options or FetchOptions()
        plan = _plan_of(tuple(atts), opts.uid_command)
        self.atts: tuple[FetchAtt, ...] = plan.atts
        self.names = plan.names
        # (response name, attribute, fast-path code): index-only items skip the async path
        self._plan = plan.steps
        self._prefixes = plan.prefixes
        self.sets_seen = not opts.readonly and plan.sets_seen
        self.wants_flags = plan.wants_flags
        self.wants_modseq = plan.wants_modseq
        # BODY[...] is a section of the bytes, not the cached structure
        self.wants_structure = plan.wants_structure
        self.updated: dict[int, MessageInfo] = {}
        """UID -> new index entry, for messages whose \\Seen this FETCH set."""
        self.missing: list[int] = []
        """UIDs that were expunged by someone else and so got no response."""

    # -------------------------------------------------------------------------- driving
    @property
    def index_only(self) -> bool:
        """Whether every item comes from the index (UID, FLAGS, RFC822.SIZE, MODSEQ), so
        :meth:`encode_index_only` can answer without building response objects."""
        return not self.sets_seen and all(0 < fast <= 4 for _, _, fast in self._plan)

    def direct_for(self, targets: Sequence[tuple[int, MessageInfo]]) -> bool:
        """Whether :meth:`encode_batch` can answer for ``targets``: index items plus
        INTERNALDATE, the cached ENVELOPE / BODY / BODYSTRUCTURE (what mail clients list a
        folder with), and BODY.PEEK[] of messages small enough to need no streaming (what
        they open a message with)."""
        if self.sets_seen or not all(fast for _, _, fast in self._plan):
            return False
        if any(fast == _WHOLE_BODY for _, _, fast in self._plan):
            return all(info.size <= STREAM_THRESHOLD for _, info in targets)
        return True

    def batches(
        self, targets: Iterable[tuple[int, MessageInfo]]
    ) -> Iterator[list[tuple[int, MessageInfo]]]:
        """The targets (minus those CHANGEDSINCE leaves out) in batches for
        :meth:`encode_batch` (a plain generator: an async one costs a WeakSet entry each)."""
        changedsince = self.options.changedsince
        batch: list[tuple[int, MessageInfo]] = []
        for seq, info in targets:
            if changedsince is not None and info.modseq <= changedsince:
                continue
            batch.append((seq, info))
            if len(batch) >= SEEN_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    async def encode_batch(self, batch: list[tuple[int, MessageInfo]]) -> bytes:
        """The wire bytes of a :meth:`direct_for` FETCH of one batch of messages.

        Byte-for-byte what :meth:`responses` produces, without response objects: one cache
        lookup per batch, the cached values written out as they are. On a miss an
        ENVELOPE-only FETCH parses just the header block (and caches just the envelope);
        the fills of a batch are written to the index in one short transaction, on the event
        loop unless a lock is in the way (a thread hop per batch cost more).
        """
        opts = self.options
        plan = self._prefixes
        codes = {fast for _, fast in plan}
        needs_full = 6 in codes or 7 in codes
        needs_env = 5 in codes
        needs_body = _WHOLE_BODY in codes
        add_modseq = not self.wants_modseq and (
            opts.changedsince is not None or (opts.condstore and self.wants_flags)
        )
        rec = opts.is_recent
        blobs: dict[int, bytes] = {}
        if needs_full or needs_env:
            blobs = await self.mailbox.get_cached_many([info.uid for _, info in batch], CACHE_KEY)
        writes: dict[int, bytes] = {}
        out: list[bytes] = []
        for seq, info in batch:
            uid = info.uid
            full: StructureValues | None = None
            env: bytes | None = None
            if needs_full:
                full = unpack(blobs.get(uid))
                if full is None:
                    data = await self._message_bytes(info, header_only=False)
                    if data is None:
                        self.missing.append(uid)
                        continue
                    full = render_all(data)
                    writes[uid] = pack(full)
                env = full.envelope
            elif needs_env:
                env = envelope_of(blobs.get(uid))
                if env is None:
                    data = await self._message_bytes(info, header_only=True)
                    if data is None:
                        self.missing.append(uid)
                        continue
                    env = envelope(root_fields(data))
                    writes[uid] = pack_envelope(env)
            body: bytes | None = None
            if needs_body:
                data = await self._message_bytes(info, header_only=False)
                if data is None:
                    self.missing.append(uid)
                    continue
                body = S.nul_safe(data)
            parts = [b"* %d FETCH (" % seq]
            for i, (name, fast) in enumerate(plan):
                if i:
                    parts.append(b" ")
                parts.append(name)
                if fast == 1:
                    parts.append(b"%d" % uid)
                elif fast == 2:
                    parts.append(_flags_raw(info.flags, rec is not None and rec(uid)).data)
                elif fast == 3:
                    parts.append(b"%d" % info.size)
                elif fast == 4:
                    parts.append(b"(%d)" % info.modseq)
                elif fast == 5:
                    assert env is not None
                    parts.append(env)
                elif fast == 6:
                    assert full is not None
                    parts.append(full.body)
                elif fast == 7:
                    assert full is not None
                    parts.append(full.bodystructure)
                elif fast == _WHOLE_BODY:
                    assert body is not None
                    parts.append(b"{%d}\r\n" % len(body))
                    parts.append(body)
                else:
                    parts.append(quoted(fetch_internaldate(info.internal_date).encode("utf-8")))
            if add_modseq:
                parts.append(b" MODSEQ (%d)" % info.modseq)
            parts.append(b")\r\n")
            out.append(b"".join(parts))
        if writes:
            await self._store_fills(writes)
        return b"".join(out)

    async def _message_bytes(self, info: MessageInfo, *, header_only: bool) -> bytes | None:
        """The message (or, with ``header_only``, at least its header block); None when it
        was expunged meanwhile."""
        try:
            source = await self.mailbox.open_message(info.uid)
            if header_only and info.size > STREAM_THRESHOLD:
                head = await read_prefix(source)
                if has_header_end(head) or len(head) < MAX_HEADER_READ:
                    return head
            return await source.read()
        except MailError as exc:
            if exc.kind is not MailErrorKind.EXPUNGED:
                raise
            return None

    async def _store_fills(self, writes: dict[int, bytes]) -> None:
        """Store a batch's cache fills in one commit (only a cache: a failed write is
        computed again next time). Written per batch rather than left to background tasks:
        writes queued up behind a long FETCH made the next command wait for all of them."""
        with contextlib.suppress(MailError):
            await self.mailbox.set_cached_many(CACHE_KEY, writes)

    def encode_index_only(
        self,
        targets: Iterable[tuple[int, MessageInfo]],
        whole: Sequence[MessageInfo] | None = None,
    ) -> Iterator[bytes]:
        """The wire bytes of an index-only FETCH, a message or a slice of messages at a time.

        Byte-for-byte what :meth:`responses` + ``FetchResponse.write`` produce, about ten
        times faster: ``UID FETCH 1:* (FLAGS)`` over 100,000 messages is what every sync
        client sends on every connect. ``whole`` is the session's message list when the
        targets are all of it (``1:*``): the lines of unchanged blocks are then reused
        (:mod:`mailhub.imap.line_blocks`).
        """
        opts = self.options
        changedsince = opts.changedsince
        add_modseq = not self.wants_modseq and (
            changedsince is not None or (opts.condstore and self.wants_flags)
        )
        rec = opts.is_recent
        codes = tuple(fast for _, _, fast in self._plan)
        # One %-format per message: the names are in the template, only values vary.
        fmt = b"* %d FETCH (" + b" ".join(
            name.encode("ascii") + (b" %s" if fast == 2 else b" (%d)" if fast == 4 else b" %d")
            for name, _, fast in self._plan
        )
        fmt += b" MODSEQ (%d))\r\n" if add_modseq else b")\r\n"
        flag_bytes: dict[frozenset[str], bytes] = {}  # this command's flag sets, encoded
        if not add_modseq and changedsince is None and codes in ((1, 2), (2,)):
            # UID FETCH 1:* (FLAGS) / FETCH 1:* (FLAGS): what sync clients send on connect.
            # A list comprehension per slice of messages, one bytes object per slice.
            def plain(flags: frozenset[str]) -> bytes:
                fb = flag_bytes[flags] = _flags_raw(flags, False).data
                return fb

            def recent(flags: frozenset[str]) -> bytes:
                return _flags_raw(flags, True).data

            get = flag_bytes.get

            def lines(chunk: list[tuple[int, MessageInfo]]) -> list[bytes]:
                """One bytes object per message of ``chunk``, in a list comprehension."""
                if rec is not None:
                    flag_list = [
                        recent(i.flags) if rec(i.uid) else (get(i.flags) or plain(i.flags))
                        for _, i in chunk
                    ]
                else:
                    flag_list = [get(i.flags) or plain(i.flags) for _, i in chunk]
                if codes == (1, 2):
                    return [
                        fmt % (seq, info.uid, fb)
                        for (seq, info), fb in zip(chunk, flag_list, strict=True)
                    ]
                return [fmt % (seq, fb) for (seq, _), fb in zip(chunk, flag_list, strict=True)]

            if whole is not None:

                def encode_block(first: int, block: Sequence[MessageInfo]) -> bytes:
                    seqs = range(first, first + len(block))
                    return b"".join(lines(list(zip(seqs, block, strict=True))))

                # \\Recent is fixed for a session's messages: its set is part of the key
                variant = None if rec is None else getattr(rec, "__self__", rec)
                yield from encode_in_blocks(self.mailbox, fmt, whole, encode_block, variant)
                return
            it = iter(targets)
            while chunk := list(itertools.islice(it, _LINES_PER_CHUNK)):
                yield b"".join(lines(chunk))
            return
        for seq, info in targets:
            if changedsince is not None and info.modseq <= changedsince:
                continue
            args: list[int | bytes] = [seq]
            for fast in codes:
                if fast == 1:
                    args.append(info.uid)
                elif fast == 2:
                    if rec is not None and rec(info.uid):
                        args.append(_flags_raw(info.flags, True).data)
                    else:
                        fb = flag_bytes.get(info.flags)
                        if fb is None:
                            fb = flag_bytes[info.flags] = _flags_raw(info.flags, False).data
                        args.append(fb)
                elif fast == 3:
                    args.append(info.size)
                else:
                    args.append(info.modseq)
            if add_modseq:
                args.append(info.modseq)
            yield fmt % tuple(args)

    async def responses(
        self, targets: Iterable[tuple[int, MessageInfo]]
    ) -> AsyncIterator[FetchResponse]:
        """One response per (sequence number, index entry), in the given order.

        Raises :class:`FetchFailed` (e.g. ``NO [UNKNOWN-CTE]``) when the command must stop.
        """
        changedsince = self.options.changedsince
        if not (self.sets_seen or self.wants_structure):  # nothing to batch: straight through
            for seq, info in targets:
                if changedsince is not None and info.modseq <= changedsince:
                    continue
                try:
                    resp = await self.fetch_one(seq, info)
                except MailError as exc:
                    if exc.kind is not MailErrorKind.EXPUNGED:
                        raise
                    self.missing.append(info.uid)
                    continue
                yield resp
            return
        batch: list[tuple[int, MessageInfo]] = []
        for seq, info in targets:
            if changedsince is not None and info.modseq <= changedsince:
                continue
            batch.append((seq, info))
            if len(batch) >= SEEN_BATCH:
                async for resp in self._batch(batch):
                    yield resp
                batch = []
        if batch:
            async for resp in self._batch(batch):
                yield resp

    async def _batch(self, batch: list[tuple[int, MessageInfo]]) -> AsyncIterator[FetchResponse]:
        changed: dict[int, MessageInfo] = {}
        if self.sets_seen:
            unseen = [info.uid for _, info in batch if SEEN not in info.flags]
            if unseen:
                infos, _ = await self.mailbox.store_flags(unseen, FlagOp.ADD, frozenset({SEEN}))
                changed = {i.uid: i for i in infos}
                self.updated.update(changed)
        cached: list[StructureValues | None] | None = None
        if self.wants_structure:
            # one index lookup for the whole batch, not a thread hop per message
            blobs = await self.mailbox.get_cached_many([info.uid for _, info in batch], CACHE_KEY)
            cached = [unpack(blobs.get(info.uid)) for _, info in batch]
        writes: dict[int, bytes] = {}  # cache fills of this batch, written in one transaction
        try:
            for i, (seq, info) in enumerate(batch):
                new = changed.get(info.uid)
                acc = None
                if cached is not None:
                    acc = MessageAccess(
                        self.mailbox, info.uid, info.size, cached[i], True, deferred=writes
                    )
                try:
                    resp = await self.fetch_one(
                        seq, new or info, flags_changed=new is not None, access=acc
                    )
                except MailError as exc:
                    if exc.kind is not MailErrorKind.EXPUNGED:
                        raise
                    self.missing.append(info.uid)
                    continue
                yield resp
        finally:
            if writes:
                # only a cache: on failure the values are computed again next time
                with contextlib.suppress(MailError):
                    await self.mailbox.set_cached_many(CACHE_KEY, writes)

    # ------------------------------------------------------------------------ one message
    async def fetch_one(
        self,
        seq: int,
        info: MessageInfo,
        *,
        flags_changed: bool = False,
        access: MessageAccess | None = None,
    ) -> FetchResponse:
        """The response for one message (``flags_changed``: this FETCH just set \\Seen)."""
        opts = self.options
        acc = access
        items: list[tuple[str, Value]] = []
        for name, att, fast in self._plan:
            if fast == 1:
                items.append((name, info.uid))
            elif fast == 2:
                items.append((name, self._flags(info)))
            elif fast == 3:
                items.append((name, info.size))
            elif fast == 4:
                items.append((name, info.modseq))
            else:
                if acc is None:
                    acc = MessageAccess(self.mailbox, info.uid, info.size)
                items.append((name, await self._value(att, info, acc)))
        show_flags = self.wants_flags or flags_changed
        if flags_changed and not self.wants_flags:
            items.append(("FLAGS", self._flags(info)))
        if not self.wants_modseq and (
            opts.changedsince is not None or (opts.condstore and show_flags)
        ):
            items.append(("MODSEQ", info.modseq))
        return FetchResponse(seq, tuple(items))

    def _flags(self, info: MessageInfo) -> Raw:
        rec = self.options.is_recent
        return _flags_raw(info.flags, rec is not None and rec(info.uid))

    async def _value(self, att: FetchAtt, info: MessageInfo, acc: MessageAccess) -> Value:
        name = att.name
        if att.section is None:
            if name == "UID":
                return info.uid
            if name == "FLAGS":
                return self._flags(info)
            if name == "INTERNALDATE":
                return fetch_internaldate(info.internal_date)
            if name == "RFC822.SIZE":
                return info.size
            if name == "MODSEQ":
                return info.modseq
            if name in _STRUCTURE:
                vals = await acc.values()
                if name == "ENVELOPE":
                    return Raw(vals.envelope)
                return Raw(vals.body if name == "BODY" else vals.bodystructure)
            if name == "RFC822":
                return await self._body(acc, Section(), None)
            if name == "RFC822.HEADER":
                return await self._body(acc, Section(text="HEADER"), None)
            if name == "RFC822.TEXT":
                return await self._body(acc, Section(text="TEXT"), None)
            raise FetchFailed("BAD", f"Unknown FETCH attribute {name}")
        if name == "BODY":
            return await self._body(acc, att.section, att.partial)
        if name == "BINARY":
            return await self._binary(acc, att.section.part, att.partial)
        if name == "BINARY.SIZE":
            return await self._binary_size(acc, att.section.part)
        raise FetchFailed("BAD", f"Unknown FETCH attribute {name}")

    # --------------------------------------------------------------------------- sections
    async def _range(
        self, acc: MessageAccess, start: int, end: int, *, binary: bool = False
    ) -> Value:
        """A literal of bytes ``start..end``: sliced from a small message, streamed from a
        big one. BODY[] turns NUL into 0x80 (plain literal); BINARY keeps it (literal8)."""
        if end - start <= STREAM_THRESHOLD or acc.small:
            data = await acc.span(start, end)
            if binary:
                return Literal(data, binary=b"\x00" in data)
            return Literal(S.nul_safe(data))
        source = await acc.source()
        return _stream(source, start, end, binary)

    async def _body(
        self, acc: MessageAccess, section: Section, partial: tuple[int, int] | None
    ) -> Value:
        if not section.part and section.text is None:  # BODY[]: no parse needed
            if acc.small:
                data = await acc.data()
                start, end = _clip(0, len(data), partial)
                return Literal(S.nul_safe(data[start:end]))
            start, end = _clip(0, acc.size, partial)
            return await self._range(acc, start, end)
        sec = _mime_section(section)
        root = await acc.root()
        rng = S.section_range(root, sec)
        if rng is not None:
            start, end = _clip(rng[0], rng[1], partial)
            return await self._range(acc, start, end)
        hrng = S.header_range(root, sec)
        value = b"" if hrng is None else S.filter_header(await acc.span(*hrng), sec)
        if partial is not None:
            value = S.partial(value, partial[0], partial[1])
        return Literal(S.nul_safe(value))

    async def _binary(
        self, acc: MessageAccess, part: tuple[int, ...], partial: tuple[int, int] | None
    ) -> Value:
        if not part:
            if acc.small:
                data = await acc.data()
                start, end = _clip(0, len(data), partial)
                return Literal(data[start:end], binary=b"\x00" in data)
            start, end = _clip(0, acc.size, partial)
            return await self._range(acc, start, end, binary=True)
        root = await acc.root()
        p = part_by_number(root, list(part))
        if p is None:
            return Literal(b"")
        if p.is_multipart or p.message is not None or _identity(p.encoding):
            start, end = _clip(p.body_start, p.body_end, partial)
            return await self._range(acc, start, end, binary=True)
        value = _decode(await acc.span(p.body_start, p.body_end), p.encoding)
        literal8 = S.binary_literal8(root, part, value)
        if partial is not None:
            value = S.partial(value, partial[0], partial[1])
        return Literal(value, binary=literal8)

    async def _binary_size(self, acc: MessageAccess, part: tuple[int, ...]) -> int:
        if not part:
            return len(await acc.data()) if acc.small else acc.size
        root = await acc.root()
        p = part_by_number(root, list(part))
        if p is None:
            return 0
        if p.is_multipart or p.message is not None or _identity(p.encoding):
            return p.body_size
        return len(_decode(await acc.span(p.body_start, p.body_end), p.encoding))


def _identity(encoding: bytes | None) -> bool:
    return (encoding or b"7bit").strip().lower() in (b"7bit", b"8bit", b"binary")


def _decode(raw: bytes, encoding: bytes | None) -> bytes:
    try:
        return S.decode_body(raw, encoding)
    except S.SectionError as exc:
        if exc.kind is S.SectionErrorKind.UNKNOWN_CTE:
            raise FetchFailed(
                "NO",
                "Unknown Content-Transfer-Encoding",
                ResponseCode.of(Code.UNKNOWN_CTE),
            ) from None
        raise


def _stream(source: MessageSource, start: int, end: int, binary: bool) -> BodyRef:
    def chunks() -> AsyncIterator[bytes]:
        return range_chunks(source, start, end, nul_safe=not binary)

    return BodyRef(end - start, chunks, binary=binary)
