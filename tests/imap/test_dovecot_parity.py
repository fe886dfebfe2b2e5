"""FETCH, SEARCH, SORT and THREAD answers of a running mailhub compared with Debian's Dovecot
for the same messages (same APPENDs, same commands, byte for byte where the RFCs leave no
choice). Deliberate differences are listed with their reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from dovecot_compare import (
    append_line,
    available,
    dovecot_preauth,
    literalize,
    mailhub,
    split_lines,
)
from imap_raw import RawImap
from test_searching import EXPECTED, MESSAGES

MIME = Path(__file__).resolve().parent.parent / "mime"
CORPUS = sorted((MIME / "corpus").glob("*.eml"))

try:
    from mime.test_dovecot_fixtures import DEVIATIONS
except ImportError:  # pragma: no cover
    DEVIATIONS = {}

pytestmark = pytest.mark.skipif(not available(), reason="needs Debian's dovecot-imapd as root")

FETCH_ITEMS = [
    "UID",
    "RFC822.SIZE",
    "INTERNALDATE",
    "ENVELOPE",
    "BODY",
    "BODYSTRUCTURE",
    "BODY.PEEK[]",
    "BODY.PEEK[HEADER]",
    "BODY.PEEK[TEXT]",
    "BODY.PEEK[1]",
    "BODY.PEEK[1.MIME]",
    "BODY.PEEK[2]",
    "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]",
    "BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM)]",
    "BODY.PEEK[]<10.20>",
    "BINARY.SIZE[1]",
    "BINARY.PEEK[1]",
    "RFC822.HEADER",
]
_FETCH = re.compile(rb"^\* (\d+) FETCH \(([^ \[]+(?:\[[^\] ]*)?)")


def fetch_lines(lines: list[bytes]) -> dict[tuple[bytes, int], bytes]:
    """FETCH lines keyed by (first item's name, sequence number). Dovecot runs pipelined
    commands in parallel, so its answers are matched by content, not by position."""
    out: dict[tuple[bytes, int], bytes] = {}
    for ln in lines:
        m = _FETCH.match(ln)
        if m:
            out[(m.group(2), int(m.group(1)))] = ln
    return out


def _item_of(name: bytes) -> str:
    text = name.decode()
    for item in FETCH_ITEMS:
        resp = item.replace(".PEEK", "").replace("<10.20>", "<10>")
        if resp.startswith(text):
            return item
    return text


def test_fetch_matches_dovecot(raw: Callable[..., RawImap], tmp_path: Path) -> None:
    setup = [
        append_line(f"p{i}", p.read_bytes(), date="05-Feb-2024 10:11:12 +0000")
        for i, p in enumerate(CORPUS)
    ]
    commands = [
        (f"f{i}", f"f{i} FETCH 1:* ({item})".encode()) for i, item in enumerate(FETCH_ITEMS)
    ]
    commands.append(("fa", b"fa FETCH 1:* ALL"))
    output = dovecot_preauth.run(
        tmp_path / "dovecot", [*setup, b"s SELECT INBOX"] + [c for _, c in commands]
    )
    theirs = fetch_lines(split_lines(output))
    client = raw()
    ours_by_tag = mailhub(client, [*setup, b"s SELECT INBOX"], commands)
    ours = fetch_lines([ln for lines in ours_by_tag.values() for ln in lines])
    stems = [p.stem for p in CORPUS]
    diffs = []
    assert len(theirs) > 500
    for key, want in theirs.items():
        name, seq = key
        item = "ALL" if name == b"FLAGS" else _item_of(name)
        stem = stems[seq - 1]
        alias = item.replace("RFC822.HEADER", "BODY.PEEK[HEADER]")
        if (stem, item) in DEVIATIONS or (stem, alias) in DEVIATIONS:
            continue
        if item == "ALL" and (stem, "BODY") in DEVIATIONS:
            continue
        got = ours.get(key)
        if got != want:
            diffs.append((stem, item, (got or b"<missing>")[:300], want[:300]))
    assert not diffs, "\n".join(f"{s} {i}\n ours: {x!r}\n dove: {y!r}" for s, i, x, y in diffs)


# Keys whose answer depends on the session (\Recent, $) or that Dovecot parses differently.
SESSION_KEYS = {"RECENT", "NEW", "OLD", "$", "UID $"}


def _setup_search() -> list[bytes]:
    setup = [append_line("x0", b"Subject: expunged\r\n\r\nx\r\n")]
    setup += [
        append_line(f"p{i}", data, " ".join(flags), date.strftime("%d-%b-%Y %H:%M:%S +0000"))
        for i, (data, flags, date) in enumerate(MESSAGES)
    ]
    # No EXPUNGE here: Dovecot runs pipelined commands in parallel, so a later SEARCH
    # could overtake it.
    return [*setup, b"s SELECT INBOX"]


_ESEARCH = re.compile(rb'^\* ESEARCH \(TAG "([^"]+)"\)')


def esearch_by_tag(lines: list[bytes]) -> dict[str, bytes]:
    out = {}
    for ln in lines:
        m = _ESEARCH.match(ln)
        if m:
            out[m.group(1).decode()] = ln
    return out


_NO_DATE = (
    "a message without a Date header is compared by its internal date (RFC 5256's rule for "
    "SORT DATE, applied to SENT* too so SORT and SEARCH agree); Dovecot takes it as 1970"
)
SEARCH_DEVIATIONS = {
    'BODY "GRÜSSE"': "full Unicode case folding (ß matches ss); Dovecot's i;unicode-casemap "
    "uses simple mappings only",
    "SENTBEFORE 8-Feb-1994": _NO_DATE,
    "SENTSINCE 10-Feb-1994": _NO_DATE,
    "SENTON 12-Jan-2024": _NO_DATE,
}


def test_search_matches_dovecot(raw: Callable[..., RawImap], tmp_path: Path) -> None:
    """Every SEARCH key on the same seven messages (ESEARCH, so that Dovecot's parallel
    execution of pipelined commands can be matched by tag)."""
    setup = _setup_search()
    keys = [k for k in EXPECTED if k not in SESSION_KEYS]
    commands = [
        (f"q{i}", literalize(f"q{i} SEARCH RETURN (ALL COUNT) CHARSET UTF-8 {k}"))
        for i, k in enumerate(keys)
    ]
    output = dovecot_preauth.run(tmp_path / "dovecot", setup + [c for _, c in commands])
    theirs = esearch_by_tag(split_lines(output))
    client = raw()
    ours_by_tag = mailhub(client, setup, commands)
    ours = esearch_by_tag([ln for lines in ours_by_tag.values() for ln in lines])
    diffs = {}
    for (tag, _), key in zip(commands, keys, strict=True):
        same = theirs.get(tag) == ours.get(tag)
        if key in SEARCH_DEVIATIONS:
            assert not same, f"deviation no longer needed: {SEARCH_DEVIATIONS[key]}"
        elif not same:
            diffs[key] = (ours.get(tag), theirs.get(tag))
    assert not diffs, "\n".join(f"{k}: ours {a!r} dovecot {b!r}" for k, (a, b) in diffs.items())


SORT_KEYS = [
    "ARRIVAL",
    "DATE",
    "SIZE",
    "FROM",
    "TO",
    "CC",
    "SUBJECT",
    "DISPLAYFROM",
    "DISPLAYTO",
    "REVERSE DATE",
    "REVERSE SUBJECT ARRIVAL",
    "FROM REVERSE SIZE",
]


def test_sort_matches_dovecot(raw: Callable[..., RawImap], tmp_path: Path) -> None:
    setup = _setup_search()
    commands = [
        (f"o{i}", f"o{i} SORT RETURN (ALL) ({k}) UTF-8 ALL".encode())
        for i, k in enumerate(SORT_KEYS)
    ]
    output = dovecot_preauth.run(tmp_path / "dovecot", setup + [c for _, c in commands])
    theirs = esearch_by_tag(split_lines(output))
    client = raw()
    ours_by_tag = mailhub(client, setup, commands)
    ours = esearch_by_tag([ln for lines in ours_by_tag.values() for ln in lines])
    diffs = {
        k: (ours.get(t), theirs.get(t))
        for (t, _), k in zip(commands, SORT_KEYS, strict=True)
        if ours.get(t) != theirs.get(t)
    }
    assert not diffs, diffs


def _thread_setup() -> list[bytes]:
    def m(subject: str, mid: str, n: int, refs: str = "") -> bytes:
        extra = f"References: {refs}\r\n" if refs else ""
        return (
            f"From: a@example.org\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n"
            f"Date: Thu, {n} Feb 2024 10:00:00 +0000\r\n{extra}\r\nbody\r\n"
        ).encode()

    msgs = [
        m("Topic", "a@x", 2),
        m("Re: Topic", "b@x", 3, "<a@x>"),
        m("Re: Topic", "c@x", 4, "<a@x> <b@x>"),
        m("Re: Topic", "d@x", 5, "<a@x>"),
        m("Other", "e@x", 1),
        m("Re: Lost", "f@x", 6, "<missing@x>"),
        m("Re: Lost", "g@x", 7, "<missing@x>"),
        m("Re: Other", "h@x", 8),
        m("Fwd: [list] Topic (fwd)", "i@x", 9),
        m("loop", "j@x", 10, "<k@x>"),
        m("loop", "k@x", 11, "<j@x>"),
        m("dup", "a@x", 12, "<e@x>"),
    ]
    return [*(append_line(f"p{i}", d) for i, d in enumerate(msgs)), b"s SELECT INBOX"]


@pytest.mark.parametrize("algorithm", ["REFERENCES", "ORDEREDSUBJECT"])
def test_thread_matches_dovecot(
    raw: Callable[..., RawImap], tmp_path: Path, algorithm: str
) -> None:
    setup = _thread_setup()
    cmd = [("t", f"t THREAD {algorithm} UTF-8 ALL".encode())]
    output = dovecot_preauth.run(tmp_path / "dovecot", setup + [c for _, c in cmd])
    theirs = [ln for ln in split_lines(output) if ln.startswith(b"* THREAD")]
    client = raw()
    ours = [ln for ln in mailhub(client, setup, cmd)["t"] if ln.startswith(b"* THREAD")]
    assert ours == theirs
