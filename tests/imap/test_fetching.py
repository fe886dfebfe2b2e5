"""The FETCH engine over a real Maildir store: every attribute, \\Seen semantics, streaming,
CHANGEDSINCE/VANISHED, and byte-for-byte agreement with Dovecot's answers for the MIME
corpus (tests/mime/fixtures, recorded from Debian's Dovecot)."""

from __future__ import annotations

import datetime as dt
import json
import re
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from engine_support import add, command, mailbox_fixture, msg, wire  # noqa: F401 - fixture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhub.imap.fetching import Fetcher, FetchFailed, FetchOptions, vanished_uids
from mailhub.imap.proto.commands import Fetch
from mailhub.imap.proto.responses import FetchResponse
from mailhub.imap.proto.sequence import SequenceSet
from mailhub.imap.proto.values import BodyRef
from mailhub.mime.sections import extract, parse_section
from mailhub.mime.structure import parse
from mailhub.store.flags import SEEN, FlagOp
from mailhub.store.maildir import MaildirMailbox
from mailhub.store.model import MessageInfo

MIME = Path(__file__).resolve().parent.parent / "mime"
FIXTURES = sorted((MIME / "fixtures").glob("*.json"))

try:  # the MIME tests' list of deliberate differences from Dovecot
    from mime.test_dovecot_fixtures import DEVIATIONS
except ImportError:  # pragma: no cover - run from another rootdir
    DEVIATIONS = {}


async def fetch(
    mb: MaildirMailbox, line: str, *, readonly: bool = False, condstore: bool = False
) -> tuple[list[FetchResponse], Fetcher]:
    """Run a FETCH command line over the whole mailbox (sequence set resolved here)."""
    cmd = command(line)
    assert isinstance(cmd, Fetch)
    snap = await mb.snapshot()
    msgs = list(snap.messages)
    if cmd.uid:
        targets = [
            (i + 1, m) for i, m in enumerate(msgs) if cmd.seqset.contains(m.uid, msgs[-1].uid)
        ]
    else:
        targets = [(s, msgs[s - 1]) for s in cmd.seqset.resolve(len(msgs))]
    f = Fetcher(
        mb,
        cmd.atts,
        FetchOptions(
            uid_command=cmd.uid,
            readonly=readonly,
            condstore=condstore,
            changedsince=cmd.changedsince,
        ),
    )
    return [r async for r in f.responses(targets)], f


async def inside(resp: FetchResponse) -> bytes:
    """The text between ``* n FETCH (`` and the final ``)``."""
    data = await wire(resp)
    head = b"* %d FETCH (" % resp.seq
    assert data.startswith(head) and data.endswith(b")\r\n"), data[:200]
    return data[len(head) : -3]


def items(resp: FetchResponse) -> dict[str, Any]:
    return dict(resp.items)


# ------------------------------------------------------------------------------- Dovecot


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
async def test_every_section_item_matches_dovecot(mailbox: MaildirMailbox, fixture: Path) -> None:
    """Each corpus message is appended to the store and every recorded item FETCHed through
    the engine; the answer must equal Dovecot's byte for byte (deliberate deviations are
    the MIME tests' list)."""
    doc = json.loads(fixture.read_text())
    data = (MIME / "corpus" / doc["message"]).read_bytes()
    await add(mailbox, data)
    mismatches = []
    for item, expected in doc["items"].items():
        want = expected["response"].encode("utf-8", "surrogateescape")
        # Dovecot accepts "<origin>" without a count; RFC 9051 needs one: "to the end"
        request = re.sub(r"<(\d+)>$", r"<\1.4294967295>", item)
        try:
            resps, _ = await fetch(mailbox, f"a FETCH 1 ({request})")
            status, ours = "OK", await inside(resps[0])
        except FetchFailed as exc:
            status = f"{exc.status} [{exc.code.name}]" if exc.code else exc.status
            ours = b""
        same = status == expected["status"] and (status != "OK" or ours == want)
        if (fixture.stem, item) in DEVIATIONS:
            continue
        if not same:
            mismatches.append((item, status, ours[:300], expected["status"], want[:300]))
    assert not mismatches, mismatches


# ------------------------------------------------------------------------- simple items


async def test_simple_items(mailbox: MaildirMailbox) -> None:
    when = dt.datetime(2024, 3, 5, 7, 8, 9, tzinfo=dt.UTC)
    data = msg("items")
    [info] = await add(mailbox, data, flags=["\\Flagged", "$Label"], when=when)
    [r], _ = await fetch(mailbox, "a FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ)")
    got = await inside(r)
    assert got == (
        b'UID 1 FLAGS (\\Flagged $Label) INTERNALDATE "05-Mar-2024 07:08:09 +0000" '
        b"RFC822.SIZE %d MODSEQ (%d)" % (len(data), info.modseq)
    )


async def test_macros_expand_in_order(mailbox: MaildirMailbox) -> None:
    await add(mailbox, msg("macro"))
    [r], _ = await fetch(mailbox, "a FETCH 1 FULL")
    assert [n for n, _ in r.items] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]
    [r], _ = await fetch(mailbox, "a FETCH 1 FAST")
    assert [n for n, _ in r.items] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    [r], _ = await fetch(mailbox, "a FETCH 1 ALL")
    assert [n for n, _ in r.items][-1] == "ENVELOPE"
    assert (await inside(r)).endswith(
        b'ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "macro" (("Bob" NIL "bob" "example.org"))'
        b' (("Bob" NIL "bob" "example.org")) (("Bob" NIL "bob" "example.org"))'
        b' ((NIL NIL "alice" "example.org")) NIL NIL NIL NIL)'
    )


async def test_uid_fetch_always_has_uid_first(mailbox: MaildirMailbox) -> None:
    await add(mailbox, msg("a"), msg("b"))
    resps, _ = await fetch(mailbox, "a UID FETCH 1:* (FLAGS)")
    assert [r.items[0] for r in resps] == [("UID", 1), ("UID", 2)]
    resps, _ = await fetch(mailbox, "a UID FETCH 2 (UID FLAGS)")
    assert [n for n, _ in resps[0].items] == ["UID", "FLAGS"]


async def test_rfc822_forms(mailbox: MaildirMailbox) -> None:
    data = msg("rfc822", "line one\r\nline two\r\n")
    await add(mailbox, data)
    head, _, text = data.partition(b"\r\n\r\n")
    [r], _ = await fetch(mailbox, "a FETCH 1 (RFC822.HEADER)")
    assert await inside(r) == b"RFC822.HEADER {%d}\r\n%s" % (len(head) + 4, head + b"\r\n\r\n")
    [r], _ = await fetch(mailbox, "a FETCH 1 (RFC822.TEXT)")
    assert (await inside(r)).startswith(b"RFC822.TEXT {%d}\r\n%s" % (len(text), text))
    [r], _ = await fetch(mailbox, "a FETCH 1 (RFC822)")
    assert (await inside(r)).startswith(b"RFC822 {%d}\r\n%s" % (len(data), data))


async def test_header_fields_echo_upper_case(mailbox: MaildirMailbox) -> None:
    await add(mailbox, msg("fields"))
    [r], _ = await fetch(mailbox, "a FETCH 1 (BODY.PEEK[HEADER.FIELDS (subject To)])")
    want = b"To: alice@example.org\r\nSubject: fields\r\n\r\n"
    assert await inside(r) == b"BODY[HEADER.FIELDS (SUBJECT TO)] {%d}\r\n%s" % (len(want), want)
    [r], _ = await fetch(mailbox, "a FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (subject to from date)])")
    assert await inside(r) == b"BODY[HEADER.FIELDS.NOT (SUBJECT TO FROM DATE)] {2}\r\n\r\n"


# ---------------------------------------------------------------------------- \Seen


SEEN_CASES = [
    ("BODY[]", True),
    ("BODY.PEEK[]", False),
    ("BODY[TEXT]", True),
    ("BODY.PEEK[HEADER]", False),
    ("BINARY[1]", True),
    ("BINARY.PEEK[1]", False),
    ("BINARY.SIZE[1]", False),
    ("RFC822", True),
    ("RFC822.TEXT", True),
    ("RFC822.HEADER", False),
    ("ENVELOPE", False),
    ("BODYSTRUCTURE", False),
]


@pytest.mark.parametrize(("item", "sets_seen"), SEEN_CASES)
async def test_implicit_seen(mailbox: MaildirMailbox, item: str, sets_seen: bool) -> None:
    await add(mailbox, msg("seen"))
    [r], f = await fetch(mailbox, f"a FETCH 1 ({item})")
    flags = (await mailbox.snapshot()).messages[0].flags
    assert (SEEN in flags) is sets_seen
    names = [n for n, _ in r.items]
    assert ("FLAGS" in names) is sets_seen  # RFC 9051 §6.4.5: the change is reported
    if sets_seen:
        assert b"FLAGS (\\Seen)" in await inside(r)
        assert set(f.updated) == {1}
    # a second FETCH changes nothing and reports no implicit FLAGS
    [r2], f2 = await fetch(mailbox, f"a FETCH 1 ({item})")
    assert "FLAGS" not in [n for n, _ in r2.items] and not f2.updated


async def test_readonly_never_sets_seen(mailbox: MaildirMailbox) -> None:
    await add(mailbox, msg("ro"))
    [r], f = await fetch(mailbox, "a FETCH 1 (BODY[] RFC822.TEXT)", readonly=True)
    assert SEEN not in (await mailbox.snapshot()).messages[0].flags
    assert "FLAGS" not in [n for n, _ in r.items] and not f.updated


async def test_seen_with_condstore_reports_modseq(mailbox: MaildirMailbox) -> None:
    await add(mailbox, msg("cs"))
    [r], _ = await fetch(mailbox, "a FETCH 1 (BODY[])", condstore=True)
    info = (await mailbox.snapshot()).messages[0]
    assert r.items[-2:] == (("FLAGS", r.items[-2][1]), ("MODSEQ", info.modseq))
    assert b"FLAGS (\\Seen) MODSEQ (%d)" % info.modseq in await inside(r)


async def test_requested_flags_show_new_seen(mailbox: MaildirMailbox) -> None:
    await add(mailbox, msg("x"))
    [r], _ = await fetch(mailbox, "a FETCH 1 (FLAGS BODY[TEXT])")
    names = [n for n, _ in r.items]
    assert names.count("FLAGS") == 1
    assert (await inside(r)).startswith(b"FLAGS (\\Seen) BODY[TEXT]")


# --------------------------------------------------------------------- CONDSTORE/QRESYNC


async def test_changedsince_filters_and_implies_modseq(mailbox: MaildirMailbox) -> None:
    infos = await add(mailbox, msg("1"), msg("2"), msg("3"))
    base = max(i.modseq for i in infos)
    changed, _ = await mailbox.store_flags([2], FlagOp.ADD, frozenset({"\\Flagged"}))
    resps, _ = await fetch(mailbox, f"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE {base})")
    assert [(r.seq, items(r)["UID"], items(r)["MODSEQ"]) for r in resps] == [
        (2, 2, changed[0].modseq)
    ]
    resps, _ = await fetch(mailbox, "a FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")  # iOS sends 0
    assert [r.seq for r in resps] == [1, 2, 3]


async def test_vanished_uids_from_the_store(mailbox: MaildirMailbox) -> None:
    infos = await add(mailbox, *(msg(str(i)) for i in range(6)))
    base = max(i.modseq for i in infos)
    await mailbox.expunge([2, 4, 6])
    changes = await mailbox.changes_since(base)
    snap = await mailbox.snapshot()
    assert vanished_uids(changes.vanished, SequenceSet.parse("1:*"), snap.uid_next) == [2, 4, 6]
    assert vanished_uids(changes.vanished, SequenceSet.parse("3:5"), snap.uid_next) == [4]
    assert vanished_uids(changes.vanished, SequenceSet.parse("$"), snap.uid_next, [6]) == [6]


@given(
    st.sets(st.integers(1, 60)),
    st.lists(st.tuples(st.integers(1, 70), st.integers(1, 70)), min_size=1, max_size=4),
    st.integers(1, 80),
)
def test_vanished_uids_is_the_set_intersection(
    expunged: set[int], ranges: list[tuple[int, int]], uid_next: int
) -> None:
    text = ",".join(f"{a}:{b}" if a != b else str(a) for a, b in ranges)
    got = vanished_uids(expunged, SequenceSet.parse(text), uid_next)
    want = sorted(u for u in expunged if any(min(a, b) <= u <= max(a, b) for a, b in ranges))
    assert got == want


# --------------------------------------------------------------------------- errors


async def test_unknown_cte_is_no_unknown_cte(mailbox: MaildirMailbox) -> None:
    data = (
        b"Subject: x\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n"
    )
    await add(mailbox, data)
    with pytest.raises(FetchFailed) as err:
        await fetch(mailbox, "a FETCH 1 (BINARY.PEEK[1])")
    assert err.value.status == "NO" and err.value.code is not None
    assert err.value.code.name == "UNKNOWN-CTE"
    [r], _ = await fetch(mailbox, "a FETCH 1 (BODY.PEEK[1])")  # BODY[] still works
    assert (await inside(r)).endswith(b"begin 644 f\r\n")


async def test_expunged_message_is_skipped(mailbox: MaildirMailbox) -> None:
    await add(mailbox, msg("a"), msg("b"), msg("c"))
    snap = await mailbox.snapshot()  # the session's (now stale) view
    await mailbox.expunge([2])
    f = Fetcher(mailbox, command("a FETCH 1:3 (BODY.PEEK[])").atts)  # type: ignore[attr-defined]
    resps = [r async for r in f.responses(enumerate(snap.messages, 1))]
    assert [r.seq for r in resps] == [1, 3] and f.missing == [2]


# ------------------------------------------------------------------------- streaming


def big_message(size: int) -> bytes:
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
    body = line * (size // len(line))
    return (
        b"From: a@example.org\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=B\r\n"
        b"\r\n--B\r\nContent-Type: text/plain\r\n\r\nsmall part\r\n--B\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + body + b"\r\n--B--\r\n"
    )


async def test_big_body_streams_in_bounded_memory(mailbox: MaildirMailbox) -> None:
    data = big_message(8 * 1024 * 1024)
    await add(mailbox, data)
    del data
    [r], _ = await fetch(mailbox, "a FETCH 1 (BODY.PEEK[])")
    ref = items(r)["BODY[]"]
    assert isinstance(ref, BodyRef) and ref.size > 8 * 1024 * 1024
    tracemalloc.start()
    try:
        n = 0
        async for chunk in ref.chunks():
            n += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == ref.size
    assert peak < 2 * 1024 * 1024, peak


async def test_big_sections_and_partials_stream_exact_bytes(mailbox: MaildirMailbox) -> None:
    data = big_message(1024 * 1024)
    await add(mailbox, data)
    root = parse(data)
    for spec, partial in [("2", None), ("2", (100, 700000)), ("", (5, 10)), ("TEXT", None)]:
        item = f"BODY.PEEK[{spec}]" + (f"<{partial[0]}.{partial[1]}>" if partial else "")
        [r], _ = await fetch(mailbox, f"a FETCH 1 ({item})")
        want = extract(data, root, parse_section(spec.encode()))
        if partial:
            want = want[partial[0] : partial[0] + partial[1]]
        got = await inside(r)
        assert got.endswith(b"{%d}\r\n" % len(want) + want)
    [r], _ = await fetch(mailbox, "a FETCH 1 (BINARY.SIZE[2] BODY.PEEK[1] BINARY.PEEK[1])")
    assert (await inside(r)) == (
        b"BINARY.SIZE[2] %d BODY[1] {10}\r\nsmall part BINARY[1] {10}\r\nsmall part"
        % len(extract(data, root, parse_section(b"2")))
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(origin=st.integers(0, 400), count=st.integers(1, 400))
async def test_partial_is_a_slice(mailbox: MaildirMailbox, origin: int, count: int) -> None:
    snap = await mailbox.snapshot()
    if not snap.messages:
        await add(mailbox, msg("partial", "x" * 150 + "\r\n"))
    data = await (await mailbox.open_message(1)).read()
    [r], _ = await fetch(mailbox, f"a FETCH 1 (BODY.PEEK[]<{origin}.{count}>)")
    want = data[origin : origin + count]
    assert await inside(r) == b"BODY[]<%d> {%d}\r\n%s" % (origin, len(want), want)


async def test_responses_are_produced_one_at_a_time(mailbox: MaildirMailbox) -> None:
    """A FETCH over many messages must not build every response first."""
    await add(mailbox, *(msg(f"m{i}") for i in range(300)))
    opened: list[int] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(mailbox, name)

        async def open_message(self, uid: int) -> Any:
            opened.append(uid)
            return await mailbox.open_message(uid)

    snap = await mailbox.snapshot()
    f = Fetcher(Counting(), command("a FETCH 1:* (BODY.PEEK[HEADER])").atts)  # type: ignore[arg-type,attr-defined]
    gen = f.responses(enumerate(snap.messages, 1))
    first = await gen.__anext__()
    assert first.seq == 1 and len(opened) == 1
    await gen.aclose()


def test_internaldate_format() -> None:
    from mailhub.imap.proto.responses import fetch_internaldate

    assert re.fullmatch(
        r"\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}", fetch_internaldate(0.0)
    )


def _unused(_: MessageInfo) -> None:  # keep the import for type readers
    return None


_CORPUS = sorted((MIME / "corpus").glob("*.eml"))
_parts = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(lambda p: ".".join(map(str, p)))
_texts = st.sampled_from(
    ["", "HEADER", "TEXT", "MIME", "HEADER.FIELDS (FROM)", "HEADER.FIELDS.NOT (TO)"]
)


@st.composite
def _att(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["BODY", "BODY.PEEK", "BINARY.PEEK", "BINARY.SIZE", "SIMPLE"]))
    if kind == "SIMPLE":
        return draw(
            st.sampled_from(
                ["ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822", "RFC822.TEXT", "RFC822.HEADER"]
            )
        )
    part = draw(_parts)
    if kind.startswith("BINARY"):
        spec = part
    else:
        text = draw(_texts)
        if text == "MIME" and not part:
            text = "TEXT"
        spec = ".".join(x for x in (part, text) if x)
    att = f"{kind}[{spec}]"
    if kind != "BINARY.SIZE" and draw(st.booleans()):
        att += f"<{draw(st.integers(0, 300))}.{draw(st.integers(1, 300))}>"
    return att


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(which=st.integers(0, len(_CORPUS) - 1), atts=st.lists(_att(), min_size=1, max_size=5))
async def test_any_attribute_mix_answers_validly(
    mailbox: MaildirMailbox, which: int, atts: list[str]
) -> None:
    """Random attribute lists over the malformed-MIME corpus: a syntactically whole FETCH
    response (literal sizes exact) or FetchFailed(NO [UNKNOWN-CTE]), never another error."""
    snap = await mailbox.snapshot()
    if not snap.messages:
        await add(mailbox, *(p.read_bytes() for p in _CORPUS))
    try:
        [r], _ = await fetch(mailbox, f"a FETCH {which + 1} ({' '.join(atts)})")
    except FetchFailed as exc:
        assert exc.code is not None and exc.code.name == "UNKNOWN-CTE"
        return
    data = await inside(r)
    pos = 0
    while (m := re.compile(rb"~?\{(\d+)\}\r\n").search(data, pos)) is not None:
        pos = m.end() + int(m.group(1))
        assert pos <= len(data)
