"""Inbound SMTP (RFC 5321) for local domains: never a relay, with limits and STARTTLS."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from ingest_harness import DOMAIN, IngestServer, RawClient, message

ALICE, BOB, CAROL = (f"{u}@{DOMAIN}" for u in ("alice", "bob", "carol"))


def test_ehlo_extensions(server: IngestServer) -> None:
    with server.smtp() as client:
        client.ehlo("client.test")
        for ext in ("size", "8bitmime", "smtputf8", "pipelining", "enhancedstatuscodes"):
            assert client.has_extn(ext), ext
        assert client.esmtp_features["size"] == str(server.settings.smtp.max_message_size)
        # STARTTLS is offered exactly when the shared TLS provider has a certificate.
        assert client.has_extn("starttls") == (server.ctx.tls.server_context() is not None)
        assert not client.has_extn("auth")


def test_delivers_to_local_recipients(server: IngestServer) -> None:
    with server.smtp() as client:
        assert client.sendmail("s@remote.test", [ALICE, BOB], message()) == {}
        # Exactly one DATA reply: the next reply on the wire is NOOP's own.
        assert client.noop() == (250, b"2.0.0 Ok")
    for rcpt in (ALICE, BOB):
        [stored] = server.messages(rcpt)
        assert b"with ESMTP id " in stored and f"Delivered-To: {rcpt}".encode() in stored


def test_relay_refused(server: IngestServer) -> None:
    with server.smtp() as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            client.sendmail("s@remote.test", ["victim@elsewhere.test"], message())
        code, text = info.value.recipients["victim@elsewhere.test"]
        assert (code, text[:5]) == (550, b"5.7.1")
        # Mixed: the local recipient is accepted, the foreign one refused.
        refused = client.sendmail("s@remote.test", [ALICE, "v@gmail.example"], message())
        assert refused["v@gmail.example"][0] == 550
    assert len(server.messages(ALICE)) == 1


def test_unknown_user_of_local_domain(server: IngestServer) -> None:
    with server.smtp() as client:
        for rcpt in (f"ghost@{DOMAIN}", "ghost@local.test"):  # account domain, configured domain
            with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
                client.sendmail("s@remote.test", [rcpt], message())
            code, text = info.value.recipients[rcpt]
            assert (code, text[:5]) == (550, b"5.1.1")


def test_oversize(make_server: Callable[..., IngestServer], raw: Callable[..., RawClient]) -> None:
    srv = make_server(smtp={"max_message_size": 4096})
    srv.add_account("alice")
    with srv.smtp() as client:
        # Declared SIZE too big: refused at MAIL (RFC 1870 §6).
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            client.sendmail("s@remote.test", [ALICE], message(body="a" * 5000 + "\r\n"))
        assert info.value.smtp_code == 552 and info.value.smtp_error.startswith(b"5.3.4")
    # Undeclared: refused after the data, which is read to the end (session stays usable).
    client2 = raw(srv.smtp_port)
    client2.reply()
    client2.cmd("EHLO client.test")
    client2.cmd("MAIL FROM:<s@remote.test>")
    client2.cmd(f"RCPT TO:<{ALICE}>")
    client2.cmd("DATA")
    client2.send((b"b" * 998 + b"\r\n") * 5 + b".\r\n")
    assert client2.reply()[0].startswith("552 5.3.4")
    assert client2.cmd("NOOP")[0].startswith("250")
    assert srv.messages(ALICE) == []


def test_over_quota(server: IngestServer) -> None:
    with server.smtp() as client:
        assert client.sendmail("s@remote.test", [CAROL], message()) == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            client.sendmail("s@remote.test", [CAROL], message())
        assert info.value.recipients[CAROL][0] == 452


def test_over_quota_by_declared_size(server: IngestServer) -> None:
    server.add_account("erin", quota_bytes=10_000)
    erin = f"erin@{DOMAIN}"
    with server.smtp() as client:
        client.ehlo("c.test")
        assert client.mail("s@remote.test", ["SIZE=20000"])[0] == 250
        code, text = client.rcpt(erin)
        assert (code, text[:5]) == (452, b"4.2.2")
        assert client.rcpt(ALICE)[0] == 250


def test_quota_failure_after_data_with_several_recipients(server: IngestServer) -> None:
    """One copy fails after DATA: SMTP has one reply, so it is 4xx (retry), never a loss."""
    server.add_account("dave", quota_bytes=100)
    with server.smtp() as client, pytest.raises(smtplib.SMTPDataError) as info:
        client.sendmail("s@remote.test", [ALICE, f"dave@{DOMAIN}"], message())
    assert info.value.smtp_code == 451
    with server.smtp() as client, pytest.raises(smtplib.SMTPDataError) as info2:
        client.sendmail("s@remote.test", [f"dave@{DOMAIN}"], message())
    assert info2.value.smtp_code == 452  # only recipient: its own reply


def test_8bit_and_smtputf8(server: IngestServer) -> None:
    body = "Grüße aus Köln — ünïcødé\r\n".encode()
    msg = (
        "From: Jürgen <jürgen@bücher.example>\r\nTo: alice@example.test\r\nSubject: Grüße\r\n\r\n"
    ).encode() + body
    with server.smtp() as client:
        client.ehlo("c.test")
        assert (
            client.sendmail(
                "jürgen@bücher.example", [ALICE], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
            )
            == {}
        )
        latin = b"Subject: caf\xe9\r\n\r\n\xe9t\xe9 \xff\r\n"  # raw 8-bit, not UTF-8
        assert (
            client.sendmail("s@remote.test", [ALICE], latin, mail_options=["BODY=8BITMIME"]) == {}
        )
        # A non-ASCII address without SMTPUTF8 is refused (RFC 6531 §3.5).
        client.mail("s@remote.test")
        code, text = client.rcpt("jürgen@example.test")
        assert code == 553 and text.startswith(b"5.6.7")
        client.rset()
    first, second = server.messages(ALICE)
    assert first.endswith(msg)  # bytes kept exactly
    assert "Return-Path: <jürgen@bücher.example>".encode() in first
    assert b"with UTF8SMTP id" in first
    assert second.endswith(latin)


def test_recipient_limit(make_server: Callable[..., IngestServer]) -> None:
    srv = make_server(smtp={"max_recipients": 2})
    for u in ("a1", "a2", "a3"):
        srv.add_account(u)
    with srv.smtp() as client:
        client.ehlo("c.test")
        client.mail("s@remote.test")
        assert client.rcpt(f"a1@{DOMAIN}")[0] == 250
        assert client.rcpt(f"a2@{DOMAIN}")[0] == 250
        code, text = client.rcpt(f"a3@{DOMAIN}")
        assert (code, text[:5]) == (452, b"4.5.3")


def test_connections_per_ip(
    make_server: Callable[..., IngestServer], raw: Callable[..., RawClient]
) -> None:
    srv = make_server(limits={"max_connections_per_ip": 2})
    a, b = raw(srv.smtp_port), raw(srv.smtp_port)
    assert a.reply()[0].startswith("220") and b.reply()[0].startswith("220")
    c = raw(srv.smtp_port)
    assert c.reply()[0].startswith("421 4.7.0")
    a.cmd("QUIT")
    a.close()
    time.sleep(0.2)
    d = raw(srv.smtp_port)
    assert d.reply()[0].startswith("220")


def test_client_timeout(
    make_server: Callable[..., IngestServer], raw: Callable[..., RawClient]
) -> None:
    srv = make_server(smtp={"timeout": 0.5})
    client = raw(srv.smtp_port)
    client.reply()
    time.sleep(1.2)
    client.sock.settimeout(5)
    with pytest.raises((ConnectionError, OSError)):
        client.cmd("NOOP")
        client.cmd("NOOP")


def test_starttls(make_server: Callable[..., IngestServer], tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("mx.example.test", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    srv = make_server(tls={"cert_file": str(cert_file), "key_file": str(key_file)})
    srv.add_account("alice")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=30) as client:
        client.ehlo("c.test")
        assert client.has_extn("starttls")
        client.starttls(context=context)  # verifies the certificate for 127.0.0.1
        client.ehlo("c.test")
        assert not client.has_extn("starttls")
        assert client.sendmail("s@remote.test", [ALICE], message()) == {}
    [stored] = srv.messages(ALICE)
    assert b"with ESMTPS id" in stored


def test_disconnect_mid_data(server: IngestServer, raw: Callable[..., RawClient]) -> None:
    client = raw(server.smtp_port)
    client.reply()
    client.cmd("EHLO c.test")
    client.cmd("MAIL FROM:<s@remote.test>")
    client.cmd(f"RCPT TO:<{ALICE}>")
    client.cmd("DATA")
    client.send(b"Subject: cut\r\n\r\nhalf a mess")
    client.sock.shutdown(socket.SHUT_WR)
    time.sleep(0.3)
    client.close()
    assert server.messages(ALICE) == []
    with server.smtp() as ok:
        assert ok.sendmail("s@remote.test", [ALICE], message()) == {}
