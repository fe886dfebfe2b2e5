"""Regression tests for what real clients are known to need (issue 3, "What real clients are
known to need"), each against a running server."""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable

from conftest import msg
from imap_raw import RawImap, wait_line
from mailhub_proc import MailhubServer


def _fill(c: RawImap, n: int, size: int = 0) -> None:
    for i in range(n):
        m = msg(f"r{i}", body="x" * size + "\r\n")
        c.send(b"ap APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
        assert c.until_tagged("ap")[-1].startswith(b"ap OK")


def test_ios_pipelines_command_right_after_done(raw: Callable[..., RawImap]) -> None:
    c = raw()
    _fill(c, 1)
    c.cmd("s SELECT INBOX")
    c.send(b"i IDLE\r\n")
    assert c.line() == b"+ idling"
    c.send(b"DONE\r\nf UID FETCH 1:* (FLAGS)\r\ni2 IDLE\r\n")
    assert c.until_tagged("i")[-1] == b"i OK IDLE terminated"
    out = c.until_tagged("f")
    assert out[-1] == b"f OK FETCH completed" or out[-1].startswith(b"f OK")
    assert c.line() == b"+ idling"
    c.send(b"DONE\r\n")
    assert c.until_tagged("i2")[-1] == b"i2 OK IDLE terminated"


def test_compress_deflate_flushes_every_response(raw: Callable[..., RawImap]) -> None:
    """Each response must be decodable on its own (Z_SYNC_FLUSH), or clients such as iOS
    wait forever for the rest of a reply that sits in the server's deflate buffer."""
    c = raw()
    _fill(c, 30, size=3000)
    out = c.cmd("z COMPRESS DEFLATE")
    assert out == [b"z OK DEFLATE active"]
    c.start_compress()
    # every reply arrives complete without the client sending anything else
    assert c.cmd("a NOOP") == [b"a OK NOOP completed"]
    out = c.cmd("b SELECT INBOX")
    assert b"* 30 EXISTS" in out
    out = c.cmd("c FETCH 1:* (BODY.PEEK[])")
    assert len(out) == 31 and out[-1].startswith(b"c OK")
    assert c.cmd("d COMPRESS DEFLATE")[-1].startswith(b"d NO [COMPRESSIONACTIVE]")
    caps = c.cmd("e CAPABILITY")[0]
    assert b"COMPRESS=DEFLATE" not in caps
    # untagged IDLE updates are flushed too
    c.send(b"i IDLE\r\n")
    assert c.line(timeout=5) == b"+ idling"
    other = raw()
    other.cmd("s SELECT INBOX")
    other.cmd("x STORE 3 +FLAGS (\\Flagged)")
    ln, took = wait_line(c, rb"FETCH", 3)
    assert b"\\Flagged" in ln and took < 1.0
    c.send(b"DONE\r\n")
    assert c.until_tagged("i")[-1] == b"i OK IDLE terminated"


def test_compress_then_pipelined_compressed_command(raw: Callable[..., RawImap]) -> None:
    """A client may send its first compressed bytes right behind COMPRESS."""
    c = raw()
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = deflate.compress(b"n NOOP\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH)
    c.sock.sendall(b"z COMPRESS DEFLATE\r\n" + first)
    assert c.line() == b"z OK DEFLATE active"
    c.start_compress()
    c.deflate = deflate
    assert c.until_tagged("n") == [b"n OK NOOP completed"]


def test_esearch_tag_is_quoted(raw: Callable[..., RawImap]) -> None:
    c = raw()
    _fill(c, 3)
    c.cmd("s SELECT INBOX")
    out = c.cmd("a1 SEARCH RETURN (MIN MAX COUNT) ALL")
    assert out[0] == b'* ESEARCH (TAG "a1") MIN 1 MAX 3 COUNT 3'
    out = c.cmd("a2 UID SEARCH RETURN () ALL")
    assert out[0] == b'* ESEARCH (TAG "a2") UID ALL 1:3'


def test_ios_changedsince_zero(raw: Callable[..., RawImap]) -> None:
    c = raw()
    _fill(c, 2)
    c.cmd("s SELECT INBOX")
    out = c.cmd("f UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")
    assert out[-1].startswith(b"f OK"), out
    fetches = [ln for ln in out if b"FETCH (" in ln]
    assert len(fetches) == 2 and all(b"MODSEQ" in ln for ln in fetches)


def test_thunderbird_unencoded_ampersand_after_utf8_accept(raw: Callable[..., RawImap]) -> None:
    c = raw()
    c.cmd("e ENABLE UTF8=ACCEPT")
    assert c.cmd('a CREATE "Q&A"')[-1] == b"a OK CREATE completed"
    out = c.cmd('b LIST "" "Q*"')
    assert out[0] == b'* LIST (\\HasNoChildren) "/" "Q&A"'
    assert c.cmd('c SELECT "Q&A"')[-1].startswith(b"c OK")
    # a rev1 session sees the same folder in modified UTF-7
    d = raw()
    assert d.cmd('d LIST "" "Q*"')[0] == b'* LIST (\\HasNoChildren) "/" "Q&-A"'


def test_outlook_xlist(raw: Callable[..., RawImap]) -> None:
    c = raw()
    out = c.cmd('x XLIST "" "%"')
    flags = {ln.rsplit(b" ", 1)[1]: ln for ln in out[:-1]}
    assert b"\\Inbox" in flags[b'"INBOX"'] and b"\\Trash" in flags[b'"Trash"']
    assert b"\\Drafts" in flags[b'"Drafts"'] and b"\\Spam" in flags[b'"Junk"']


def test_idle_keepalives_are_minutes_apart(mailhub_factory: Callable[..., MailhubServer]) -> None:
    """Phones re-IDLE every 24-29 minutes; an IDLE left alone for several seconds with the
    default settings gets no keep-alive at all."""
    server = mailhub_factory()
    c = RawImap(server.host, server.ports["imap"])
    c.login(server.user, server.password)
    c.cmd("s SELECT INBOX")
    c.send(b"i IDLE\r\n")
    assert c.line() == b"+ idling"
    t0 = time.monotonic()
    try:
        ln = c.line(timeout=4)
        raise AssertionError(f"unexpected line during IDLE: {ln!r}")
    except TimeoutError:
        pass
    assert time.monotonic() - t0 >= 3.9
    c.send(b"DONE\r\n")
    assert c.until_tagged("i")[-1] == b"i OK IDLE terminated"


def test_big_fetch_is_streamed(raw: Callable[..., RawImap]) -> None:
    """A multi-megabyte body arrives intact (streamed from the store in chunks)."""
    c = raw()
    body = ("0123456789abcdef" * 64 + "\r\n") * 3000  # ~3 MB
    m = msg("big", body=body)
    c.send(b"ap APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
    assert c.until_tagged("ap")[-1].startswith(b"ap OK")
    c.cmd("s SELECT INBOX")
    out = c.cmd("f FETCH 1 (BODY.PEEK[])")
    assert re.match(rb"\* 1 FETCH \(BODY\[\] \{%d\}\r\n" % len(m), out[0])
    assert out[0].endswith(m + b")")
