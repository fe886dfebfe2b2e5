"""Bad input over real sockets: random and mutated command lines never produce a traceback,
never kill the server, and other clients keep being served; failed logins are delayed."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from imap_raw import RawImap
from mailhub_proc import MailhubServer

SEEDS = [
    b"a LOGIN alice@example.com alice-Secret-42",
    b"b SELECT INBOX",
    b"c FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    b'd LIST "" "*" RETURN (STATUS (MESSAGES))',
    b"e UID STORE 1:* +FLAGS.SILENT (\\Seen)",
    b"f SEARCH OR UNSEEN FROM bob SINCE 1-Jan-2020",
    b"g APPEND INBOX (\\Seen) {5+}\r\nhello",
    b"h STATUS INBOX (MESSAGES UIDNEXT)",
    b"i UID MOVE 1 Trash",
    b"j ENABLE QRESYNC",
    b"k SELECT INBOX (QRESYNC (1 2 1:5))",
    b"l CREATE foo (USE (\\Sent))",
    b'm ID ("name" "x")',
    b"n EXPUNGE",
    b"o NOOP",
]
ALPHABET = b' ()[]{}<>"\\*%$+-:.,~0123456789abcdefINBOXUIDFETCH\r\x00\xff'


def _mutate(rng: random.Random, line: bytes) -> bytes:
    data = bytearray(line)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randrange(len(data) + 1)
        if op < 0.4 and data:
            del data[min(pos, len(data) - 1)]
        elif op < 0.8:
            data[pos:pos] = bytes([rng.choice(ALPHABET)])
        else:
            data[pos:pos] = rng.choice(SEEDS)[: rng.randint(0, 20)]
    return bytes(data).replace(b"\n", b" ")


def test_random_and_mutated_lines_never_break_the_server(
    mailhub_factory: Callable[..., MailhubServer],
) -> None:
    server = mailhub_factory(
        config={"limits": {"max_protocol_errors": 1000000, "failed_login_delay": 0.0}}
    )
    rng = random.Random(20261126)
    fuzz = RawImap(server.host, server.ports["imap"])
    fuzz.login(server.user, server.password)
    sent = 0
    for _ in range(40):
        batch = []
        for _ in range(50):
            if rng.random() < 0.3:
                line = bytes(rng.choice(ALPHABET) for _ in range(rng.randint(1, 60)))
                line = line.replace(b"\n", b" ")
            else:
                line = _mutate(rng, rng.choice(SEEDS))
            # literals announced by mutation would swallow the next lines: make them
            # non-synchronising and short by ending the batch line plainly
            batch.append(line)
        payload = b"\r\n".join(batch) + b"\r\nzz NOOP\r\n"
        try:
            fuzz.send(payload)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                ln = fuzz.line(timeout=20)
                if ln.startswith(b"zz "):
                    break
        except (ConnectionError, OSError, TimeoutError):
            # a fuzzed LOGOUT, a huge literal or COMPRESS may end this connection: reconnect
            fuzz.close()
            fuzz = RawImap(server.host, server.ports["imap"])
            fuzz.login(server.user, server.password)
        sent += len(batch)
        # another client is served meanwhile
        other = RawImap(server.host, server.ports["imap"])
        assert other.cmd("o1 NOOP") == [b"o1 OK NOOP completed"]
        other.close()
    assert sent == 2000
    assert "server bug" not in server.log and "Traceback" not in server.log


def test_failed_login_is_delayed(mailhub_factory: Callable[..., MailhubServer]) -> None:
    server = mailhub_factory(config={"limits": {"failed_login_delay": 0.6}})
    c = RawImap(server.host, server.ports["imap"])
    t = time.monotonic()
    assert c.cmd('a LOGIN "alice@example.com" "nope"')[-1].startswith(b"a NO")
    assert time.monotonic() - t >= 0.55
    assert c.cmd('b LOGIN "alice@example.com" "alice-Secret-42"')[-1].startswith(b"b OK")
