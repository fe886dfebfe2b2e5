"""1,000 messages over LMTP from 10 clients while readers read and expunge the same INBOX.

Every acknowledged message must be accounted for at the end: still in INBOX, or read and
expunged by a reader. Each message is stored exactly once, UIDs are never reused, each
sender's acknowledged UIDs rise strictly, and every snapshot is in strictly ascending UID order.
The readers are a POP3 client (the real POP3 listener), the store API (as IMAP sessions use
it), and IMAP when its listener exists.
"""

from __future__ import annotations

import imaplib
import importlib.util
import poplib
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from ingest_harness import DOMAIN, IngestServer, free_port

ALICE = f"alice@{DOMAIN}"
SENDERS, PER_SENDER = 10, 100
_ID = re.compile(rb"^X-Test-Id: (\S+)\r?$", re.M)
_UID = re.compile(rb"Saved uid=(\d+)")

HAVE_IMAP = importlib.util.find_spec("mailhub.imap.server") is not None


def _test_id(data: bytes) -> str:
    match = _ID.search(data)
    assert match is not None, data[:300]
    return match.group(1).decode()


class Ledger:
    """What everyone observed, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: dict[str, int] = {}  # test id -> UID from the LMTP reply
        self.read: dict[str, int | None] = {}  # test id -> UID (None for POP3)
        # Test ids a reader removed. POP3 (DELE + QUIT) and IMAP (UID EXPUNGE) answer OK also
        # when another reader removed the message first, so an id may be listed twice.
        self.expunged: list[str] = []
        self.errors: list[str] = []
        self.retries = 0  # temporary failures the senders retried (as an MTA would)
        self.reads_by: dict[str, int] = {}  # reader -> messages it read

    def count(self, reader: str) -> None:
        with self.lock:
            self.reads_by[reader] = self.reads_by.get(reader, 0) + 1

    def add_read(self, tid: str, uid: int | None) -> None:
        with self.lock:
            if uid is not None and self.read.get(tid) not in (None, uid):
                self.errors.append(f"{tid} read with two UIDs {self.read[tid]} and {uid}")
            if uid is not None or tid not in self.read:
                self.read[tid] = uid


def _sender(srv: IngestServer, n: int, ledger: Ledger) -> None:
    last_uid = 0
    with srv.lmtp() as client:
        client.ehlo("sender.test")
        for i in range(PER_SENDER):
            tid = f"s{n}-{i}"
            msg = (
                f"From: s{n}@remote.test\r\nTo: {ALICE}\r\nSubject: load {tid}\r\n"
                f"X-Test-Id: {tid}\r\n\r\n" + ("body line\r\n" * 20)
            ).encode()
            for _attempt in range(10):  # like an MTA: a 4xx reply means "keep it, retry"
                assert client.mail(f"s{n}@remote.test")[0] == 250
                assert client.rcpt(ALICE)[0] == 250
                code, text = client.data(msg)
                if code < 400 or code >= 500:
                    break
                with ledger.lock:
                    ledger.retries += 1
                time.sleep(0.05)
            if code != 250:
                with ledger.lock:
                    ledger.errors.append(f"{tid}: {code} {text!r}")
                continue
            match = _UID.search(text)
            assert match is not None, text
            uid = int(match.group(1))
            with ledger.lock:
                if uid <= last_uid:
                    ledger.errors.append(f"sender {n}: uid {uid} after {last_uid}")
                ledger.acked[tid] = uid
            last_uid = uid


def _store_reader(srv: IngestServer, stop: threading.Event, ledger: Ledger) -> None:
    async def round_() -> None:
        account = await srv.ctx.store.open_account(ALICE)
        box = await account.open_mailbox("INBOX")
        snap = await box.snapshot()
        uids = [m.uid for m in snap.messages]
        if uids != sorted(set(uids)):
            ledger.errors.append(f"snapshot not strictly ascending: {uids[:20]}")
        victims = []
        for info in snap.messages[-6:]:
            try:
                data = await (await box.open_message(info.uid)).read()
            except Exception:  # expunged by another reader meanwhile
                continue
            tid = _test_id(data)
            ledger.add_read(tid, info.uid)
            ledger.count("store")
            if info.uid % 2 == 0:
                victims.append((info.uid, tid))
        if victims:
            removed = set(await box.expunge([uid for uid, _ in victims]))
            with ledger.lock:
                ledger.expunged.extend(tid for uid, tid in victims if uid in removed)

    while not stop.is_set():
        srv.run(round_())
        time.sleep(0.02)


def _pop3_reader(srv: IngestServer, stop: threading.Event, ledger: Ledger) -> None:
    port = srv.settings.pop3.port
    while not stop.is_set():
        try:
            pop = poplib.POP3("127.0.0.1", port, timeout=30)
            pop.user(ALICE)
            pop.pass_("secret")
        except poplib.error_proto:  # e.g. [IN-USE]: another session holds the maildrop
            time.sleep(0.05)
            continue
        count, _ = pop.stat()
        deleted = []
        for num in range(1, min(count, 5) + 1):
            try:
                _, lines, _ = pop.retr(num)
            except poplib.error_proto:  # expunged by another reader since this login
                continue
            tid = _test_id(b"\r\n".join(lines))
            ledger.add_read(tid, None)
            ledger.count("pop3")
            if num % 2 == 1:
                pop.dele(num)
                deleted.append(tid)
        if pop.quit().startswith(b"+OK"):
            with ledger.lock:
                ledger.expunged.extend(deleted)
        time.sleep(0.05)


def _imap_reader(srv: IngestServer, stop: threading.Event, ledger: Ledger) -> None:
    imap = imaplib.IMAP4("127.0.0.1", srv.extra["imap_port"], timeout=30)
    imap.login(ALICE, "secret")
    while not stop.is_set():
        imap.select("INBOX")
        typ, data = imap.uid("SEARCH", "ALL")
        uids = [int(u) for u in data[0].split()]
        if uids != sorted(set(uids)):
            ledger.errors.append(f"IMAP SEARCH not ascending: {uids[:20]}")
        for uid in uids[:3]:
            typ, parts = imap.uid("FETCH", str(uid), "(BODY.PEEK[HEADER])")
            if typ != "OK" or not parts or not isinstance(parts[0], tuple):
                continue
            tid = _test_id(parts[0][1])
            ledger.add_read(tid, uid)
            ledger.count("imap")
            if uid % 3 == 0:
                imap.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
                typ, _ = imap.uid("EXPUNGE", str(uid))
                if typ == "OK":
                    with ledger.lock:
                        ledger.expunged.append(tid)
        time.sleep(0.05)
    imap.logout()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_thousand_messages_with_concurrent_readers(make_server: Callable[..., Any]) -> None:
    frontends = ("ingest", "pop3", *(("imap",) if HAVE_IMAP else ()))
    imap_port = free_port()
    srv: IngestServer = make_server(
        frontends=frontends,
        pop3={"port": free_port(), "tls_port": 0},
        imap={"port": imap_port if HAVE_IMAP else 0, "tls_port": 0},
    )
    srv.extra["imap_port"] = imap_port
    srv.add_account("alice")
    ledger = Ledger()
    stop = threading.Event()
    readers = [
        threading.Thread(target=_store_reader, args=(srv, stop, ledger)),
        threading.Thread(target=_pop3_reader, args=(srv, stop, ledger)),
    ]
    if HAVE_IMAP:
        readers.append(threading.Thread(target=_imap_reader, args=(srv, stop, ledger)))
    senders = [threading.Thread(target=_sender, args=(srv, n, ledger)) for n in range(SENDERS)]
    started = time.monotonic()
    for t in readers + senders:
        t.start()
    for t in senders:
        t.join(timeout=500)
    elapsed = time.monotonic() - started
    stop.set()
    for t in readers:
        t.join(timeout=60)

    assert not ledger.errors, ledger.errors[:10]
    assert len(ledger.acked) == SENDERS * PER_SENDER
    # UIDs are unique across every acknowledged message (never reused).
    assert len(set(ledger.acked.values())) == len(ledger.acked)
    # A reader that saw a UID saw the one the LMTP reply reported.
    for tid, uid in ledger.read.items():
        if uid is not None:
            assert ledger.acked[tid] == uid, tid
    remaining = srv.messages(ALICE)
    remaining_ids = [_test_id(m) for m in remaining]
    remaining_uids = srv.uids(ALICE)
    assert remaining_uids == sorted(set(remaining_uids))
    assert len(set(remaining_ids)) == len(remaining_ids), "a message was stored twice"
    assert not set(remaining_ids) & set(ledger.expunged), "expunged but still there"
    assert set(ledger.expunged) <= set(ledger.read)
    # Every acknowledged message is accounted for.
    assert set(ledger.acked) == set(remaining_ids) | set(ledger.expunged)
    assert ledger.expunged, "the readers did expunge while mail arrived"
    for reader in ("store", "pop3", *(("imap",) if HAVE_IMAP else ())):
        assert ledger.reads_by.get(reader), f"{reader} read nothing: {ledger.reads_by}"
    print(
        f"\n{len(ledger.acked)} messages in {elapsed:.1f}s "
        f"({len(ledger.acked) / elapsed:.0f}/s) with readers; read {len(ledger.read)}, "
        f"expunged {len(ledger.expunged)}, left {len(remaining_ids)}, 4xx retried {ledger.retries}"
        f", reads by reader {ledger.reads_by}"
    )


def test_concurrent_first_deliveries_to_a_new_account(make_server: Callable[..., Any]) -> None:
    """Ten deliveries racing to open a never-used account's Maildir all succeed at once.

    (The store alone fails some of them - concurrent first opens both initialise the Maildir -
    so the delivery agent serialises account opens.)"""
    srv: IngestServer = make_server()
    srv.add_account("fresh")
    fresh = f"fresh@{DOMAIN}"
    replies: list[tuple[int, bytes]] = []
    barrier = threading.Barrier(10)

    def one(n: int) -> None:
        with srv.lmtp() as client:
            client.ehlo("sender.test")
            client.mail("s@remote.test")
            client.rcpt(fresh)
            barrier.wait()
            replies.append(client.data(f"Subject: {n}\r\nX-Test-Id: f{n}\r\n\r\nx\r\n".encode()))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [code for code, _ in replies] == [250] * 10, replies
    assert sorted(_test_id(m) for m in srv.messages(fresh)) == sorted(f"f{n}" for n in range(10))


def test_simultaneous_deliveries_partly_over_quota(make_server: Callable[..., Any]) -> None:
    """Deliveries that arrive together share a store commit (group commit), but one that does
    not fit the quota never fails the others: exactly the ones that fit are stored."""
    srv: IngestServer = make_server()
    srv.add_account("quinn", quota_messages=5)
    quinn = f"quinn@{DOMAIN}"
    with srv.lmtp() as client:  # the Maildir exists before the race
        assert client.sendmail("s@remote.test", [quinn], b"Subject: first\r\n\r\nx\r\n") == {}
    codes: list[int] = []
    barrier = threading.Barrier(10)

    def one(n: int) -> None:
        with srv.lmtp() as client:
            client.ehlo("sender.test")
            client.mail("s@remote.test")
            assert client.rcpt(quinn)[0] == 250  # 1 of 5 used: each fits on its own
            barrier.wait()
            code, text = client.data(f"Subject: {n}\r\nX-Test-Id: q{n}\r\n\r\nx\r\n".encode())
            assert code == 250 or text.startswith(b"4.2.2"), (code, text)
            codes.append(code)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [250] * 4 + [452] * 6
    assert len(srv.messages(quinn)) == 5
