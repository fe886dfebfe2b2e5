"""LMTP (RFC 2033) against the real listener and Maildir store."""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Callable

import pytest
from ingest_harness import DOMAIN, IngestServer, RawClient, message

ALICE, BOB, CAROL = (f"{u}@{DOMAIN}" for u in ("alice", "bob", "carol"))


def _transaction(client: RawClient, rcpts: list[str]) -> list[list[str]]:
    assert client.reply()[0].startswith("220")
    assert client.cmd("LHLO mta.test")[-1].startswith("250")
    assert client.cmd("MAIL FROM:<sender@remote.test>")[0].startswith("250 2.1.0")
    return [client.cmd(f"RCPT TO:<{r}>") for r in rcpts]


def test_lhlo_advertises_extensions(server: IngestServer) -> None:
    with server.lmtp() as client:
        assert client.ehlo()[0] == 250  # smtplib.LMTP sends LHLO
        for ext in ("pipelining", "enhancedstatuscodes", "8bitmime", "smtputf8", "size"):
            assert client.has_extn(ext), ext
        assert not client.has_extn("auth")
        assert client.docmd("EHLO x")[0] == 500  # RFC 2033 §4.1: LHLO only


def test_smtplib_lmtp_delivers_to_each_recipient(server: IngestServer) -> None:
    msg = message(Message_ID="<one@remote.test>")
    with server.lmtp() as client:
        refused = client.sendmail("sender@remote.test", [ALICE, BOB], msg)
        assert refused == {}
        # smtplib.LMTP reads only the first post-DATA reply (the gap aiosmtpd#517 mentions);
        # the second recipient's reply is still waiting on the wire.
        code, text = client.getreply()
        assert code == 250 and text.startswith(f"2.0.0 <{BOB}>".encode())
    for rcpt in (ALICE, BOB):
        [stored] = server.messages(rcpt)
        head, _, body = stored.partition(b"\r\n\r\n")
        assert body == b"Hello there.\r\n"
        lines = head.split(b"\r\n")
        # Trace headers first (RFC 5321 §4.4), the original header block after them.
        assert lines[0] == b"Return-Path: <sender@remote.test>"
        assert lines[1] == f"Delivered-To: {rcpt}".encode()
        assert lines[2].startswith(b"Received: from mta.test") or lines[2].startswith(
            b"Received: from"
        )
        assert f"for <{rcpt}>;".encode() in head
        assert b"with LMTP id " in head
        assert head.endswith(msg.partition(b"\r\n\r\n")[0])


def test_one_reply_per_accepted_recipient_raw(
    server: IngestServer, raw: Callable[..., RawClient]
) -> None:
    """Mixed results: two stored, one unknown at RCPT, one over quota at DATA -> 3 replies."""
    server.add_account("dave", quota_bytes=200)  # any real message is bigger: fails at DATA
    dave = f"dave@{DOMAIN}"
    client = raw(server.lmtp_port)
    replies = _transaction(client, [ALICE, f"nobody@{DOMAIN}", dave, BOB])
    assert replies[0][0].startswith("250 2.1.5")
    assert replies[1][0].startswith("550 5.1.1")
    assert replies[2][0].startswith("250 2.1.5")
    assert replies[3][0].startswith("250 2.1.5")
    assert client.cmd("DATA")[0].startswith("354")
    client.send(message(body="x" * 300 + "\r\n") + b".\r\n")
    got = [client.reply() for _ in range(3)]
    assert all(len(r) == 1 for r in got)
    assert got[0][0].startswith(f"250 2.0.0 <{ALICE}>")
    assert got[1][0].startswith(f"452 4.2.2 <{dave}>")
    assert got[2][0].startswith(f"250 2.0.0 <{BOB}>")
    # ...and nothing more: the next command's reply is the next line on the wire.
    assert client.cmd("NOOP") == ["250 2.0.0 Ok"]
    assert len(server.messages(ALICE)) == 1 and len(server.messages(BOB)) == 1
    assert server.messages(dave) == []


def test_pipelined_transaction_raw(server: IngestServer, raw: Callable[..., RawClient]) -> None:
    """RFC 2920 + RFC 2033 §4.2: a whole pipelined transaction, replies in order."""
    client = raw(server.lmtp_port)
    client.reply()
    client.cmd("LHLO mta.test")
    body = message().replace(b"Hello", b".Hello") + b"..dot line\r\n"
    wire = (
        b"MAIL FROM:<>\r\nRCPT TO:<"
        + ALICE.encode()
        + b">\r\nRCPT TO:<nobody@"
        + DOMAIN.encode()
        + b">\r\nRCPT TO:<"
        + BOB.encode()
        + b">\r\nDATA\r\n"
    )
    client.send(wire)
    assert client.reply()[0].startswith("250")  # MAIL
    assert client.reply()[0].startswith("250")  # RCPT alice
    assert client.reply()[0].startswith("550 5.1.1")  # RCPT nobody
    assert client.reply()[0].startswith("250")  # RCPT bob
    assert client.reply()[0].startswith("354")
    stuffed = b"\r\n".join(
        (b"." + line) if line.startswith(b".") else line for line in body.split(b"\r\n")
    )
    client.send(stuffed + b".\r\nQUIT\r\n")
    assert client.reply()[0].startswith("250 2.0.0")
    assert client.reply()[0].startswith("250 2.0.0")
    assert client.reply()[0].startswith("221")
    [stored] = server.messages(ALICE)
    assert stored.startswith(b"Return-Path: <>\r\n")  # the null sender of a bounce
    assert stored.endswith(body)


def test_pipelined_replies_share_one_write(
    server: IngestServer, raw: Callable[..., RawClient]
) -> None:
    """MAIL/RCPT replies wait for the DATA reply and leave in one write (RFC 2920 §3.1).

    One write of ~100 bytes on loopback arrives as one segment, so the first recv holds all
    four replies; written one by one, the first recv would return after the first line.
    """
    client = raw(server.lmtp_port)
    client.reply()
    client.cmd("LHLO mta.test")
    client.send(f"MAIL FROM:<s@remote.test>\r\nRCPT TO:<{ALICE}>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n")
    first = client.sock.recv(4096).decode().split("\r\n")
    assert [line[:3] for line in first[:4]] == ["250", "250", "250", "354"]
    client.send(message() + b".\r\n")
    assert client.file.readline().startswith(b"250 2.0.0")
    assert client.file.readline().startswith(b"250 2.0.0")


@pytest.mark.parametrize("tail", ["", "QUIT\r\n", "RSET\r\n", "BOGUS\r\n"])
def test_held_replies_are_flushed(
    server: IngestServer, raw: Callable[..., RawClient], tail: str
) -> None:
    """A held MAIL/RCPT reply goes out once no command is waiting, and before QUIT closes."""
    client = raw(server.lmtp_port)
    client.reply()
    client.cmd("LHLO mta.test")
    client.send(f"MAIL FROM:<s@remote.test>\r\nRCPT TO:<{ALICE}>\r\n{tail}")
    assert client.reply()[0].startswith("250 2.1.0")
    assert client.reply()[0].startswith("250 2.1.5")
    if tail:
        assert client.reply()[0][:1] in ("2", "5")
    if tail.startswith("QUIT"):
        assert client.sock.recv(100) == b""  # closed after the 221, nothing lost before it
    else:
        assert client.cmd("NOOP") == ["250 2.0.0 Ok"]


def test_unknown_recipient_only(server: IngestServer) -> None:
    with server.lmtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        client.sendmail("s@remote.test", [f"ghost@{DOMAIN}"], message())
    code, text = info.value.recipients[f"ghost@{DOMAIN}"]
    assert code == 550 and text.startswith(b"5.1.1")


def test_over_quota_at_rcpt(server: IngestServer) -> None:
    with server.lmtp() as client:
        assert client.sendmail("s@remote.test", [CAROL], message()) == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            client.sendmail("s@remote.test", [CAROL], message())
    code, text = info.value.recipients[CAROL]
    assert (code, text[:5]) == (452, b"4.2.2")
    assert len(server.messages(CAROL)) == 1


def test_over_quota_permanent(make_server: Callable[..., IngestServer]) -> None:
    srv = make_server(delivery={"over_quota": "permanent"})
    srv.add_account("carol", quota_messages=0)
    with srv.lmtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        client.sendmail("s@remote.test", [CAROL], message())
    assert info.value.recipients[CAROL][0] == 552
    assert info.value.recipients[CAROL][1].startswith(b"5.2.2")


def test_oversize_gets_one_reply_per_recipient(
    make_server: Callable[..., IngestServer], raw: Callable[..., RawClient]
) -> None:
    srv = make_server(smtp={"max_message_size": 2048})
    srv.add_account("alice")
    srv.add_account("bob")
    client = raw(srv.lmtp_port)
    _transaction(client, [ALICE, BOB])
    client.cmd("DATA")
    client.send(message(body="y" * 70 + "\r\n") * 1 + (b"z" * 70 + b"\r\n") * 60 + b".\r\n")
    assert client.reply()[0].startswith("552 5.3.4")
    assert client.reply()[0].startswith("552 5.3.4")
    assert client.cmd("RSET") == ["250 2.0.0 Ok"]
    assert srv.messages(ALICE) == [] and srv.messages(BOB) == []
    # The declared SIZE is refused before any data (RFC 1870 §6).
    assert client.cmd("MAIL FROM:<s@remote.test> SIZE=999999")[0].startswith("552 5.3.4")


def test_disconnect_mid_data_stores_nothing(
    server: IngestServer, raw: Callable[..., RawClient]
) -> None:
    client = raw(server.lmtp_port)
    _transaction(client, [ALICE])
    client.cmd("DATA")
    client.send(message(body="partial line\r\nmore\r\n"))
    client.sock.shutdown(socket.SHUT_RDWR)
    client.close()
    time.sleep(0.3)
    assert server.messages(ALICE) == []
    # The server is alive and the next delivery works.
    with server.lmtp() as lmtp:
        assert lmtp.sendmail("s@remote.test", [ALICE], message()) == {}
    assert len(server.messages(ALICE)) == 1


def test_unix_socket(server: IngestServer, raw: Callable[..., RawClient]) -> None:
    path = str(server.settings.lmtp.unix_socket)
    with smtplib.LMTP(path) as client:  # smtplib.LMTP connects to a path starting with "/"
        assert client.sendmail("s@remote.test", [ALICE, f"x@{DOMAIN}"], message()) == {
            f"x@{DOMAIN}": (550, b"5.1.1 <x@example.test> User unknown")
        }
    assert len(server.messages(ALICE)) == 1
    client2 = raw(path)
    _transaction(client2, [BOB])
    client2.cmd("DATA")
    client2.send(message() + b".\r\n")
    assert client2.reply()[0].startswith(f"250 2.0.0 <{BOB}>")
    # Over a Unix socket there is no peer address in the trace header.
    [stored] = server.messages(BOB)
    assert b"Received: from mta.test\r\n" in stored


def test_bad_input_gets_protocol_errors(
    server: IngestServer, raw: Callable[..., RawClient]
) -> None:
    client = raw(server.lmtp_port)
    client.reply()
    assert client.cmd("MAIL FROM:<a@b.test>")[0].startswith("503")  # LHLO first
    client.cmd("LHLO x")
    assert client.cmd("DATA")[0].startswith("503")
    assert client.cmd("RCPT TO:<a@b>")[0].startswith("503")
    assert client.cmd("MAIL FROM:<<<>")[0][:3] in ("501", "553")
    assert client.cmd("BOGUS")[0].startswith("500")
    assert client.cmd("RCPT TO:<no-at-sign>")[0][:3] in ("503", "550")
    client.cmd("MAIL FROM:<a@b.test>")
    reply = client.cmd("RCPT TO:<no-at-sign>")[0]
    assert reply[:3] in ("550", "553") and "5.1.3" in reply
    assert client.cmd("RCPT TO:<" + "a" * 600 + f"@{DOMAIN}>")[0].startswith("500")
    assert client.cmd("VRFY alice")[0].startswith("252")
    assert client.cmd("NOOP") == ["250 2.0.0 Ok"]


def test_store_failure_is_temporary(server: IngestServer, raw: Callable[..., RawClient]) -> None:
    """A write that fails (here: the Maildir's tmp/ is not a directory) is 451, then retried."""
    with server.lmtp() as client:  # create alice's Maildir
        assert client.sendmail("s@remote.test", [ALICE], message()) == {}
    maildir = server.settings.data_dir / "mail" / DOMAIN / "alice"
    assert (maildir / "tmp").is_dir(), sorted(p.name for p in maildir.iterdir())
    (maildir / "tmp").rename(maildir / "tmp.saved")
    (maildir / "tmp").write_bytes(b"not a directory")
    try:
        client = raw(server.lmtp_port)
        _transaction(client, [ALICE, BOB])
        client.cmd("DATA")
        client.send(message(subject="retry me") + b".\r\n")
        first, second = client.reply(), client.reply()
        assert first[0].startswith(f"451 4.3.0 <{ALICE}>"), first
        assert second[0].startswith(f"250 2.0.0 <{BOB}>"), second
    finally:
        (maildir / "tmp").unlink()
        (maildir / "tmp.saved").rename(maildir / "tmp")
    with server.lmtp() as lmtp:  # the MTA's retry succeeds
        assert lmtp.sendmail("s@remote.test", [ALICE], message(subject="retry me")) == {}
    assert [b"Subject: retry me" in m for m in server.messages(ALICE)] == [False, True]
