"""The index-only FETCH fast path writes exactly what the general path writes."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mailhub.imap.fetching import Fetcher, FetchOptions
from mailhub.imap.line_blocks import BLOCK
from mailhub.imap.proto.parser import CommandParser
from mailhub.imap.proto.responses import Builder
from mailhub.store.flags import FlagOp
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
            whole = b"".join(fast.encode_index_only(targets, list(snap.messages)))
            general = Builder(False)
            async for resp in Fetcher(inbox, cmd.atts, opts).responses(targets):  # type: ignore[attr-defined]
                resp.write(general)
            assert quick == bytes(general.buf), (uid_cmd, condstore, since, recent)
            assert whole == quick, (uid_cmd, condstore, since, recent)
    finally:
        await store.close()


def test_items_needing_the_message_take_the_general_path() -> None:
    for items in (("ENVELOPE",), ("UID", "BODY.PEEK[HEADER]"), ("INTERNALDATE",), ("BODY[]",)):
        cmd = _atts(items, True)
        assert not Fetcher(None, cmd.atts, FetchOptions()).index_only  # type: ignore[arg-type,attr-defined]


_DIRECT_MESSAGES = [
    b"From: A <a@example.org>\nTo: b@example.org, C <c@x.test>\nSubject: hi\n\nbody\n",
    b"\nno header at all\n",
    b"Subject: only a header, no blank line",
    b'From: "Q, uoted" <q@x>\nSender: (comment) s@x\nMIME-Version: 1.0\n'
    b"Content-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\nx\n"
    b"--zz\nContent-Type: text/html\n\n<p>y</p>\n--zz--\n",
    b"Subject: nul\n\nbefore\x00after\r\nmixed endings\n",
    b"Subject: big\nFrom: big@example.org\n\n" + b"0123456789abcdef\n" * 20000,
]
DIRECT_COMBOS = [
    ("ENVELOPE",),
    ("UID", "ENVELOPE", "FLAGS"),
    ("BODYSTRUCTURE",),
    ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
    ("INTERNALDATE", "MODSEQ"),
    ("BODY.PEEK[]",),
    ("UID", "FLAGS", "BODY.PEEK[]", "RFC822.SIZE"),
    ("BODY.PEEK[]", "ENVELOPE"),
]


@pytest.mark.parametrize("items", DIRECT_COMBOS, ids=["+".join(c) for c in DIRECT_COMBOS])
async def test_direct_path_matches_general_path(tmp_path: Path, items: tuple[str, ...]) -> None:
    """Cold (header-only envelope, cache filled behind), warm, and after the other kind of
    entry was cached: always the general path's bytes."""
    store = MaildirMailstore(tmp_path)
    try:
        account = await store.open_account("direct@example.org")
        inbox = await account.open_mailbox("INBOX")
        await inbox.append(
            [NewMessage(m, frozenset({"\\Seen"} if i % 2 else ())) for i, m in enumerate(
                _DIRECT_MESSAGES)]
        )  # fmt: skip
        snap = await inbox.snapshot()
        targets = list(enumerate(snap.messages, 1))
        if "BODY.PEEK[]" in items:  # a message too big for one read is streamed instead
            fetcher = Fetcher(inbox, _atts(items, False).atts)  # type: ignore[attr-defined]
            assert not fetcher.direct_for(targets)
            targets = targets[:-1]
        general_items = ("BODYSTRUCTURE",) if "ENVELOPE" in items else ("ENVELOPE",)
        for round_ in range(3):
            for uid_cmd, condstore in ((False, False), (True, True)):
                cmd = _atts(items, uid_cmd)
                opts = FetchOptions(uid_command=uid_cmd, condstore=condstore)
                fast = Fetcher(inbox, cmd.atts, opts)  # type: ignore[attr-defined]
                assert fast.direct_for(targets) and not fast.index_only
                quick = b"".join([await fast.encode_batch(b) for b in fast.batches(targets)])
                general = Builder(False)
                async for resp in Fetcher(inbox, cmd.atts, opts).responses(targets):  # type: ignore[attr-defined]
                    resp.write(general)
                assert quick == bytes(general.buf), (round_, uid_cmd)
            if round_ == 1:  # the other kind of cache entry replaces this one
                other = _atts(general_items, False)
                async for _ in Fetcher(inbox, other.atts).responses(targets):  # type: ignore[attr-defined]
                    pass
    finally:
        await store.close()


def test_body_sections_do_not_look_up_the_structure_cache() -> None:
    """BODY.PEEK[] names BODY with a section: bytes, not the cached BODY structure; only
    the whole message takes the direct path, and only when \\Seen stays as it is."""
    cmd = _atts(("BODY.PEEK[]",), False)
    fetcher = Fetcher(None, cmd.atts, FetchOptions())  # type: ignore[arg-type,attr-defined]
    assert not fetcher.wants_structure and fetcher.direct_for([])
    for items in (("BODY.PEEK[HEADER]",), ("BODY.PEEK[]<0.10>",), ("BODY[]",), ("RFC822",)):
        cmd = _atts(items, False)
        fetcher = Fetcher(None, cmd.atts, FetchOptions())  # type: ignore[arg-type,attr-defined]
        assert not fetcher.direct_for([]), items


async def test_reused_blocks_follow_every_change(tmp_path: Path) -> None:
    """``1:*`` FLAGS lines come from kept blocks; after flag changes in some blocks, an
    expunge (sequence numbers move) and new mail, every answer still equals a fresh
    encoding of the same messages."""
    store = MaildirMailstore(tmp_path)
    try:
        account = await store.open_account("blocks@example.org")
        inbox = await account.open_mailbox("INBOX")
        await inbox.append(
            [NewMessage(f"Subject: {i}\n\nx\n".encode()) for i in range(3 * BLOCK + 5)]
        )

        async def check() -> None:
            messages = list((await inbox.snapshot()).messages)
            targets = list(enumerate(messages, 1))
            recent = {m.uid for m in messages[::3]}
            for uid_cmd, rec in itertools.product((False, True), (None, recent.__contains__)):
                cmd = _atts(("FLAGS",), uid_cmd)
                opts = FetchOptions(uid_command=uid_cmd, is_recent=rec)
                fetcher = Fetcher(inbox, cmd.atts, opts)  # type: ignore[attr-defined]
                fresh = b"".join(fetcher.encode_index_only(targets))
                first = list(fetcher.encode_index_only(targets, messages))
                again = list(fetcher.encode_index_only(targets, messages))
                assert b"".join(first) == b"".join(again) == fresh
                assert all(a is b for a, b in zip(first, again, strict=True))  # kept, not redone

        await check()
        uids = [m.uid for m in (await inbox.snapshot()).messages]
        await inbox.store_flags([uids[3], uids[BLOCK + 7]], FlagOp.ADD, frozenset({"\\Seen"}))
        await check()
        await inbox.store_flags([uids[3]], FlagOp.REPLACE, frozenset({"Work"}))
        await check()
        await inbox.expunge([uids[0]])
        await check()
        await inbox.append([NewMessage(b"Subject: late\n\nx\n")])
        await check()
    finally:
        await store.close()
