"""``mailhub import``: a 10,000-message mbox, a plain Maildir, and a real Dovecot Maildir.

Everything goes through the real CLI into a real data directory, then is read back through the
store (and, for the Dovecot case, compared with what Dovecot itself reported).
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mailhub_proc import run_cli

from mailhub.ops.mbox import from_line_date, read_mbox
from mailhub.store.maildir import MaildirMailstore
from mailhub.store.model import INBOX
from tests.support import dovecot_preauth as dovecot

ADDRESS = "importer@example.org"
PASSWORD = "import-Secret-1"

# Message i gets the flags of pattern i % 5 (mbox Status / X-Status headers).
PATTERNS: list[tuple[str, str, frozenset[str]]] = [
    ("", "", frozenset()),
    ("RO", "", frozenset({"\\Seen"})),
    ("O", "A", frozenset({"\\Answered"})),
    ("RO", "F", frozenset({"\\Seen", "\\Flagged"})),
    ("R", "DA", frozenset({"\\Seen", "\\Deleted", "\\Answered"})),
]
BASE_DATE = 1_600_000_000  # 2020-09-13


def _account(data: Path) -> None:
    result = run_cli(
        "user", "add", ADDRESS, "--password-stdin", data_dir=data, input=PASSWORD + "\n"
    )
    assert result.returncode == 0, result.stderr


def _import(data: Path, source: Path, *extra: str) -> str:
    result = run_cli("import", ADDRESS, str(source), *extra, data_dir=data, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def _snapshot(
    data: Path, folder: str = INBOX
) -> tuple[int, dict[int, frozenset[str]], dict[int, float], list[bytes]]:
    store = MaildirMailstore(data / "mail")
    try:
        account = await store.open_account(ADDRESS)
        box = await account.open_mailbox(folder)
        snap = await box.snapshot()
        bodies = [await (await box.open_message(m.uid)).read() for m in snap.messages[:50]]
        return (
            snap.uidvalidity,
            {m.uid: m.flags for m in snap.messages},
            {m.uid: m.internal_date for m in snap.messages},
            bodies,
        )
    finally:
        await store.close()


def _write_mbox(path: Path, count: int) -> None:
    with open(path, "wb") as f:
        for i in range(count):
            status, x_status, _ = PATTERNS[i % 5]
            stamp = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(BASE_DATE + i))
            f.write(f"From sender{i}@example.net {stamp}\n".encode())
            f.write(f"From: sender{i}@example.net\nTo: {ADDRESS}\nSubject: message {i}\n".encode())
            if status:
                f.write(f"Status: {status}\n".encode())
            if x_status:
                f.write(f"X-Status: {x_status}\n".encode())
            # A body line that must be quoted in an mbox, and unquoted on import.
            f.write(f"\nbody of {i}\n>From the archive\n\n".encode())


@pytest.mark.slow
async def test_import_10000_message_mbox(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _account(data)
    mbox = tmp_path / "big.mbox"
    _write_mbox(mbox, 10_000)
    started = time.monotonic()
    out = _import(data, mbox)
    elapsed = time.monotonic() - started
    assert "imported 10000 messages into 1 folder" in out
    _, flags, dates, bodies = await _snapshot(data)
    assert len(flags) == 10_000
    uids = sorted(flags)
    for n, uid in enumerate(uids):
        assert flags[uid] == PATTERNS[n % 5][2], (n, flags[uid])
        assert dates[uid] == BASE_DATE + n
    assert b"Subject: message 0\r\n" in bodies[0]
    assert b"\r\nFrom the archive\r\n" in bodies[0]  # ">From" unquoted
    assert b"Status:" not in bodies[1] and b"X-Status" not in bodies[2]
    assert elapsed < 120, f"import took {elapsed:.1f}s"


async def test_import_plain_maildir_flags_and_dates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _account(data)
    src = tmp_path / "old"
    for sub in ("cur", "new", "tmp", ".Lists/cur", ".Lists/new", ".Lists/tmp"):
        (src / sub).mkdir(parents=True)
    (src / "dovecot-keywords").write_text("0 Work\n1 $Label1\n")  # no uidlist: not Dovecot's
    files = {
        "cur/1000.A.host:2,S": (frozenset({"\\Seen"}), 1_500_000_000),
        "cur/1001.B.host:2,FRSa": (
            frozenset({"\\Flagged", "\\Answered", "\\Seen", "Work"}),
            1_500_000_100,
        ),
        "new/1002.C.host": (frozenset(), 1_500_000_200),
        ".Lists/cur/1003.D.host:2,T": (frozenset({"\\Deleted"}), 1_500_000_300),
    }
    for rel, (_, mtime) in files.items():
        path = src / rel
        path.write_bytes(f"Subject: {path.name}\n\nhi\n".encode())
        os.utime(path, (mtime, mtime))
    out = _import(data, src)
    assert "imported 4 messages into 2 folders" in out
    _, flags, dates, _ = await _snapshot(data)
    assert sorted(flags.values(), key=len) == sorted(
        [v[0] for k, v in files.items() if not k.startswith(".")], key=len
    )
    assert sorted(dates.values()) == [1_500_000_000, 1_500_000_100, 1_500_000_200]
    _, lflags, _, _ = await _snapshot(data, "Lists")
    assert list(lflags.values()) == [frozenset({"\\Deleted"})]


@pytest.mark.skipif(not dovecot.available(), reason="needs Debian's dovecot-imapd and root")
async def test_import_dovecot_maildir_keeps_uids(tmp_path: Path) -> None:
    src = tmp_path / "dovecot"
    bodies = [f"Subject: d{i}\r\n\r\nbody {i}\r\n".encode() for i in range(8)]
    flag_sets = [
        "\\Seen",
        "\\Flagged Work",
        "",
        "\\Answered \\Seen",
        "$Label1",
        "",
        "\\Seen",
        "\\Draft",
    ]
    lines = [
        dovecot.append_line(f"a{i}", "INBOX", f, b)
        for i, (f, b) in enumerate(zip(flag_sets, bodies, strict=True))
    ]
    lines += [
        b"c1 CREATE Archive",
        dovecot.append_line("a9", "Archive", "\\Seen", b"Subject: old\r\n\r\nx\r\n"),
        b"s1 SELECT INBOX",
        b"s2 STORE 1,3,5 +FLAGS (\\Deleted)",  # expunged: UIDs 1 3 5 gone, kept ones have gaps
        b"s3 EXPUNGE",
    ]
    dovecot.run(src, lines)
    out = dovecot.run(src, [b"s1 SELECT INBOX", b"f1 FETCH 1:* (UID FLAGS)"])
    want_validity, want_flags = dovecot.uidvalidity(out), dovecot.uids_and_flags(out)
    assert sorted(want_flags) == [2, 4, 6, 7, 8]

    data = tmp_path / "data"
    _account(data)
    # The account is in use already (default folders exist, INBOX empty): still kept.
    result = run_cli("user", "list", data_dir=data)
    assert ADDRESS in result.stdout
    text = _import(data, src)
    assert "Dovecot UIDs kept in INBOX, Archive" in text, text
    validity, flags, _, got_bodies = await _snapshot(data)
    assert validity == want_validity
    assert flags == want_flags
    assert any(b"Subject: d1\r\n" in b for b in got_bodies)
    _, archive, _, _ = await _snapshot(data, "Archive")
    assert list(archive.values()) == [frozenset({"\\Seen"})]

    # Importing the same Dovecot folder again: the target has mail now, so the messages are
    # appended with new UIDs above the kept ones (never reusing one), flags still kept.
    _import(data, src)
    validity2, flags2, _, _ = await _snapshot(data)
    assert validity2 == want_validity
    assert len(flags2) == 10 and min(u for u in flags2 if u not in want_flags) > 8
    assert sorted(flags2.values(), key=sorted) == sorted(list(want_flags.values()) * 2, key=sorted)


def test_import_refuses_unknown_account_and_missing_source(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _account(data)
    r = run_cli("import", "nobody@example.org", str(tmp_path), data_dir=data)
    assert r.returncode == 67 and "no account" in r.stderr
    r = run_cli("import", ADDRESS, str(tmp_path / "missing.mbox"), data_dir=data)
    assert r.returncode == 66 and "does not exist" in r.stderr
    r = run_cli("import", ADDRESS, str(tmp_path), data_dir=data)  # a directory, no cur/
    assert r.returncode == 65 and "not a Maildir" in r.stderr


# ------------------------------------------------------------------ the mbox parser
_line = st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r\n"), max_size=30).map(
    lambda s: s.encode()
)
_body_line = st.one_of(_line, _line.map(lambda b: b"From " + b), _line.map(lambda b: b">From " + b))


def _quote(line: bytes) -> bytes:
    return b">" + line if re.match(rb"^>*From ", line) else line


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(_body_line, max_size=6), min_size=1, max_size=6),
    st.lists(st.sampled_from(["", "R", "RO"]), min_size=6, max_size=6),
)
def test_mbox_round_trip(bodies: list[list[bytes]], statuses: list[str]) -> None:
    """Whatever the bodies hold, mboxrd quoting + read_mbox gives each message back."""
    out = io.BytesIO()
    expected = []
    for i, body in enumerate(bodies):
        header = f"Subject: m{i}\n".encode()
        if statuses[i]:
            header += f"Status: {statuses[i]}\n".encode()
        out.write(b"From someone Sat Jan  3 01:05:34 1996\n" + header + b"\n")
        for line in body:
            out.write(_quote(line) + b"\n")
        out.write(b"\n")
        expected.append(
            (
                f"Subject: m{i}\n\n".encode() + b"".join(x + b"\n" for x in body),
                frozenset({"\\Seen"}) if "R" in statuses[i] else frozenset(),
            )
        )
    out.seek(0)
    got = [(m.data, m.flags) for m in read_mbox(out)]
    assert got == expected
    assert all(m.internal_date == 820_631_134 for m in read_mbox(io.BytesIO(out.getvalue())))


@given(st.binary(max_size=300))
def test_mbox_reader_never_fails(blob: bytes) -> None:
    for message in read_mbox(io.BytesIO(blob)):
        assert isinstance(message.data, bytes)
        assert message.end_offset <= len(blob)


@given(st.binary(max_size=80))
def test_from_line_date_total(line: bytes) -> None:
    value = from_line_date(b"From x " + line)
    assert value is None or isinstance(value, float)


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """On a TTY, stderr shows a bar reaching 100%; piped (as above) it stays silent."""
    import pty
    import subprocess
    import sys

    from mailhub_proc import clean_env

    data = tmp_path / "data"
    _account(data)
    mbox = tmp_path / "small.mbox"
    _write_mbox(mbox, 1200)
    primary, secondary = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-m", "mailhub", "import", ADDRESS, str(mbox), "--folder", "Old"],
        stderr=secondary,
        stdout=subprocess.PIPE,
        text=True,
        timeout=120,
        env=clean_env({"MAILHUB_DATA_DIR": str(data)}),
    )
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert proc.returncode == 0
    assert "imported 1200 messages into 1 folder" in proc.stdout
    assert re.search(rb"Old +\[#{30}\] 100\.0% 1200 messages", shown), shown[-300:]
