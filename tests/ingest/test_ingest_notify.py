"""Delivered mail reaches watchers within one second: change-bus subscribers, IMAP IDLE."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from ingest_harness import DOMAIN, IngestServer, free_port, message

from mailhub.store.changes import MessagesAdded

ALICE = f"alice@{DOMAIN}"
HAVE_IMAP = importlib.util.find_spec("mailhub.imap.server") is not None


def _watch(srv: IngestServer) -> tuple[Any, Any]:
    """Subscribe on the server's loop; returns (subscription, future of (wake time, changes))."""

    async def subscribe() -> Any:
        # Hold the folder open, as an IMAP or POP3 session does: the store watches open folders.
        account = await srv.ctx.store.open_account(ALICE)
        srv.extra["inbox"] = await account.open_mailbox("INBOX")
        return srv.ctx.store.bus.subscribe(ALICE, "INBOX")

    sub = srv.run(subscribe())

    async def wait() -> tuple[float, list[Any]]:
        assert await sub.wait(timeout=10)
        woke = time.monotonic()
        changes, _ = sub.drain()
        return woke, changes

    return sub, asyncio.run_coroutine_threadsafe(wait(), srv.loop)


def test_lmtp_delivery_reaches_bus_subscriber(server: IngestServer) -> None:
    sub, fut = _watch(server)
    try:
        with server.lmtp() as client:
            client.ehlo("mta.test")
            client.mail("s@remote.test")
            client.rcpt(ALICE)
            sent = time.monotonic()
            code, text = client.data(message())
        assert code == 250
        woke, changes = fut.result(5)
        assert woke - sent < 1.0
        added = [c for c in changes if isinstance(c, MessagesAdded)]
        assert added and added[0].mailbox == "INBOX"
        assert f"uid={added[0].messages[0].uid}".encode() in text
    finally:
        server.loop.call_soon_threadsafe(sub.close)


def test_mailhub_deliver_cli_reaches_running_server(server: IngestServer) -> None:
    """Another process (``mailhub deliver``) delivers; the server's watcher publishes it."""
    sub, fut = _watch(server)
    try:
        env = {**os.environ, "MAILHUB_DATA_DIR": str(server.settings.data_dir)}
        sent = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "mailhub", "deliver", "-f", "s@remote.test", ALICE],
            input=message().replace(b"\r\n", b"\n"),  # a pipe from an MTA carries LF
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        woke, changes = fut.result(10)
        assert woke - sent < 3.0  # includes starting a Python process
        assert any(isinstance(c, MessagesAdded) for c in changes)
        [stored] = server.messages(ALICE)
        assert stored.startswith(b"Return-Path: <s@remote.test>\r\nDelivered-To: " + ALICE.encode())
    finally:
        server.loop.call_soon_threadsafe(sub.close)


@pytest.mark.skipif(not HAVE_IMAP, reason="the IMAP listener is not there yet")
def test_lmtp_delivery_reaches_imap_idle(make_server: Callable[..., IngestServer]) -> None:
    srv = make_server(frontends=("ingest", "imap"), imap={"port": free_port(), "tls_port": 0})
    srv.add_account("alice")
    sock = socket.create_connection(("127.0.0.1", srv.settings.imap.port), timeout=10)
    f = sock.makefile("rb")

    def until(prefix: bytes) -> bytes:
        while True:
            line = f.readline()
            assert line, "IMAP server closed the connection"
            if line.startswith(prefix):
                return line

    until(b"* OK")
    sock.sendall(f"a LOGIN {ALICE} secret\r\n".encode())
    until(b"a OK")
    sock.sendall(b"b SELECT INBOX\r\n")
    until(b"b OK")
    sock.sendall(b"c IDLE\r\n")
    until(b"+")
    with srv.lmtp() as client:
        assert client.sendmail("s@remote.test", [ALICE], message()) == {}
        sent = time.monotonic()
    line = until(b"* 1 EXISTS")
    assert time.monotonic() - sent < 1.0, line
    sock.sendall(b"DONE\r\n")
    until(b"c OK")
    sock.close()
