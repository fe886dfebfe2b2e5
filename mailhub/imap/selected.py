"""The selected-mailbox view: one session's sequence numbers over a shared store folder.

Sequence numbers are a per-session notion (RFC 9051 §2.3.1.2): the store speaks UIDs only.
A :class:`SelectedView` keeps the session's list of messages (``messages[seq - 1]``), built
from a :class:`~mailhub.store.model.Snapshot` at SELECT, and a change-bus
:class:`~mailhub.store.bus.Subscription` for the folder. Changes by anyone (other sessions,
POP3, delivery, outside programs through the store's watcher, and this session's own
commands) arrive on the subscription and are folded in only when :meth:`updates` is called,
which the dispatcher does after each command:

* new messages are appended (``* n EXISTS``, plus ``* n RECENT`` for rev1 sessions) at any
  point - appending never renumbers anything;
* flag changes become ``* n FETCH (FLAGS ... [UID] [MODSEQ])`` unless this session already
  reported that exact state (its own STORE answers come from its own results through
  :meth:`note_flags`);
* expunges become ``* n EXPUNGE`` (or ``* VANISHED uids`` under QRESYNC, RFC 7162 §3.2.10)
  only when ``allow_expunge`` is true, i.e. never while a non-UID FETCH/STORE/SEARCH is
  answered (RFC 9051 §7.5.1); until then the expunged messages stay in the view as ghosts
  (a FETCH of one answers ``NO [EXPUNGEISSUED]`` from the store).

\\Recent (rev1 only, RFC 3501 §2.3.2) comes from ``Mailbox.claim_recent``: the first session
to see a message gets it as recent.
"""

from __future__ import annotations

import bisect
import weakref
from collections.abc import Callable, Sequence

from mailhub.imap.proto import Code, SequenceSet
from mailhub.imap.proto.responses import (
    ExistsResponse,
    ExpungeResponse,
    FetchResponse,
    RecentResponse,
    Response,
    VanishedResponse,
    fetch_flags,
)
from mailhub.imap.proto.values import Builder
from mailhub.imap.session import CommandError, Session
from mailhub.store.api import Mailbox
from mailhub.store.bus import Subscription
from mailhub.store.changes import (
    FlagsChanged,
    MailboxDeleted,
    MailboxRenamed,
    MessagesAdded,
    MessagesExpunged,
    UidValidityChanged,
)
from mailhub.store.model import MessageInfo, Snapshot

# (flags, \\Recent) -> the encoded FLAGS list of an unsolicited FETCH (few distinct sets).
_FLAG_LISTS: dict[tuple[frozenset[str], bool], bytes] = {}


class RawResponse(Response):
    """Untagged response lines already encoded."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def write(self, b: Builder) -> None:
        b.raw(self.data)


# Per open store folder: the highest UID some session of this process was given as \Recent.
_claimed: weakref.WeakKeyDictionary[Mailbox, int] = weakref.WeakKeyDictionary()


def _note_claimed(mailbox: Mailbox, uid: int) -> None:
    if uid > _claimed.get(mailbox, 0):
        _claimed[mailbox] = uid


class SelectedView:
    """See the module docstring. Created by SELECT/EXAMINE, closed by CLOSE/UNSELECT/LOGOUT."""

    def __init__(
        self,
        session: Session,
        mailbox: Mailbox,
        snapshot: Snapshot,
        subscription: Subscription,
        *,
        readonly: bool,
        first_recent: int | None,
    ) -> None:
        self.session = session
        self.mailbox = mailbox
        self.name = snapshot.mailbox
        self.readonly = readonly
        self.uidvalidity = snapshot.uidvalidity
        self.highest_modseq = snapshot.highest_modseq
        self.uid_next = snapshot.uid_next
        self.sub = subscription
        self.messages: list[MessageInfo] = list(snapshot.messages)
        self._uids: list[int] = [m.uid for m in self.messages]
        # UIDs known expunged but not yet reported (ghosts kept in ``messages``).
        self._expunged: set[int] = set()
        # \Recent UIDs of this session; None: rev2 / EXAMINE, no \Recent at all.
        self._recent: set[int] | None = None
        if first_recent is not None:
            floor = max(first_recent, _claimed.get(mailbox, 0) + 1)
            self._recent = {u for u in self._uids if u >= floor}
            _note_claimed(mailbox, snapshot.uid_next - 1)
        self.gone = False  # the folder was deleted / its UIDVALIDITY changed

    # -- lookup ----------------------------------------------------------------------------
    @property
    def exists(self) -> int:
        """The message count the client was told (ghosts included)."""
        return len(self.messages)

    def info(self, seq: int) -> MessageInfo:
        return self.messages[seq - 1]

    def uid(self, seq: int) -> int:
        return self._uids[seq - 1]

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self._uids, uid)
        if i < len(self._uids) and self._uids[i] == uid:
            return i + 1
        return None

    def is_recent(self, uid: int) -> bool:
        return self._recent is not None and uid in self._recent

    @property
    def recent_test(self) -> Callable[[int], bool] | None:
        """A fast \\Recent test for a whole command (None when nothing is \\Recent): the
        set's own ``__contains__``, not a method call per message."""
        return self._recent.__contains__ if self._recent else None

    @property
    def recent_count(self) -> int:
        return 0 if self._recent is None else len(self._recent)

    def is_expunged(self, uid: int) -> bool:
        """Expunged by someone, not yet reported to this session."""
        return uid in self._expunged

    def resolve(self, seqset: SequenceSet, *, uid: bool) -> list[int]:
        """Sequence numbers (ascending) of ``seqset``; ``$`` is the saved result.

        UID sets ignore UIDs that do not exist (RFC 9051 §6.4.9); a message number above
        the message count is a client error (BAD, RFC 9051 §9 ``seq-number``).
        """
        if seqset.saved:
            saved = self.session.searchres
            if uid:
                seqset = seqset.with_saved(saved)
            else:
                seqs = [s for s in (self.seq_of(u) for u in saved) if s is not None]
                seqset = seqset.with_saved(seqs)
            if not seqset.ranges:
                return []
        if uid:
            if not self._uids:
                return []
            out: list[int] = []
            top = self._uids[-1]
            for lo, hi in _merged(seqset.bounds(top)):
                i = bisect.bisect_left(self._uids, lo)
                j = bisect.bisect_right(self._uids, hi)
                out.extend(range(i + 1, j + 1))
            return out
        n = len(self.messages)
        if seqset.max_explicit() > n:
            raise CommandError("BAD", "Invalid message sequence number")
        if n == 0:
            if seqset.uses_star:
                raise CommandError("BAD", "No messages (mailbox is empty)")
            return []
        return seqset.resolve(n)

    # -- own changes -----------------------------------------------------------------------
    def note_flags(self, infos: Sequence[MessageInfo]) -> None:
        """Record flags this session changed and reported itself."""
        for info in infos:
            seq = self.seq_of(info.uid)
            if seq is not None:
                self.messages[seq - 1] = info
            if info.modseq > self.highest_modseq:
                self.highest_modseq = info.modseq

    def flags_update(self, seq: int, *, with_uid: bool = False) -> RawResponse:
        """:meth:`flags_response` as ready bytes: another session's STORE is reported to
        every session of a shared mailbox, so this runs once per session per change (and
        once per message for a STORE's own answer)."""
        info = self.messages[seq - 1]
        recent = self.is_recent(info.uid)
        key = (info.flags, recent)
        flags = _FLAG_LISTS.get(key)
        if flags is None:
            words = sorted(info.flags)
            if recent:
                words.append("\\Recent")
            flags = b"(" + " ".join(words).encode("utf-8") + b")"
            if len(_FLAG_LISTS) >= 4096:
                _FLAG_LISTS.clear()
            _FLAG_LISTS[key] = flags
        line = b"* %d FETCH (FLAGS %s" % (seq, flags)
        if with_uid or self.session.qresync:
            line += b" UID %d" % info.uid
        if self.session.condstore:
            line += b" MODSEQ (%d)" % info.modseq
        return RawResponse(line + b")\r\n")

    def flags_response(self, seq: int, *, with_uid: bool = False) -> FetchResponse:
        """``* seq FETCH (FLAGS (...) [UID n] [MODSEQ (m)])`` for the current state."""
        info = self.messages[seq - 1]
        flags = sorted(info.flags)
        if self.is_recent(info.uid):
            flags.append("\\Recent")
        items: list[tuple[str, object]] = [("FLAGS", fetch_flags(flags))]
        if with_uid or self.session.qresync:
            items.append(("UID", info.uid))
        if self.session.condstore:
            items.append(("MODSEQ", info.modseq))
        return FetchResponse(seq, tuple(items))  # type: ignore[arg-type]

    # -- pending changes -------------------------------------------------------------------
    def has_updates(self) -> bool:
        """Whether :meth:`updates` may have something to fold in or report."""
        return bool(self._expunged) or self.sub.pending()

    async def updates(self, *, allow_expunge: bool) -> list[Response]:
        """Fold pending changes in; return the untagged responses to send now."""
        if not self.has_updates():
            return []  # the common case, after every command
        changes, overflowed = self.sub.drain()
        out: list[Response] = []
        added: list[MessageInfo] = []
        flagged: dict[int, MessageInfo] = {}
        if overflowed:
            snap = await self.mailbox.snapshot()
            self._resync(snap, added, flagged)
        for ch in changes:
            if isinstance(ch, MessagesAdded):
                top = self._uids[-1] if self._uids else 0
                if added:
                    top = max(top, added[-1].uid)
                added.extend(m for m in ch.messages if m.uid > top)
            elif isinstance(ch, FlagsChanged):
                for m in ch.messages:
                    flagged[m.uid] = m
            elif isinstance(ch, MessagesExpunged):
                self._expunged.update(u for u in ch.uids if self.seq_of(u) is not None)
                added = [m for m in added if m.uid not in set(ch.uids)]
                self.highest_modseq = max(self.highest_modseq, ch.modseq)
            elif isinstance(ch, MailboxRenamed):
                if ch.mailbox == self.name or self.name.startswith(ch.mailbox + "/"):
                    self.name = ch.new_name + self.name[len(ch.mailbox) :]
                    self.sub.follow_rename(self.name)
            elif isinstance(ch, (MailboxDeleted, UidValidityChanged)):
                self.gone = True
        # flags (of messages the client knows and that are not expunged)
        for uid, m in sorted(flagged.items()):
            seq = self.seq_of(uid)
            if m.modseq > self.highest_modseq:
                self.highest_modseq = m.modseq
            if seq is None or uid in self._expunged:
                for i, a in enumerate(added):
                    if a.uid == uid:
                        added[i] = m
                continue
            old = self.messages[seq - 1]
            if old.flags == m.flags and old.modseq >= m.modseq:
                continue
            self.messages[seq - 1] = m
            if old.flags != m.flags or self.session.condstore:
                out.append(self.flags_update(seq))
        if allow_expunge and self._expunged:
            out += self._apply_expunges()
        if added:
            for m in added:
                self.messages.append(m)
                self._uids.append(m.uid)
                self.highest_modseq = max(self.highest_modseq, m.modseq)
            self.uid_next = max(self.uid_next, self._uids[-1] + 1)
            if self._recent is not None:
                # The first session of this process to see new mail gets it as \Recent and
                # tells the store once (not once per session: 5,000 IDLE sessions would mean
                # 5,000 index writes per delivery).
                mine = [m.uid for m in added if m.uid > _claimed.get(self.mailbox, 0)]
                if mine:
                    _note_claimed(self.mailbox, mine[-1])
                    self._recent.update(mine)
                    await self.mailbox.claim_recent()
            out.append(ExistsResponse(len(self.messages)))
            if self._recent is not None:
                out.append(RecentResponse(self.recent_count))
        return out

    def _apply_expunges(self) -> list[Response]:
        gone = self._expunged
        self._expunged = set()
        out: list[Response] = []
        if self.session.qresync:
            uids = tuple(u for u in self._uids if u in gone)
            if uids:
                out.append(VanishedResponse(uids))
        else:
            # Highest first: each reported number stays valid for the next (Dovecot's order).
            for idx in range(len(self._uids) - 1, -1, -1):
                if self._uids[idx] in gone:
                    out.append(ExpungeResponse(idx + 1))
        keep = [i for i, u in enumerate(self._uids) if u not in gone]
        self.messages = [self.messages[i] for i in keep]
        self._uids = [self._uids[i] for i in keep]
        if self._recent is not None:
            self._recent -= gone
        return out

    def _resync(
        self, snap: Snapshot, added: list[MessageInfo], flagged: dict[int, MessageInfo]
    ) -> None:
        """After a subscription overflow: diff the view against a fresh snapshot."""
        now = {m.uid: m for m in snap.messages}
        self._expunged.update(u for u in self._uids if u not in now)
        top = self._uids[-1] if self._uids else 0
        for m in snap.messages:
            if m.uid > top:
                added.append(m)
            elif m.uid in now:
                flagged[m.uid] = m
        self.highest_modseq = max(self.highest_modseq, snap.highest_modseq)

    def expunge_code(self) -> Code:
        return Code.EXPUNGEISSUED

    def close(self) -> None:
        self.sub.close()


def _merged(bounds: object) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(bounds):  # type: ignore[call-overload]
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out
