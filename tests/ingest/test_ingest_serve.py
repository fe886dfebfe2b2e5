"""Ingest in the shipped ``mailhub serve`` process (the shared ``mailhub_server`` fixture).

Mail handed over LMTP (TCP and Unix socket) or SMTP shows up at the next POP3 login, added
accounts receive mail without a restart, and the server exits cleanly afterwards (the fixture
checks the exit status and that no traceback reached the log).
"""

from __future__ import annotations

import poplib
import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

MSG = b"From: s@remote.test\r\nSubject: through serve\r\n\r\nHello.\r\n"


def _pop3_messages(server: Any, user: str, password: str) -> list[bytes]:
    pop = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    try:
        pop.user(user)
        pop.pass_(password)
        count, _ = pop.stat()
        return [b"\r\n".join(pop.retr(n)[1]) for n in range(1, count + 1)]
    finally:
        pop.quit()


def test_lmtp_and_smtp_reach_pop3(mailhub_server: Any) -> None:
    user, password = mailhub_server.user, mailhub_server.password
    with smtplib.LMTP("127.0.0.1", mailhub_server.ports["lmtp"], timeout=30) as lmtp:
        assert lmtp.sendmail("s@remote.test", [user], MSG) == {}
    with smtplib.SMTP("127.0.0.1", mailhub_server.ports["smtp"], timeout=30) as smtp:
        assert smtp.sendmail("s@remote.test", [user], MSG.replace(b"through", b"smtp")) == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            smtp.sendmail("s@remote.test", ["x@elsewhere.test"], MSG)
        assert info.value.recipients["x@elsewhere.test"][0] == 550
    lmtp_copy, smtp_copy = _pop3_messages(mailhub_server, user, password)
    assert lmtp_copy.startswith(b"Return-Path: <s@remote.test>\r\nDelivered-To: " + user.encode())
    assert b"with LMTP id" in lmtp_copy and b"Subject: through serve" in lmtp_copy
    assert b"with ESMTP" in smtp_copy and b"Subject: smtp serve" in smtp_copy
    mailhub_server.wait_for_log(r"delivery id=\S+ from=<s@remote\.test> to=<" + user)


def test_unix_socket_and_new_account(mailhub_factory: Callable[..., Any], tmp_path: Path) -> None:
    sock = tmp_path / "lmtp.sock"
    server = mailhub_factory(config={"lmtp": {"unix_socket": str(sock)}})
    newbie = "newbie@example.com"
    with smtplib.LMTP(str(sock), timeout=30) as lmtp:
        refused = lmtp.sendmail("s@remote.test", [server.user, newbie], MSG)
        assert refused[newbie][0] == 550
    server.cli("user", "add", newbie, "--password-stdin", input="Newbie-pass-1\n", check=True)
    with smtplib.LMTP(str(sock), timeout=30) as lmtp:  # no restart needed
        assert lmtp.sendmail("s@remote.test", [newbie], MSG) == {}
    assert len(_pop3_messages(server, server.user, server.password)) == 1
    assert len(_pop3_messages(server, newbie, "Newbie-pass-1")) == 1


def test_smtp_starttls_under_serve(mailhub_server: Any) -> None:
    """STARTTLS through aiosmtpd's SSLProtocol swap, in the event loop ``serve`` runs (uvloop)."""
    with smtplib.SMTP("127.0.0.1", mailhub_server.ports["smtp"], timeout=30) as smtp:
        smtp.ehlo("c.test")
        assert smtp.has_extn("starttls")
        smtp.starttls(context=mailhub_server.ssl_context())
        smtp.ehlo("c.test")
        assert smtp.sendmail("s@remote.test", [mailhub_server.user], MSG) == {}
    [stored] = _pop3_messages(mailhub_server, mailhub_server.user, mailhub_server.password)
    assert b"with ESMTPS id" in stored
