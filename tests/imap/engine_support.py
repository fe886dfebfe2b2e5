"""Helpers for the FETCH/SEARCH/SORT/THREAD engine tests: a real Maildir store on a temporary
directory (no mocked store), commands parsed by the real IMAP parser, and responses encoded
by the real encoder with every streamed body read back."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from mailhub.imap.proto import NEED_DATA, PAUSED, CommandParser, NeedContinuation
from mailhub.imap.proto.commands import Command
from mailhub.imap.proto.responses import Response, encode
from mailhub.imap.proto.values import BodyRef
from mailhub.store.maildir import MaildirMailbox, MaildirMailstore
from mailhub.store.model import MessageInfo, NewMessage

ADDRESS = "alice@example.org"


@pytest.fixture(name="mailbox")
async def mailbox_fixture(tmp_path: Path) -> AsyncIterator[MaildirMailbox]:
    """INBOX of a fresh account in a real Maildir store."""
    store = MaildirMailstore(tmp_path / "mail")
    account = await store.open_account(ADDRESS)
    mb = await account.open_mailbox("INBOX")
    yield mb
    await store.close()


async def add(
    mb: MaildirMailbox,
    *datas: bytes,
    flags: Sequence[str] = (),
    when: dt.datetime | float | None = None,
) -> list[MessageInfo]:
    """Append messages through the store API."""
    ts = when.timestamp() if isinstance(when, dt.datetime) else when
    return await mb.append([NewMessage(d, frozenset(flags), ts) for d in datas])


def command(line: bytes | str) -> Command:
    """Parse one command line with the real parser."""
    if isinstance(line, str):
        line = line.encode()
    if not line.endswith(b"\r\n"):
        line += b"\r\n"
    p = CommandParser()
    p.feed(line)
    while True:
        ev = p.next_event()
        if ev is PAUSED:
            p.resume()
            continue
        if isinstance(ev, NeedContinuation):
            continue
        assert ev is not NEED_DATA, line
        assert isinstance(ev, Command), ev
        return ev


async def wire(resp: Response, *, utf8: bool = False) -> bytes:
    """The exact bytes a connection sends for ``resp`` (BodyRefs streamed and checked)."""
    out = bytearray()
    for piece in encode(resp, utf8=utf8):
        if isinstance(piece, BodyRef):
            n = 0
            async for chunk in piece.chunks():
                out += chunk
                n += len(chunk)
            assert n == piece.size, (n, piece.size)
        else:
            out += piece
    return bytes(out)


def msg(
    subject: str = "hello",
    body: str = "body text\r\n",
    *,
    sender: str = "Bob <bob@example.org>",
    to: str = "alice@example.org",
    date: str | None = "Mon, 7 Feb 1994 21:52:25 -0800",
    extra: str = "",
    message_id: str | None = None,
) -> bytes:
    """A small CRLF message."""
    head = f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
    if date is not None:
        head += f"Date: {date}\r\n"
    if message_id is not None:
        head += f"Message-ID: <{message_id}>\r\n"
    return (head + extra + "\r\n" + body).encode("utf-8")
