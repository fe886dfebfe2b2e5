"""Benchmark of the Maildir store (issue 2), with Dovecot measured in the same run for scale.

    python bench/store.py [--messages 100000] [--appends 10000] [--no-dovecot] [--only-rebuild]

``--only-rebuild`` measures just the first figure (and Dovecot's fresh SELECT beside it), the
same way as the full run: for iterating on the rebuild without waiting for the appends.

Figures, each the best of a few runs where cheap:
- rebuild: index a freshly dropped N-message Maildir from nothing (Dovecot-style names)
- open warm: a second store handle opens the indexed folder (nothing changed, no rescan)
- open after restart: a new process opens it (interpreter start excluded)
- snapshot of an open folder, and listing all UIDs and flags
- store \\Flagged on all N messages
- append M messages one by one with fsync (messages/s), into an empty and into the N folder
- reading small messages: inline vs a worker thread vs aiofiles (why INLINE_READ_LIMIT)
Dovecot (Debian's ``imap`` binary, PREAUTH over a pipe, same Maildir copy): SELECT of the fresh
Maildir (indexing), SELECT unchanged, ``UID FETCH 1:* (FLAGS)``; process start is subtracted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiofiles

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailhub.store.flags import FlagOp
from mailhub.store.maildir import (
    MaildirMailbox,
    MaildirMailstore,
    _fs,
    account_dir,
)
from mailhub.store.model import NewMessage
from tests.support import dovecot_preauth

ADDRESS = "bench@example.org"
BODY = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" * 20).encode()


def message(i: int) -> bytes:
    return (
        f"From: sender{i % 97}@example.net\nTo: {ADDRESS}\nSubject: message {i}\n"
        f"Message-ID: <{i}@bench>\nDate: Thu, 26 Nov 2026 10:00:00 +0000\n\n"
    ).encode() + BODY


def drop_maildir(root: Path, count: int) -> None:
    """Write ``count`` messages into cur/ the way Dovecot names them (S= and W=, no UID)."""
    _fs.make_maildir(root)
    cur = root / "cur"
    start = int(time.time()) - count
    for i in range(count):
        data = message(i)
        crlf = len(data) + data.count(b"\n")
        name = f"{start + i}.M{i}P1.bench,S={len(data)},W={crlf}:2,{'S' if i % 3 else ''}"
        fd = os.open(cur / name, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, data)
        os.close(fd)


async def timed(coro_fn, repeat: int = 1) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        await coro_fn()
        best = min(best, time.perf_counter() - start)
    return best


async def open_inbox(store: MaildirMailstore) -> MaildirMailbox:
    account = await store.open_account(ADDRESS)
    return await account.open_mailbox("INBOX")


async def bench_rebuild(root: Path, count: int) -> tuple[float, MaildirMailstore, MaildirMailbox]:
    """Index the freshly dropped Maildir: open the account and INBOX, take a snapshot."""
    store = MaildirMailstore(root)
    start = time.perf_counter()
    inbox = await open_inbox(store)
    snap = await inbox.snapshot()
    elapsed = time.perf_counter() - start
    assert len(snap.messages) == count, (len(snap.messages), count)
    return elapsed, store, inbox


async def bench_rebuild_only(root: Path, count: int) -> dict[str, float]:
    elapsed, store, _ = await bench_rebuild(root, count)
    await store.close()
    return {"rebuild_s": elapsed}


async def bench_mailhub(root: Path, count: int, appends: int) -> dict[str, float]:
    out: dict[str, float] = {}
    maildir = account_dir(root, ADDRESS)
    out["rebuild_s"], store, inbox = await bench_rebuild(root, count)

    out["snapshot_open_folder_s"] = await timed(inbox.snapshot, 5)

    async def listing() -> None:
        snap = await inbox.snapshot()
        pairs = [(m.uid, m.flags) for m in snap.messages]
        assert len(pairs) == count

    out["list_uids_flags_s"] = await timed(listing, 5)
    await store.close()
    await asyncio.sleep(2.1)  # let the directory mtimes settle (see folder._MTIME_SETTLE_NS)

    async def warm_open() -> None:
        st = MaildirMailstore(root)
        box = await open_inbox(st)
        assert len((await box.snapshot()).messages) == count
        await st.close()

    await warm_open()  # records settled mtimes
    out["open_warm_s"] = await timed(warm_open, 5)
    out["open_after_restart_s"] = restart_open(root)

    store = MaildirMailstore(root)
    inbox = await open_inbox(store)
    uids = [m.uid for m in (await inbox.snapshot()).messages]
    start = time.perf_counter()
    await inbox.store_flags(uids, FlagOp.ADD, frozenset({"\\Flagged"}))
    out["store_flag_all_s"] = time.perf_counter() - start

    # Into the big folder and into an empty one in alternating chunks, so that the disk's
    # state (the writeback of the 100,000 renames above, other work on the machine) weighs
    # on both alike and a difference can only come from the folder's size.
    os.sync()  # not timed: the flag phase's writeback would otherwise slow the first appends
    empty_root = root.parent / "empty"
    empty_store = MaildirMailstore(empty_root)
    empty = await open_inbox(empty_store)
    spent = {"big": 0.0, "empty": 0.0}
    chunk = max(1, min(500, appends))
    for first in range(0, appends, chunk):
        for name, box in (("big", inbox), ("empty", empty)):
            start = time.perf_counter()
            for i in range(first, min(first + chunk, appends)):
                await box.append([NewMessage(message(i))])
            spent[name] += time.perf_counter() - start
    out["append_into_big_msgs_per_s"] = appends / spent["big"]
    out["append_into_empty_msgs_per_s"] = appends / spent["empty"]
    await store.close()
    store, inbox = empty_store, empty
    batch = [NewMessage(message(i)) for i in range(100)]
    start = time.perf_counter()
    for _ in range(appends // 100):
        await inbox.append(batch)
    out["append_batches_of_100_msgs_per_s"] = appends / (time.perf_counter() - start)
    await store.close()
    shutil.rmtree(empty_root)
    assert maildir.exists()
    return out


def restart_open(root: Path) -> float:
    """Open the folder in a new process; the child times only the open itself."""
    repo = str(Path(__file__).resolve().parents[1])
    code = "\n".join(
        [
            f"import asyncio,sys,time;sys.path.insert(0,{repo!r})",
            "from mailhub.store.maildir import MaildirMailstore",
            "async def m():",
            f"    st=MaildirMailstore({str(root)!r});t=time.perf_counter()",
            f"    a=await st.open_account({ADDRESS!r});b=await a.open_mailbox('INBOX')",
            "    await b.snapshot();print(time.perf_counter()-t);await st.close()",
            "asyncio.run(m())",
        ]
    )
    best = float("inf")
    for _ in range(3):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        best = min(best, float(res.stdout.strip().splitlines()[-1]))
    return best


async def bench_small_reads(root: Path, n: int = 2000) -> dict[str, float]:
    """Why small messages are read on the event loop: a thread hop costs more than the read."""
    d = root.parent / "reads"
    d.mkdir()
    paths = []
    for i in range(n):
        p = d / str(i)
        p.write_bytes(message(i))
        paths.append(p)
    out = {}
    start = time.perf_counter()
    for p in paths:
        _fs.read_file(p)
    out["read_4k_inline_us"] = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for p in paths:
        await asyncio.to_thread(_fs.read_file, p)
    out["read_4k_to_thread_us"] = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for p in paths:
        async with aiofiles.open(p, "rb") as fh:
            await fh.read()
    out["read_4k_aiofiles_us"] = (time.perf_counter() - start) / n * 1e6
    shutil.rmtree(d)
    return out


def bench_dovecot(source: Path, work: Path, only_fresh: bool = False) -> dict[str, float]:
    if not dovecot_preauth.available():
        return {}
    maildir = work / "dovecot-mail"
    shutil.copytree(source, maildir, ignore=shutil.ignore_patterns("mailhub-*", "dovecot*"))

    def session(lines: list[bytes]) -> float:
        start = time.perf_counter()
        dovecot_preauth.run(maildir, lines, timeout=600)
        return time.perf_counter() - start

    # Each figure is a whole Dovecot session minus an empty session (process start, config
    # parsing); best of 7 each, as single runs on a shared machine vary by tens of ms.
    baseline = min(session([]) for _ in range(7))
    out = {"dovecot_select_fresh_s": session([b"s SELECT INBOX"]) - baseline}
    if only_fresh:
        return out
    select = min(session([b"s SELECT INBOX"]) for _ in range(7))
    out["dovecot_select_unchanged_s"] = max(select - baseline, 0.001)
    fetch = min(session([b"s SELECT INBOX", b"f UID FETCH 1:* (FLAGS)"]) for _ in range(7))
    out["dovecot_fetch_flags_s"] = max(fetch - select, 0.001)
    return out


T = TypeVar("T")


def run_like_server(coro: Coroutine[Any, Any, T]) -> T:
    """Run on the event loop ``mailhub serve`` uses (uvloop when installed, unless
    MAILHUB_NO_UVLOOP is set): the store's thread hops cost what they cost in the server."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if os.environ.get("MAILHUB_NO_UVLOOP", "") in ("", "0"):
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            pass
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--appends", type=int, default=10_000)
    parser.add_argument("--no-dovecot", action="store_true")
    parser.add_argument(
        "--only-rebuild", action="store_true", help="measure only the rebuild (and Dovecot's)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailhub-bench-") as tmp:
        root = Path(tmp) / "mail"
        source = Path(tmp) / "source"
        print(f"writing a {args.messages}-message Maildir ...", flush=True)
        drop_maildir(source, args.messages)
        maildir = account_dir(root, ADDRESS)
        maildir.parent.mkdir(parents=True)
        shutil.copytree(source, maildir)
        if args.only_rebuild:
            figures = run_like_server(bench_rebuild_only(root, args.messages))
        else:
            figures = run_like_server(bench_mailhub(root, args.messages, args.appends))
            figures.update(run_like_server(bench_small_reads(root)))
        if not args.no_dovecot:
            figures.update(bench_dovecot(source, Path(tmp), only_fresh=args.only_rebuild))
    for key, value in figures.items():
        print(f"{key:40} {value:12.4f}")
    if "dovecot_select_fresh_s" in figures:
        print()
        print(
            f"{'ratio rebuild / dovecot fresh SELECT':40} "
            f"{figures['rebuild_s'] / figures['dovecot_select_fresh_s']:12.2f}"
        )
    if "dovecot_select_unchanged_s" in figures:
        print(
            f"{'ratio warm open / dovecot SELECT':40} "
            f"{figures['open_warm_s'] / figures['dovecot_select_unchanged_s']:12.2f}"
        )
        print(
            f"{'ratio listing / dovecot FETCH FLAGS':40} "
            f"{figures['list_uids_flags_s'] / figures['dovecot_fetch_flags_s']:12.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
