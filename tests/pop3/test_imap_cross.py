"""POP3 and IMAP on the same account, through ``mailhub serve`` and stdlib imaplib/poplib.

What a POP3 client does at QUIT must reach an IMAP session of the same account (IDLE
included) as ordinary expunges, flag changes and moves; what IMAP does must never renumber a
POP3 session's maildrop; mail APPENDed to another folder is never offered over POP3.
"""

from __future__ import annotations

import imaplib
import poplib
import re
import time

import pytest
from mailhub_proc import MailhubServer

pytestmark = pytest.mark.clients


def message(subject: str) -> bytes:
    return (
        f"From: carol@example.net\r\nTo: alice@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@example.net>\r\n\r\nHello.\r\n"
    ).encode()


def deliver(server: MailhubServer, data: bytes) -> None:
    result = server.cli("deliver", server.user, input=data.decode())
    assert result.returncode == 0, result.stderr


def imap(server: MailhubServer) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=30)
    client.login(server.user, server.password)
    return client


def pop(server: MailhubServer) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    client.user(server.user)
    client.pass_(server.password)
    return client


class Idle:
    """A raw IMAP IDLE (RFC 2177) on an imaplib connection, collecting untagged lines."""

    def __init__(self, client: imaplib.IMAP4) -> None:
        self.client = client
        client.send(b"I1 IDLE\r\n")
        assert client.readline().startswith(b"+")
        self.lines: list[bytes] = []

    def wait_for(self, pattern: bytes, timeout: float = 10.0) -> list[bytes]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        sock = self.client.socket()
        while not any(rx.search(line) for line in self.lines):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} during IDLE; got {self.lines!r}")
            sock.settimeout(left)
            try:
                self.lines.append(self.client.readline())
            except TimeoutError:
                continue
        return self.lines

    def done(self) -> None:
        self.client.send(b"DONE\r\n")
        while True:
            line = self.client.readline()
            if line.startswith(b"I1 "):
                assert b"OK" in line
                return
            self.lines.append(line)


def folder_flags(client: imaplib.IMAP4, folder: str) -> list[bytes]:
    typ, _ = client.select(folder, readonly=True)
    assert typ == "OK"
    typ, data = client.fetch("1:*", "(FLAGS)")
    return [d for d in data if isinstance(d, bytes)] if typ == "OK" and data[0] else []


def test_delivered_mail_listed_by_pop3_and_imap(mailhub_server: MailhubServer) -> None:
    deliver(mailhub_server, message("both"))
    client = imap(mailhub_server)
    typ, data = client.select("INBOX")
    assert typ == "OK" and data[0] == b"1"
    p = pop(mailhub_server)
    assert p.stat()[0] == 1
    p.quit()
    client.logout()


@pytest.mark.parametrize("policy", ["delete", "keep", "archive", "trash"])
def test_pop3_quit_reaches_imap_idle(mailhub_server: MailhubServer, policy: str) -> None:
    mailhub_server.cli("user", "set", mailhub_server.user, "--pop3-on-delete", policy, check=True)
    for subject in ("one", "two", "three"):
        deliver(mailhub_server, message(subject))
    watcher = imap(mailhub_server)
    watcher.select("INBOX")
    idle = Idle(watcher)
    p = pop(mailhub_server)
    p.retr(1)
    p.dele(1)
    p.retr(2)  # retrieved, not deleted: \Seen under every policy (mark-seen is on)
    p.quit()
    if policy == "keep":
        idle.wait_for(rb"\* 1 FETCH \(.*\\Seen")
        idle.wait_for(rb"\* 2 FETCH \(.*\\Seen")
        assert not any(b"EXPUNGE" in line for line in idle.lines)
    else:
        idle.wait_for(rb"\* 1 EXPUNGE")
    idle.done()
    _, data = watcher.search(None, "SEEN")
    seen_count = len(data[0].split())
    assert seen_count == (2 if policy == "keep" else 1)
    if policy in ("archive", "trash"):
        flags = folder_flags(watcher, "Archive" if policy == "archive" else "Trash")
        assert len(flags) == 1 and b"\\Seen" in flags[0]
    watcher.logout()


def test_imap_changes_do_not_renumber_pop3(mailhub_server: MailhubServer) -> None:
    for subject in ("a", "b", "c"):
        deliver(mailhub_server, message(subject))
    p = pop(mailhub_server)
    _, before, _ = p.uidl()
    client = imap(mailhub_server)
    client.select("INBOX")
    client.store("1", "+FLAGS", "(\\Flagged)")
    client.store("2", "+FLAGS", "(\\Deleted)")
    client.expunge()
    client.append("INBOX", None, None, message("d"))
    _, after, _ = p.uidl()
    assert after == before
    with pytest.raises(poplib.error_proto, match="-ERR"):
        p.retr(2)  # expunged over IMAP: a clear error, and the session goes on
    _, lines, _ = p.retr(3)
    assert b"Subject: c" in lines
    p.quit()
    p = pop(mailhub_server)
    assert p.stat()[0] == 3  # a, c, d: the new session sees the new state
    p.quit()
    client.logout()


def test_imap_append_to_other_folder_never_listed(mailhub_server: MailhubServer) -> None:
    client = imap(mailhub_server)
    client.create("Lists")
    client.append("Lists", None, None, message("list mail"))
    client.append("Sent", None, None, message("sent mail"))
    client.append("INBOX", None, None, message("inbox mail"))
    client.logout()
    p = pop(mailhub_server)
    assert p.stat()[0] == 1
    _, lines, _ = p.top(1, 0)
    assert b"Subject: inbox mail" in lines
    p.quit()
