"""Crash safety (issue 2 acceptance): SIGKILL a delivering process at random moments.

Every delivery the process reported as done must be present afterwards with the UID it was
given, no UID may ever name two different messages, and the store must reopen without repair.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from mailhub.store.maildir import MaildirMailstore

ROUNDS = 110
ADDRESS = "crash@example.org"
SCRIPT = Path(__file__).with_name("deliver_loop.py")


def _run_and_kill(root: Path, prefix: str, rng: random.Random) -> dict[int, str]:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(root), ADDRESS, prefix],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(rng.uniform(0.0, 0.05))
    os.kill(proc.pid, signal.SIGKILL)
    out = proc.stdout.read()
    proc.wait()
    acknowledged: dict[int, str] = {}
    for line in out.splitlines():
        uid, _, subject = line.partition(" ")
        if uid.isdigit() and subject:  # a half-written last line is not an acknowledgement
            acknowledged[int(uid)] = subject
    return acknowledged


async def _stored(root: Path) -> tuple[int, dict[int, str]]:
    store = MaildirMailstore(root)
    try:
        account = await store.open_account(ADDRESS)
        inbox = await account.open_mailbox("INBOX")
        snap = await inbox.snapshot()
        found = {}
        for info in snap.messages:
            data = await (await inbox.open_message(info.uid)).read()
            match = re.search(rb"^Subject: (\S+)", data, re.M)
            assert match is not None, f"message UID {info.uid} is damaged"
            found[info.uid] = match.group(1).decode()
        return snap.uidvalidity, found
    finally:
        await store.close()


def test_sigkill_during_delivery_loses_nothing_acknowledged(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    rng = random.Random(20261126)
    ever: dict[int, str] = {}  # every UID ever seen, and the message it named
    acknowledged_total = 0
    uidvalidity = None
    for round_no in range(ROUNDS):
        acknowledged = _run_and_kill(root, f"r{round_no}", rng)
        acknowledged_total += len(acknowledged)
        validity, stored = asyncio.run(_stored(root))
        if uidvalidity is None:
            uidvalidity = validity
        assert validity == uidvalidity, "UIDVALIDITY changed: clients would resync everything"
        for uid, subject in acknowledged.items():
            assert stored.get(uid) == subject, f"acknowledged {subject} (UID {uid}) was lost"
        for uid, subject in stored.items():
            assert ever.setdefault(uid, subject) == subject, f"UID {uid} was reused"
        for uid, subject in ever.items():
            assert stored.get(uid) == subject, f"{subject} (UID {uid}) vanished"
    assert acknowledged_total > ROUNDS, "the kills came too early to test anything"
