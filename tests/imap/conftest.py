"""IMAP end-to-end fixtures: a real ``mailhub serve`` (the shared ``mailhub_factory``) and
helpers to log in with stdlib imaplib. A failed login is delayed only briefly here."""

from __future__ import annotations

import contextlib
import imaplib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from imap_raw import RawImap
from mailhub_proc import MailhubServer

FAST = {"limits": {"failed_login_delay": 0.05}}


@pytest.fixture
def server(mailhub_factory: Callable[..., MailhubServer]) -> MailhubServer:
    """A running server (fast failed-login delay) with one account."""
    return mailhub_factory(config=FAST)


@pytest.fixture
def connect(server: MailhubServer) -> Iterator[Callable[..., imaplib.IMAP4]]:
    """``connect(login=True)`` -> an imaplib client on the cleartext port (loopback)."""
    clients: list[imaplib.IMAP4] = []

    def make(login: bool = True, **kw: Any) -> imaplib.IMAP4:
        c = imaplib.IMAP4(server.host, server.ports["imap"], timeout=30)
        clients.append(c)
        if login:
            c.login(server.user, server.password)
        return c

    yield make
    for c in clients:
        with contextlib.suppress(Exception):  # already closed by the test
            c.logout()


def deliver(server: MailhubServer, text: str, folder: str | None = None) -> None:
    """Deliver one message through ``mailhub deliver`` (another process, like an MDA)."""
    args = ["deliver", server.user]
    if folder:
        args += ["--folder", folder]
    server.cli(*args, input=text, check=True)


def msg(subject: str = "hello", body: str = "body text\r\n") -> bytes:
    return (
        f"From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n"
        f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n{body}"
    ).encode()


@pytest.fixture
def raw(server: MailhubServer) -> Iterator[Callable[..., RawImap]]:
    """``raw(login=True, port="imap")`` -> a byte-exact client (see ``imap_raw``)."""
    clients: list[RawImap] = []

    def make(login: bool = True, port: str = "imap", **kw: Any) -> RawImap:
        if port == "imaps":
            kw.setdefault("tls", server.ssl_context())
        c = RawImap(server.host, server.ports[port], **kw)
        clients.append(c)
        if login:
            c.login(server.user, server.password)
        return c

    yield make
    for c in clients:
        c.close()
