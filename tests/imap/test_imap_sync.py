"""Two sessions on one account see each other's changes (NOOP and IDLE), delivered mail
reaches an IDLE session within a second, and EXPUNGE is never sent during a non-UID
FETCH/STORE/SEARCH (RFC 9051 §7.5.1)."""

from __future__ import annotations

import re
import smtplib
import threading
import time
from collections.abc import Callable

from conftest import deliver, msg
from imap_raw import RawImap, wait_line
from mailhub_proc import MailhubServer


def _fill(c: RawImap, n: int) -> None:
    for i in range(n):
        m = msg(f"n{i}")
        c.send(b"ap APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
        assert c.until_tagged("ap")[-1].startswith(b"ap OK")


def test_noop_sees_other_sessions_changes(raw: Callable[..., RawImap]) -> None:
    a, b = raw(), raw()
    _fill(a, 3)
    a.cmd("s1 SELECT INBOX")
    b.cmd("s2 SELECT INBOX")
    b.cmd("x STORE 2 +FLAGS (\\Flagged)")
    out = a.cmd("n1 NOOP")
    assert re.fullmatch(rb"\* 2 FETCH \(FLAGS \(\\Flagged \\Recent\)\)", out[0]), out
    # append by b: a sees EXISTS
    m = msg("new")
    b.send(b"y APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
    b.until_tagged("y")
    out = a.cmd("n2 NOOP")
    assert b"* 4 EXISTS" in out
    # expunge by b: a sees EXPUNGE at NOOP, not during FETCH
    b.cmd("z STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.cmd("z2 EXPUNGE")
    out = a.cmd("f1 FETCH 1:4 (UID)")
    assert not any(b"EXPUNGE" in ln for ln in out), out
    out = a.cmd("f2 STORE 3 +FLAGS (\\Seen)")
    assert not any(b"EXPUNGE" in ln for ln in out), out
    out = a.cmd("n3 NOOP")
    assert b"* 1 EXPUNGE" in out
    out = a.cmd("f3 FETCH 1:* (UID)")
    assert [ln for ln in out if ln.startswith(b"* ")] == [
        b"* 1 FETCH (UID 2)",
        b"* 2 FETCH (UID 3)",
        b"* 3 FETCH (UID 4)",
    ]


def test_qresync_session_gets_vanished(raw: Callable[..., RawImap]) -> None:
    a, b = raw(), raw()
    _fill(a, 3)
    a.cmd("e ENABLE QRESYNC")
    a.cmd("s1 SELECT INBOX")
    b.cmd("s2 SELECT INBOX")
    b.cmd("x STORE 2 +FLAGS.SILENT (\\Deleted)")
    out = a.cmd("n0 NOOP")
    assert re.fullmatch(
        rb"\* 2 FETCH \(FLAGS \(\\Deleted \\Recent\) UID 2 MODSEQ \(\d+\)\)", out[0]
    ), out
    b.cmd("y EXPUNGE")
    out = a.cmd("n1 NOOP")
    assert out[0] == b"* VANISHED 2"


def test_idle_reports_flags_expunge_and_append(raw: Callable[..., RawImap]) -> None:
    a, b = raw(), raw()
    _fill(a, 2)
    a.cmd("s1 SELECT INBOX")
    b.cmd("s2 SELECT INBOX")
    a.send(b"i1 IDLE\r\n")
    assert a.line() == b"+ idling"
    b.cmd("x STORE 1 +FLAGS (\\Answered)")
    ln, took = wait_line(a, rb"FETCH", 3)
    assert ln == b"* 1 FETCH (FLAGS (\\Answered \\Recent))" and took < 1.0
    b.cmd("y STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.cmd("y2 EXPUNGE")
    ln, took = wait_line(a, rb"EXPUNGE", 3)
    assert ln == b"* 2 EXPUNGE" and took < 1.0
    m = msg("during idle")
    b.send(b"z APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
    b.until_tagged("z")
    ln, took = wait_line(a, rb"EXISTS", 3)
    assert ln == b"* 2 EXISTS" and took < 1.0
    # iOS: DONE and the next command in one packet
    a.send(b"DONE\r\nn1 NOOP\r\n")
    out = a.until_tagged("i1")
    assert out[-1] == b"i1 OK IDLE terminated"
    assert a.until_tagged("n1") == [b"n1 OK NOOP completed"]


def test_delivery_reaches_idle_within_one_second(
    raw: Callable[..., RawImap], server: MailhubServer
) -> None:
    a = raw()
    a.cmd("s1 SELECT INBOX")
    a.send(b"i1 IDLE\r\n")
    assert a.line() == b"+ idling"
    t0 = time.monotonic()
    deliver(server, msg("from deliver").decode())  # another process (mailhub deliver)
    ln, _ = wait_line(a, rb"EXISTS", 5)
    took = time.monotonic() - t0
    assert ln == b"* 1 EXISTS"
    # the CLI process startup dominates; the store-to-IDLE hop is what must be fast
    assert took < 20.0
    # LMTP in-process: measured from the end of the LMTP transaction
    with smtplib.LMTP(server.host, server.ports["lmtp"]) as lmtp:
        lmtp.sendmail("bob@example.org", [server.user], msg("via lmtp"))
        t1 = time.monotonic()
    ln, _ = wait_line(a, rb"EXISTS", 3)
    assert ln == b"* 2 EXISTS"
    assert time.monotonic() - t1 < 1.0
    a.send(b"DONE\r\n")
    assert a.until_tagged("i1")[-1] == b"i1 OK IDLE terminated"


def test_idle_in_authenticated_state_and_bad_line(raw: Callable[..., RawImap]) -> None:
    a = raw()
    a.send(b"i1 IDLE\r\n")
    assert a.line() == b"+ idling"
    a.send(b"garbage\r\n")
    assert a.until_tagged("i1")[-1].startswith(b"i1 BAD")
    assert a.cmd("n NOOP") == [b"n OK NOOP completed"]


def test_idle_keepalive_is_configurable_and_rare(
    mailhub_factory: Callable[..., MailhubServer],
) -> None:
    server = mailhub_factory(config={"limits": {"imap_idle_keepalive": 1.0}})
    a = RawImap(server.host, server.ports["imap"])
    a.login(server.user, server.password)
    a.cmd("s SELECT INBOX")
    a.send(b"i IDLE\r\n")
    assert a.line() == b"+ idling"
    _ln, took = wait_line(a, rb"^\* OK Still here", 5)
    assert 0.8 < took < 3
    a.send(b"DONE\r\n")
    assert a.until_tagged("i")[-1] == b"i OK IDLE terminated"
    # the default is minutes apart (phones' batteries)
    from mailhub.config import LimitSettings

    assert LimitSettings().imap_idle_keepalive >= 300


def test_many_sessions_idle_at_once(server: MailhubServer) -> None:
    """Twenty IDLE sessions all get one delivery within a second."""
    clients = []
    for _ in range(20):
        c = RawImap(server.host, server.ports["imap"])
        c.login(server.user, server.password)
        c.cmd("s SELECT INBOX")
        c.send(b"i IDLE\r\n")
        assert c.line() == b"+ idling"
        clients.append(c)
    with smtplib.LMTP(server.host, server.ports["lmtp"]) as lmtp:
        lmtp.sendmail("bob@example.org", [server.user], msg("fanout"))
        t0 = time.monotonic()
    got: list[float] = []

    def wait(c: RawImap) -> None:
        wait_line(c, rb"EXISTS", 5)
        got.append(time.monotonic() - t0)

    threads = [threading.Thread(target=wait, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 20 and max(got) < 1.0
    for c in clients:
        c.close()
