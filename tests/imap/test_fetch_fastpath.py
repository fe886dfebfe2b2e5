"""The index-only FETCH fast path writes exactly what the general path writes."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mailhub.imap.fetching import Fetcher, FetchOptions
from mailhub.imap.proto.parser import CommandParser
from mailhub.imap.proto.responses import Builder
from mailhub.store.maildir import MaildirMailstore
from mailhub.store.model import NewMessage

ITEMS = ["UID", "FLAGS", "RFC822.SIZE", "MODSEQ"]
COMBOS = [c for n in range(1, 5) for c in itertools.combinations(ITEMS, n)]


def _atts(items: tuple[str, ...], uid: bool) -> object:
    parser = CommandParser()
    parser.feed(f"a {'UID ' if uid else ''}FETCH 1:* ({' '.join(items)})\r\n".encode())
    return parser.next_event()


@pytest.mark.parametrize("items", COMBOS, ids=["+".join(c) for c in COMBOS])
async def test_fast_path_matches_general_path(tmp_path: Path, items: tuple[str, ...]) -> None:
    store = MaildirMailstore(tmp_path)
    try:
        account = await store.open_account("fast@example.org")
        inbox = await account.open_mailbox("INBOX")
        flagsets = [set(), {"\\Seen"}, {"\\Flagged", "Work"}, {"$Label1", "\\Answered", "\\Seen"}]
        await inbox.append(
            [NewMessage(f"Subject: {i}\n\n{'x' * i}\n".encode(), frozenset(f))
             for i, f in enumerate(flagsets * 3)]
        )  # fmt: skip
        snap = await inbox.snapshot()
        targets = list(enumerate(snap.messages, 1))
        for uid_cmd, condstore, since, recent in itertools.product(
            (False, True), (False, True), (None, 3), (None, 5)
        ):
            cmd = _atts(items, uid_cmd)
            opts = FetchOptions(
                uid_command=uid_cmd,
                condstore=condstore,
                changedsince=since,
                is_recent=None if recent is None else (lambda u, r=recent: u >= r),
            )
            fast = Fetcher(inbox, cmd.atts, opts)  # type: ignore[attr-defined]
            assert fast.index_only
            quick = b"".join(fast.encode_index_only(targets))
            general = Builder(False)
            async for resp in Fetcher(inbox, cmd.atts, opts).responses(targets):  # type: ignore[attr-defined]
                resp.write(general)
            assert quick == bytes(general.buf), (uid_cmd, condstore, since, recent)
    finally:
        await store.close()


def test_items_needing_the_message_take_the_general_path() -> None:
    for items in (("ENVELOPE",), ("UID", "BODY.PEEK[HEADER]"), ("INTERNALDATE",), ("BODY[]",)):
        cmd = _atts(items, True)
        assert not Fetcher(None, cmd.atts, FetchOptions()).index_only  # type: ignore[arg-type,attr-defined]
