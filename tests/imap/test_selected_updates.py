"""Unsolicited FETCH FLAGS (another session's STORE) are written as ready bytes; they must
be exactly what the response objects would write."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

from mailhub.imap.proto.values import Builder
from mailhub.imap.selected import SelectedView
from mailhub.store.bus import ChangeBus
from mailhub.store.model import MessageInfo, Snapshot


class _Mailbox:
    """Stands in for the store folder (the view only keys a weak map by it here)."""


def _view(qresync: bool, condstore: bool, first_recent: int | None) -> SelectedView:
    session: Any = SimpleNamespace(qresync=qresync, condstore=condstore, searchres=())
    flagsets = [frozenset(), frozenset({"\\Seen"}), frozenset({"\\Flagged", "Work", "$x"})]
    msgs = tuple(MessageInfo(u, flagsets[u % 3], 10 * u, 0.0, u + 1) for u in range(1, 7))
    snap = Snapshot("INBOX", 1, 7, 8, msgs)
    sub = ChangeBus().subscribe("a@b", "INBOX")
    mailbox: Any = _Mailbox()
    return SelectedView(session, mailbox, snap, sub, readonly=False, first_recent=first_recent)


def test_flags_update_bytes_match_the_response_object() -> None:
    """Also a UID STORE's own answer (``with_uid``), which is sent the same way."""
    for qresync, condstore, first_recent, with_uid in itertools.product(
        (False, True), (False, True), (None, 4), (False, True)
    ):
        view = _view(qresync, condstore, first_recent)
        for seq in range(1, view.exists + 1):
            old = Builder(False)
            view.flags_response(seq, with_uid=with_uid).write(old)
            new = Builder(False)
            view.flags_update(seq, with_uid=with_uid).write(new)
            case = (qresync, condstore, first_recent, with_uid, seq)
            assert bytes(new.buf) == bytes(old.buf), case
