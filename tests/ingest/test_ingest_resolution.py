"""Recipient resolution over the wire: aliases, sub-addressing, catch-all, disabled accounts."""

from __future__ import annotations

import smtplib
from collections.abc import Callable

import pytest
from ingest_harness import DOMAIN, IngestServer, message

ALICE = f"alice@{DOMAIN}"


def _lmtp_one(server: IngestServer, rcpt: str) -> None:
    with server.lmtp() as client:
        assert client.sendmail("s@remote.test", [rcpt], message()) == {}


def test_alias_delivers_to_account(server: IngestServer) -> None:
    _lmtp_one(server, f"ali@{DOMAIN}")
    _lmtp_one(server, f"ALI@{DOMAIN.upper()}")  # domain case-insensitive
    stored = server.messages(ALICE)
    assert len(stored) == 2
    assert f"Delivered-To: ali@{DOMAIN}".encode() in stored[0]


def test_subaddress_files_into_existing_folder(server: IngestServer) -> None:
    server.create_folder(ALICE, "Lists")
    _lmtp_one(server, f"alice+Lists@{DOMAIN}")
    _lmtp_one(server, f"alice+lists@{DOMAIN}")  # unique case-insensitive match
    _lmtp_one(server, f"alice+nosuchfolder@{DOMAIN}")  # falls back to INBOX
    _lmtp_one(server, f"ali+Lists@{DOMAIN}")  # alias + tag
    assert len(server.messages(ALICE, "Lists")) == 3
    [inbox] = server.messages(ALICE)
    assert f"Delivered-To: alice+nosuchfolder@{DOMAIN}".encode() in inbox


def test_subaddress_over_smtp_and_unknown_base(server: IngestServer) -> None:
    server.create_folder(ALICE, "Lists")
    with server.smtp() as client:
        assert client.sendmail("s@remote.test", [f"alice+Lists@{DOMAIN}"], message()) == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            client.sendmail("s@remote.test", [f"nobody+Lists@{DOMAIN}"], message())
        assert info.value.recipients[f"nobody+Lists@{DOMAIN}"][0] == 550
    assert len(server.messages(ALICE, "Lists")) == 1


def test_custom_delimiter(make_server: Callable[..., IngestServer]) -> None:
    srv = make_server(delivery={"recipient_delimiter": "-"})
    srv.add_account("alice")
    srv.create_folder(ALICE, "Shop")
    _lmtp_one(srv, f"alice-Shop@{DOMAIN}")
    assert len(srv.messages(ALICE, "Shop")) == 1


def test_catch_all(make_server: Callable[..., IngestServer]) -> None:
    srv = make_server(delivery={"catch_all": {"family.test": ALICE}})
    srv.add_account("alice")
    _lmtp_one(srv, "anything@family.test")
    with srv.smtp() as client:  # a catch-all domain is local for SMTP too
        assert client.sendmail("s@remote.test", ["Other@FAMILY.test"], message()) == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            client.sendmail("s@remote.test", ["x@notfamily.test"], message())
        assert info.value.recipients["x@notfamily.test"][0] == 550
    stored = srv.messages(ALICE)
    assert len(stored) == 2
    assert b"Delivered-To: anything@family.test" in stored[0]
    # Without a catch-all, an unknown user of the account domain is still refused.
    with srv.lmtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("s@remote.test", [f"ghost@{DOMAIN}"], message())


def test_disabled_account_refused(server: IngestServer) -> None:
    server.add_account("gone", enabled=False)
    with server.lmtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        client.sendmail("s@remote.test", [f"gone@{DOMAIN}"], message())
    code, text = info.value.recipients[f"gone@{DOMAIN}"]
    assert (code, text[:5]) == (550, b"5.2.1")


def test_account_added_while_running(server: IngestServer) -> None:
    """The accounts file is re-read when it changes: no restart to receive mail."""
    with server.lmtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("s@remote.test", [f"newbie@{DOMAIN}"], message())
    server.add_account("newbie")
    _lmtp_one(server, f"newbie@{DOMAIN}")
    assert len(server.messages(f"newbie@{DOMAIN}")) == 1


def test_bare_local_part(server: IngestServer) -> None:
    """``mailhub deliver alice`` (Postfix's $USER) and RCPT TO:<alice> name the one account."""
    server.create_folder(ALICE, "Lists")
    _lmtp_one(server, "alice")
    _lmtp_one(server, "alice+Lists")
    assert len(server.messages(ALICE)) == 1
    [listed] = server.messages(ALICE, "Lists")
    assert f"Delivered-To: alice+Lists@{DOMAIN}".encode() in listed
    with server.lmtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("s@remote.test", ["nobody"], message())


def test_alias_and_account_in_one_message_to_a_new_account(server: IngestServer) -> None:
    """Two copies for one never-used account, written concurrently: both stored."""
    server.add_account("fay", aliases=[f"f@{DOMAIN}"])
    with server.lmtp() as client:
        assert client.sendmail("s@remote.test", [f"fay@{DOMAIN}", f"f@{DOMAIN}"], message()) == {}
        code, text = client.getreply()  # smtplib.LMTP reads only the first DATA reply
        assert code == 250, text
    stored = server.messages(f"fay@{DOMAIN}")
    assert sorted(m.split(b"\r\n")[1] for m in stored) == [
        f"Delivered-To: f@{DOMAIN}".encode(),
        f"Delivered-To: fay@{DOMAIN}".encode(),
    ]
