"""The pipelined group commit (``ingest/batch.py``) over real sockets.

Files are written and fsynced (``Mailbox.prepare``) as soon as a message's DATA is complete,
while earlier messages of the folder are still being committed. These tests check what must
not change because of that: UIDs follow arrival order even when an earlier message's file is
still being written, a message that fails or is abandoned leaves no file and takes no UID,
and a server killed at any moment loses nothing it acknowledged (and its half-done files are
removed on the next start).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import smtplib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest_harness import DOMAIN, IngestServer, message

from mailhub.store.maildir import MaildirMailstore, account_dir

_UID = re.compile(r"Saved uid=(\d+)")
_SUBJECT = re.compile(rb"^Subject: (\S+)", re.M)


def _uid_of(reply: bytes | str) -> int:
    text = reply.decode() if isinstance(reply, bytes) else reply
    match = _UID.search(text)
    assert match is not None, text
    return int(match.group(1))


def _tmp_files(srv: IngestServer, address: str) -> list[str]:
    tmp = account_dir(srv.settings.data_dir / "mail", address) / "tmp"
    return [e.name for e in os.scandir(tmp) if e.is_file()]


def test_a_later_message_never_overtakes_one_still_being_written(server: IngestServer) -> None:
    """A big message's file takes long to write; a small one that arrives meanwhile is ready
    first, but must wait: UIDs are given in arrival order. Other senders keep the folder's
    queue busy, so the big one goes through the pipeline (not the lone-delivery path)."""
    alice = f"alice@{DOMAIN}"
    tmp = account_dir(server.settings.data_dir / "mail", alice) / "tmp"
    big = message("big", body=("y" * 998 + "\r\n") * 12000)  # 12 MB: slow to write
    with server.lmtp() as lmtp:  # creates the account's Maildir
        assert lmtp.sendmail("s@remote.test", [alice], message("first")) == {}
    results: dict[str, int] = {}
    stop = threading.Event()

    def send(name: str, data: bytes) -> None:
        with server.lmtp() as client:
            client.ehlo("sender.test")
            client.mail("s@remote.test")
            client.rcpt(alice)
            code, reply = client.data(data)
            assert code == 250, reply
            results[name] = _uid_of(reply)

    def flood(n: int) -> None:
        with server.lmtp() as client:
            client.ehlo("sender.test")
            while not stop.is_set():
                assert client.sendmail("s@remote.test", [alice], message(f"f{n}")) == {}

    flooders = [threading.Thread(target=flood, args=(n,)) for n in range(4)]
    for t in flooders:
        t.start()
    try:
        for _ in range(3):
            results.clear()
            slow = threading.Thread(target=send, args=("big", big))
            slow.start()
            deadline = time.monotonic() + 30
            while not _big_file_in(tmp):  # the big file is being written
                assert time.monotonic() < deadline, "the big message never reached the store"
                time.sleep(0.001)
            send("small", message("small"))
            slow.join(60)
            assert results["big"] < results["small"], results
    finally:
        stop.set()
        for t in flooders:
            t.join(30)
    assert _tmp_files(server, alice) == []


def _big_file_in(tmp: Path) -> bool:
    for entry in os.scandir(tmp):
        try:
            if entry.is_file() and entry.stat().st_size > 1_000_000:
                return True
        except FileNotFoundError:
            continue
    return False


def test_concurrent_senders_get_distinct_rising_uids(server: IngestServer) -> None:
    alice = f"alice@{DOMAIN}"
    per_sender: dict[int, list[int]] = {}

    def sender(n: int) -> None:
        uids = per_sender.setdefault(n, [])
        with server.lmtp() as client:
            client.ehlo("sender.test")
            for i in range(20):
                client.mail("s@remote.test")
                client.rcpt(alice)
                code, reply = client.data(message(f"s{n}-{i}"))
                assert code == 250, reply
                uids.append(_uid_of(reply))

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    every = [u for uids in per_sender.values() for u in uids]
    assert len(every) == 160 and len(set(every)) == 160
    for uids in per_sender.values():
        assert uids == sorted(uids)
    assert server.uids(alice) == sorted(every)
    assert _tmp_files(server, alice) == []


def test_refused_copies_leave_no_file_and_take_no_uid(server: IngestServer) -> None:
    """carol may hold one message; four arrive at once. One is stored, the others are refused
    (452), their prepared files are removed and no UID is spent on them."""
    carol = f"carol@{DOMAIN}"
    replies: list[tuple[int, bytes]] = []
    clients = [server.lmtp() for _ in range(4)]
    try:
        for client in clients:
            client.ehlo("sender.test")
            client.mail("s@remote.test")
            assert client.rcpt(carol)[0] == 250  # still empty at RCPT time
        barrier = threading.Barrier(len(clients))

        def finish(client: smtplib.LMTP, n: int) -> None:
            barrier.wait()
            replies.append(client.data(message(f"c{n}")))

        threads = [threading.Thread(target=finish, args=(c, n)) for n, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for client in clients:
            client.close()
    codes = sorted(code for code, _ in replies)
    assert codes == [250, 452, 452, 452], replies
    stored = [_uid_of(reply) for code, reply in replies if code == 250]
    assert server.uids(carol) == stored == [1]
    assert _tmp_files(server, carol) == []

    async def uid_next() -> int:
        account = await server.ctx.store.open_account(carol)
        return (await (await account.open_mailbox("INBOX")).snapshot()).uid_next

    assert server.run(uid_next()) == 2


def test_client_gone_mid_data_leaves_no_file(
    server: IngestServer, raw: Callable[[int | str], Any]
) -> None:
    alice = f"alice@{DOMAIN}"
    client = raw(server.lmtp_port)
    assert client.reply()[0].startswith("220")
    client.cmd("LHLO sender.test")
    client.cmd("MAIL FROM:<s@remote.test>")
    client.cmd(f"RCPT TO:<{alice}>")
    assert client.cmd("DATA")[0].startswith("354")
    client.send(b"Subject: cut off\r\n\r\n" + b"z" * 100_000)
    client.close()
    time.sleep(0.3)
    with server.lmtp() as lmtp:  # the server goes on; the next message gets UID 1
        assert lmtp.sendmail("s@remote.test", [alice], message("after")) == {}
    assert server.uids(alice) == [1]  # (the account's Maildir exists from here on)
    assert _tmp_files(server, alice) == []


# -- a killed server ------------------------------------------------------------------------


def _sender(port: int, user: str, tag: str, acked: dict[str, int], stop: threading.Event) -> None:
    n = 0
    try:
        with smtplib.LMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo("sender.test")
            while not stop.is_set():
                subject = f"{tag}-{n}"
                n += 1
                client.mail("s@remote.test")
                client.rcpt(user)
                code, reply = client.data(f"Subject: {subject}\r\n\r\n{'x' * 3000}\r\n".encode())
                if code == 250:
                    acked[subject] = _uid_of(reply)
    except (OSError, smtplib.SMTPException):
        return  # the server was killed


async def _stored(data_dir: Path, user: str) -> tuple[dict[int, str], list[str]]:
    store = MaildirMailstore(data_dir / "mail")
    try:
        inbox = await (await store.open_account(user)).open_mailbox("INBOX")
        found: dict[int, str] = {}
        for info in (await inbox.snapshot()).messages:
            data = await (await inbox.open_message(info.uid)).read()
            match = _SUBJECT.search(data)
            assert match is not None, f"UID {info.uid} is damaged"
            found[info.uid] = match.group(1).decode()
        tmp = account_dir(data_dir / "mail", user) / "tmp"
        return found, [e.name for e in os.scandir(tmp) if e.is_file()]
    finally:
        await store.close()


def test_sigkill_while_ten_senders_deliver_loses_nothing_acknowledged(
    mailhub_factory: Callable[..., Any],
) -> None:
    server = mailhub_factory()
    user, port = server.user, server.ports["lmtp"]
    rng = random.Random(20261127)
    ever: dict[int, str] = {}
    acked_total = 0
    for round_no in range(4):
        acked: dict[str, int] = {}
        stop = threading.Event()
        threads = [
            threading.Thread(target=_sender, args=(port, user, f"r{round_no}s{n}", acked, stop))
            for n in range(10)
        ]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.4, 1.2))
        server.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(30)
        acked_total += len(acked)
        stored, leftovers = asyncio.run(_stored(server.data_dir, user))
        assert leftovers == [], "a killed writer's tmp/ files were not removed on reopen"
        for subject, uid in acked.items():
            assert stored.get(uid) == subject, f"acknowledged {subject} (UID {uid}) was lost"
        for uid, subject in stored.items():
            assert ever.setdefault(uid, subject) == subject, f"UID {uid} was reused"
        assert set(ever) == set(stored), "a stored message vanished"
        server.start()
    assert acked_total > 40, "the kills came too early to test anything"
