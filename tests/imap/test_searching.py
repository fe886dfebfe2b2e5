"""The SEARCH engine over a real Maildir store: every key against a hand-made table of
expected results, hypothesis-generated programs (NOT/OR/AND/nesting) against set algebra
over that table, the server's time zone for dates, and lazy message reading."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from engine_support import add, command, mailbox_fixture  # noqa: F401 - fixture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhub.imap.proto import search as sk
from mailhub.imap.proto.commands import Search
from mailhub.imap.searching import SearchContext, search, uses_modseq
from mailhub.store.maildir import MaildirMailbox

UTC = dt.UTC


def when(day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, day, hour, minute, tzinfo=UTC)


def _m(headers: str, body: bytes | str) -> bytes:
    b = body.encode("utf-8") if isinstance(body, str) else body
    return headers.replace("\n", "\r\n").encode("utf-8") + b"\r\n" + b


BIG_BODY = ("lorem ipsum dolor sit amet\r\n" * 12000) + "needle at the end\r\n"

# (message, flags, internal date); sequence numbers 1..7, UIDs 2..8 (UID 1 is expunged)
MESSAGES: list[tuple[bytes, tuple[str, ...], dt.datetime]] = [
    (
        _m(
            "From: Bob Smith <bob@example.org>\nTo: alice@example.org\n"
            "Cc: Carol <carol@example.net>\nSubject: Hello World\n"
            "Date: Mon, 7 Feb 1994 21:52:25 -0800\nMessage-ID: <m1@example.org>\n",
            "The quick brown fox\r\n",
        ),
        ("\\Seen",),
        when(10),
    ),
    (
        _m(
            "From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.de>\nTo: alice@example.org\n"
            "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\n"
            "Date: Tue, 8 Feb 1994 10:00:00 +0000\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n",
            base64.encodebytes("Schöne Grüße\r\n".encode()).decode().replace("\n", "\r\n"),
        ),
        ("\\Flagged", "\\Answered"),
        when(11, 0, 30),
    ),
    (
        _m(
            "From: dave@example.com\nTo: Bob <bob@example.org>\nBcc: eve@example.com\n"
            "Subject: Re: Hello World\nDate: Wed, 9 Feb 1994 23:30:00 -0500\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n",
            "caf=C3=A9 au lait=\r\n soft break\r\n",
        ),
        ("\\Deleted", "$Work"),
        when(11, 23, 59),
    ),
    (
        _m(
            "From: alice@example.org\nTo: bob@example.org\nSubject: Report\n"
            "Content-Type: multipart/mixed; boundary=XX\n",
            "--XX\r\nContent-Type: text/plain\r\n\r\nsee attached report\r\n--XX\r\n"
            "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.b64encode(b"PDFDATA fox").decode()
            + "\r\n--XX--\r\n",
        ),
        ("\\Draft",),
        when(12, 8),
    ),
    (
        _m(
            "From: Bob <bob@example.org>\nTo: alice@example.org\nSubject: big one\n"
            "Date: Thu, 10 Feb 1994 09:00:00 +0000\n",
            BIG_BODY,
        ),
        (),
        when(13),
    ),
    (
        _m(
            "From: frank@example.org\nTo: alice@example.org\n"
            "Subject: =?iso-8859-1?q?na=EFve?=\nDate: Fri, 11 Feb 1994 01:00:00 +1400\n"
            "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n",
            "naïve café\r\n".encode("latin-1"),
        ),
        ("\\Seen", "$work"),
        when(14),
    ),
    (
        _m('From: "Grace" <grace@example.org>\nTo: alice@example.org\n', "plain\r\n"),
        ("\\Seen",),
        when(15),
    ),
]
ALL = frozenset(range(1, 8))
RECENT = frozenset({6, 7, 8})  # UIDs (= sequence numbers 5, 6, 7)
SAVED = (3, 8)  # UIDs (= sequence numbers 2, 7)
NOW = when(13, 0).timestamp()


def _not(s: set[int]) -> frozenset[int]:
    return ALL - s


EXPECTED: dict[str, frozenset[int]] = {
    k: frozenset(v)
    for k, v in {
        "ALL": ALL,
        "SEEN": {1, 6, 7},
        "UNSEEN": {2, 3, 4, 5},
        "ANSWERED": {2},
        "UNANSWERED": _not({2}),
        "FLAGGED": {2},
        "UNFLAGGED": _not({2}),
        "DELETED": {3},
        "UNDELETED": _not({3}),
        "DRAFT": {4},
        "UNDRAFT": _not({4}),
        "KEYWORD $Work": {3, 6},
        "KEYWORD $WORK": {3, 6},
        "UNKEYWORD $Work": {1, 2, 4, 5, 7},
        "RECENT": {5, 6, 7},
        "NEW": {5},
        "OLD": {1, 2, 3, 4},
        "FROM bob": {1, 5},
        'FROM "Jürgen"': {2},
        "FROM grace": {7},
        "TO bob": {3, 4},
        "TO alice": {1, 2, 5, 6, 7},
        "CC carol": {1},
        "BCC eve": {3},
        "SUBJECT hello": {1, 3},
        'SUBJECT "grüße"': {2},
        'SUBJECT "KÖLN"': {2},
        'SUBJECT "naïve"': {6},
        'SUBJECT ""': {1, 2, 3, 4, 5, 6},
        "HEADER Message-ID m1@example": {1},
        'HEADER X-Nothing ""': set(),
        'HEADER Content-Transfer-Encoding ""': {2, 3, 6},
        "BODY fox": {1},
        'BODY "GRÜSSE"': set(),  # casefolding is not ß -> ss expansion of the needle...
        'BODY "grüße"': {2},
        'BODY "café"': {3, 6},
        'BODY "lait soft"': {3},
        "BODY needle": {5},
        "BODY alice": set(),
        "TEXT alice": {1, 2, 4, 5, 6, 7},
        "TEXT report": {4},
        "TEXT fox": {1},
        'TEXT ""': ALL,
        "BEFORE 11-Jan-2024": {1},
        "ON 11-Jan-2024": {2, 3},
        "SINCE 12-Jan-2024": {4, 5, 6, 7},
        "SENTBEFORE 8-Feb-1994": {1},
        "SENTON 9-Feb-1994": {3},
        "SENTON 11-Feb-1994": {6},
        "SENTSINCE 10-Feb-1994": {4, 5, 6, 7},
        "SENTON 12-Jan-2024": {4},  # no Date header: the internal date
        "LARGER 100000": {5},
        "SMALLER 100000": _not({5}),
        "UID 3:4": {2, 3},
        "UID 1": set(),
        "UID *": {7},
        "UID 100:*": {7},
        "2,4:5": {2, 4, 5},
        "5:*": {5, 6, 7},
        "*": {7},
        "$": {2, 7},
        "UID $": {2, 7},
        "YOUNGER 172800": {2, 3, 4, 5, 6, 7},
        "OLDER 172800": {1},
    }.items()
}
# 'BODY "GRÜSSE"' casefolds to "grüsse", and "grüße" casefolds to "grüsse" too:
EXPECTED['BODY "GRÜSSE"'] = frozenset({2})


def parse_program(text: str) -> Search:
    cmd = command(f"a SEARCH CHARSET UTF-8 {text}")
    assert isinstance(cmd, Search)
    return cmd


@pytest.fixture
async def box(mailbox: MaildirMailbox) -> AsyncIterator[MaildirMailbox]:
    [gone] = await add(mailbox, b"Subject: expunged\r\n\r\nx\r\n")
    await mailbox.expunge([gone.uid])
    for data, flags, date in MESSAGES:
        await add(mailbox, data, flags=flags, when=date)
    yield mailbox


async def run(mb: MaildirMailbox, text: str, **kw: Any) -> frozenset[int]:
    snap = await mb.snapshot()
    ctx = SearchContext(
        snap.messages,
        saved=kw.pop("saved", SAVED),
        recent=RECENT,
        tz=kw.pop("tz", UTC),
        now=NOW,
    )
    cmd = parse_program(text)
    assert cmd.criteria is not None
    return frozenset(await search(mb, cmd.criteria, ctx))


async def test_every_key(box: MaildirMailbox) -> None:
    snap = await box.snapshot()
    assert [m.uid for m in snap.messages] == list(range(2, 9))
    wrong = {}
    for text, want in EXPECTED.items():
        got = await run(box, text)
        if got != want:
            wrong[text] = (sorted(got), sorted(want))
    assert not wrong


async def test_modseq_key(box: MaildirMailbox) -> None:
    snap = await box.snapshot()
    pivot = snap.messages[3].modseq
    want = frozenset(i + 1 for i, m in enumerate(snap.messages) if m.modseq >= pivot)
    assert await run(box, f"MODSEQ {pivot}") == want
    assert await run(box, f'MODSEQ "/flags/\\\\draft" all {pivot}') == want
    assert uses_modseq(parse_program(f"OR SEEN NOT MODSEQ {pivot}").criteria)  # type: ignore[arg-type]
    assert not uses_modseq(parse_program("OR SEEN NOT DELETED").criteria)  # type: ignore[arg-type]


async def test_dates_use_the_server_time_zone(box: MaildirMailbox) -> None:
    """Message 2 arrived 2024-01-11 00:30 UTC: that is still the 10th in New York."""
    ny = dt.timezone(dt.timedelta(hours=-5))
    assert 2 in await run(box, "ON 10-Jan-2024", tz=ny)
    assert 2 not in await run(box, "ON 10-Jan-2024", tz=UTC)
    assert 2 in await run(box, "BEFORE 11-Jan-2024", tz=ny)


LEAVES = sorted(EXPECTED)


def programs(depth: int = 3) -> st.SearchStrategy[tuple[str, frozenset[int]]]:
    """Random search programs with the result set algebra says they must have."""
    leaf = st.sampled_from(LEAVES).map(lambda k: (k, EXPECTED[k]))

    def extend(
        inner: st.SearchStrategy[tuple[str, frozenset[int]]],
    ) -> st.SearchStrategy[tuple[str, frozenset[int]]]:
        return st.one_of(
            inner.map(lambda a: (f"NOT {a[0]}", ALL - a[1])),
            st.tuples(inner, inner).map(lambda p: (f"OR {p[0][0]} {p[1][0]}", p[0][1] | p[1][1])),
            st.lists(inner, min_size=1, max_size=3).map(
                lambda xs: (
                    "(" + " ".join(x[0] for x in xs) + ")",
                    frozenset.intersection(*(x[1] for x in xs)),
                )
            ),
        )

    return st.recursive(leaf, extend, max_leaves=6)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(prog=programs(), more=st.lists(st.sampled_from(LEAVES), max_size=2))
async def test_programs_follow_set_algebra(
    box: MaildirMailbox, prog: tuple[str, frozenset[int]], more: list[str]
) -> None:
    """NOT is the complement, OR the union, a list (and the top level) the intersection."""
    text = " ".join([prog[0], *more])
    want = frozenset.intersection(prog[1], *(EXPECTED[k] for k in more))
    assert await run(box, text) == want


class CountingMailbox:
    """A real mailbox, counting what is read (not a mock: every call goes to the store)."""

    def __init__(self, mb: MaildirMailbox) -> None:
        self.mb = mb
        self.opened: list[int] = []
        self.full_reads: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.mb, name)

    async def open_message(self, uid: int) -> Any:
        self.opened.append(uid)
        src = await self.mb.open_message(uid)
        outer = self

        class Source:
            size = src.size

            async def read(self) -> bytes:
                outer.full_reads.append(uid)
                return await src.read()

            def chunks(self, chunk_size: int = 65536) -> Any:
                return src.chunks(chunk_size)

            async def read_range(self, offset: int, length: int | None = None) -> bytes:
                return await src.read_range(offset, length)

        return Source()


async def test_message_bytes_read_only_when_needed(box: MaildirMailbox) -> None:
    snap = await box.snapshot()
    ctx = SearchContext(snap.messages, recent=RECENT, tz=UTC, now=NOW)
    counting = CountingMailbox(box)

    async def go(text: str) -> frozenset[int]:
        counting.opened.clear()
        counting.full_reads.clear()
        crit = parse_program(text).criteria
        assert crit is not None
        return frozenset(await search(counting, crit, ctx))  # type: ignore[arg-type]

    assert await go("FLAGGED OR LARGER 5 UID 1:*") == {2}
    assert counting.opened == []  # flags and sizes come from the index
    assert await go("SEEN SUBJECT hello") == {1}
    assert counting.opened == [2, 7, 8]  # only the \Seen ones were opened
    assert await go("SUBJECT big") == {5}
    assert 6 not in counting.full_reads  # the 300 KB message: only its header block
    assert await go("NOT BODY needle") == ALL - {5}
    assert 6 in counting.full_reads


async def test_expunged_meanwhile_never_matches(box: MaildirMailbox) -> None:
    snap = await box.snapshot()
    await box.expunge([3])
    ctx = SearchContext(snap.messages, tz=UTC, now=NOW)
    assert frozenset(await search(box, sk.TextKey("", False), ctx)) == ALL - {2}
    assert frozenset(await search(box, sk.AllKey(), ctx)) == ALL


async def test_every_key_over_the_malformed_corpus(mailbox: MaildirMailbox) -> None:
    """Broken MIME, bad encodings, 8-bit headers: every key evaluates, none raises."""
    from pathlib import Path

    corpus = sorted((Path(__file__).resolve().parent.parent / "mime" / "corpus").glob("*.eml"))
    await add(mailbox, *(p.read_bytes() for p in corpus))
    n = len(corpus)
    for text in EXPECTED:
        got = await run(mailbox, text)
        assert got <= frozenset(range(1, n + 1))
    assert await run(mailbox, "ALL") == frozenset(range(1, n + 1))
    assert await run(mailbox, 'NOT TEXT ""') == frozenset()
