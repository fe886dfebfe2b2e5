"""The demo's recording clients, against a scripted peer on a real loopback socket.

Properties: whatever the server sends, a transcript never holds the secret; IMAP literals are
read whole (whatever bytes they hold) and the line after them is the response; a POP3
multi-line answer comes back exactly as the lines before byte-stuffing.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given, settings
from hypothesis import strategies as st

from mailhub.demo.wire import REDACTED, Endpoint, ImapClient, Pop3Client

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=60,
)
_secret = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=4, max_size=20
)


@contextmanager
def peer(script: bytes) -> Iterator[tuple[Endpoint, list[bytes]]]:
    """A one-connection server that sends ``script`` and records what the client sends."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.sendall(script)
            conn.settimeout(2)
            try:
                while chunk := conn.recv(65536):
                    received.append(chunk)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield Endpoint("127.0.0.1", srv.getsockname()[1]), received
    finally:
        thread.join(3)  # the client has closed: the peer has read everything it sent
        srv.close()


@settings(max_examples=40, deadline=None)
@given(lines=st.lists(_text, max_size=8), secret=_secret)
def test_transcript_never_holds_the_secret(lines: list[str], secret: str) -> None:
    sent = [f"* OK {ln} {secret} {ln} ." for ln in lines]  # never ends like a literal
    script = "".join(f"{s}\r\n" for s in ["* OK ready", *sent, "a1 OK done"]).encode()
    log: list[tuple[str, str, str]] = []
    with peer(script) as (ep, _received):
        client = ImapClient(lambda d, k, t: log.append((d, k, t)), "phone", ep, secret)
        client.tag_no = 0
        client.send_line(f"p1 LOGIN me {secret}", f"p1 LOGIN me {REDACTED}")
        for _ in sent:
            client.read_response_line(2)
        client.close()
    assert all(secret not in text for _d, _k, text in log)
    assert [t for _d, k, t in log if k == "S"][1:] == [s.replace(secret, REDACTED) for s in sent]


@settings(max_examples=40, deadline=None)
@given(body=st.binary(max_size=300))
def test_imap_literal_read_whole(body: bytes) -> None:
    script = (
        b"* OK ready\r\n* 1 FETCH (BODY[] {"
        + str(len(body)).encode()
        + b"}\r\n"
        + body
        + b" FLAGS (\\Seen))\r\np1 OK FETCH completed\r\n"
    )
    log: list[tuple[str, str, str]] = []
    with peer(script) as (ep, _received):
        client = ImapClient(lambda d, k, t: log.append((d, k, t)), "phone", ep, None)
        lines = client.command("FETCH 1 (BODY[])")
        client.close()
    assert lines == [" FLAGS (\\Seen))", "p1 OK FETCH completed"]
    content = [t for _d, k, t in log if k == "s"]
    assert "\r\n".join(content) == body.decode("utf-8", "replace").removesuffix("\r\n")


@settings(max_examples=40, deadline=None)
@given(lines=st.lists(st.text(alphabet="ab. \t", max_size=6), max_size=10))
def test_pop3_multiline_unstuffed(lines: list[str]) -> None:
    stuffed = "".join(("." + ln if ln.startswith(".") else ln) + "\r\n" for ln in lines)
    script = f"+OK POP3 ready\r\n+OK listing\r\n{stuffed}.\r\n".encode()
    with peer(script) as (ep, received):
        client = Pop3Client(lambda d, k, t: None, "desktop", ep, None)
        answer = client.command("UIDL", multi=True)
        client.close()
    assert answer == ["+OK listing", *lines]
    assert b"".join(received).startswith(b"UIDL\r\n")
