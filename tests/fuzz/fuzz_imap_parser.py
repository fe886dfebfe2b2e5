#!/usr/bin/env python3
"""Fuzz the sans-I/O IMAP command parser with random and mutated command lines.

Usage::

    python tests/fuzz/fuzz_imap_parser.py 1000000 [--seed N] [--quiet]

Each iteration produces one command line: random bytes, a seed command mutated (bit flips,
insertions, deletions, splices, dictionary tokens such as ``{99999999}`` or ``~{3}``), or a
soup of grammar tokens. Lines are fed to long-lived parsers in random chunk sizes, with the
modes a real session uses (IDLE, AUTHENTICATE, STARTTLS/COMPRESS hand-over, UTF-8 names).
Every ``ParseError`` is rendered to its reply line. Any exception escaping the parser or the
encoder, or buffered input growing beyond the limits, is a failure: the offending input is
written to ``fuzz-crash-<n>.bin`` and the exit status is 1.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mailhub.imap.proto import (
    NEED_DATA,
    PAUSED,
    AuthResponse,
    CommandParser,
    IdleDone,
    Limits,
    NeedContinuation,
    ParseError,
    to_bytes,
)
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.responses import error_response

LIMITS = Limits(
    max_line_length=2048,
    max_literal_size=8192,
    max_arg_literal_size=1024,
    max_command_size=16384,
    max_nonsync_literal=4096,
)
MAX_CHUNK = 512

SEEDS: list[bytes] = [
    b"a1 CAPABILITY",
    b"a2 NOOP",
    b"a3 LOGOUT",
    b"a4 STARTTLS",
    b"a5 AUTHENTICATE PLAIN AGpvZQBwYXNz",
    b"a6 AUTHENTICATE LOGIN",
    b'a7 LOGIN "joe@example.org" {6}\r\nsecret',
    b"a8 ENABLE UTF8=ACCEPT CONDSTORE QRESYNC IMAP4rev2",
    b"a9 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 (1,5 3,9)))",
    b"b1 EXAMINE Archive/2020 (CONDSTORE)",
    b"b2 CREATE Sent (USE (\\Sent))",
    b"b3 DELETE Entw&APw-rfe",
    b'b4 RENAME "Old Name" {8}\r\nNew/Name',
    b"b5 SUBSCRIBE INBOX/Sub",
    b"b6 UNSUBSCRIBE Q&A",
    b'b7 LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" "%") RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN SIZE))',  # noqa: E501
    b'b8 LSUB "" *',
    b'b9 XLIST "" %',
    b"c1 NAMESPACE",
    b"c2 STATUS Drafts (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT HIGHESTMODSEQ APPENDLIMIT)",  # noqa: E501
    b'c3 APPEND Drafts (\\Seen $Label1) " 7-Feb-1994 21:52:25 -0800" {11}\r\nHello World',
    b"c4 APPEND INBOX {3+}\r\nabc ~{3+}\r\na\x00b UTF8 (~{2}\r\nxy)",
    b"c5 IDLE",
    b'c6 GETQUOTA ""',
    b"c7 GETQUOTAROOT INBOX",
    b'c8 SETQUOTA "" (STORAGE 512 MESSAGE 100)',
    b'c9 ID ("name" "iPhone Mail" "version" NIL)',
    b"d1 COMPRESS DEFLATE",
    b"d2 CHECK",
    b"d3 CLOSE",
    b"d4 UNSELECT",
    b"d5 EXPUNGE",
    b"d6 UID EXPUNGE 3:5,7",
    b"d7 SEARCH RETURN (MIN MAX COUNT ALL SAVE) CHARSET UTF-8 OR (FROM joe SINCE 1-Jan-2020) NOT UID 1:5,$",  # noqa: E501
    b'd8 UID SEARCH HEADER X-Foo "" MODSEQ "/flags/\\\\draft" all 5 YOUNGER 30 OLDER 60 LARGER 100 SMALLER 9',  # noqa: E501
    b"d9 SEARCH ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN",  # noqa: E501
    b'e1 SEARCH KEYWORD $Junk UNKEYWORD x BCC a CC b TO c SUBJECT {4}\r\nt\xc3\xa9t BODY x TEXT y ON "1-Feb-1994"',  # noqa: E501
    b"e2 SEARCH SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000 BEFORE 2-Feb-2002 (ALL) 1,2:*",  # noqa: E501
    b"e3 FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE UID MODSEQ)",
    b"e4 UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From To Subject)]<0.1024> BINARY[1.2] BINARY.SIZE[1]) (CHANGEDSINCE 5 VANISHED)",  # noqa: E501
    b'e5 FETCH 2 (BODY[1.HEADER.FIELDS.NOT ("X-Spam")] BODY[2.MIME] BODY[TEXT]<10.5> RFC822 RFC822.HEADER RFC822.TEXT)',  # noqa: E501
    b"e6 FETCH 1:3 ALL",
    b"e7 FETCH * FULL",
    b"e8 STORE 2:4 +FLAGS (\\Deleted)",
    b"e9 UID STORE 1 (UNCHANGEDSINCE 320162338) -FLAGS.SILENT \\Seen $Junk",
    b"f1 COPY 2:4 MEETING",
    b"f2 UID COPY $ Trash",
    b"f3 MOVE 1 inbox",
    b"f4 UID MOVE 42:69 foo",
    b"f5 SORT (REVERSE DATE SUBJECT DISPLAYFROM) UTF-8 ALL",
    b"f6 UID SORT RETURN (MIN COUNT) (ARRIVAL) US-ASCII SINCE 1-Jan-2020",
    b"f7 THREAD REFERENCES UTF-8 ALL",
    b"f8 UID THREAD ORDEREDSUBJECT UTF-8 UNSEEN",
    b"DONE",
    b"am9lAHBhc3M=",
    b"*",
    b"",
]
DICTIONARY: list[bytes] = [
    b" ",
    b"\r\n",
    b"\n",
    b"\r",
    b"(",
    b")",
    b"[",
    b"]",
    b"<",
    b">",
    b"{",
    b"}",
    b'"',
    b"\\",
    b"*",
    b"%",
    b"$",
    b"~",
    b"+",
    b"-",
    b".",
    b",",
    b":",
    b"NIL",
    b"UID ",
    b"{0}\r\n",
    b"{5}\r\n",
    b"{3+}\r\n",
    b"~{2}\r\n",
    b"~{4+}\r\n",
    b"{99999999}\r\n",
    b"{4097+}\r\n",
    b"{18446744073709551616}\r\n",
    b"{1",
    b"1:*",
    b"*:1",
    b"4294967295",
    b"4294967296",
    b"0",
    b"BODY[",
    b"BODY.PEEK[",
    b"HEADER.FIELDS (",
    b"<0.",
    b"OR ",
    b"NOT ",
    b"(((((",
    b")))))",
    b"&",
    b"&-",
    b"&AOQ-",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
    b"INBOX",
    b"inbox",
    b"..",
    b"../",
    b"/",
    b"DONE",
    b"CHARSET ",
    b"RETURN (",
    b"UTF8 (",
    b"MODSEQ ",
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 5)):
        op = rng.randrange(8)
        pos = rng.randint(0, len(buf))
        if op == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2 and buf:
            end = min(len(buf), pos + rng.randint(1, 8))
            del buf[pos:end]
        elif op == 3:
            buf[pos:pos] = rng.choice(DICTIONARY)
        elif op == 4:
            other = rng.choice(SEEDS)
            cut = rng.randint(0, len(other))
            buf = buf[:pos] + other[cut:]
        elif op == 5 and buf:
            start = rng.randrange(len(buf))
            piece = buf[start : start + rng.randint(1, 16)]
            buf[pos:pos] = piece * rng.randint(1, 20)
        elif op == 6 and buf:
            i = rng.randrange(len(buf))
            buf[i] = rng.choice(b'0123456789{}()[]<>" \\*%$~+')
        else:
            buf[pos:pos] = rng.choice(DICTIONARY) * rng.randint(1, 40)
    return bytes(buf)


def make_line(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.15:
        line = bytes(rng.randrange(256) for _ in range(rng.randint(0, 120)))
    elif kind < 0.30:
        line = b"".join(rng.choice(DICTIONARY) for _ in range(rng.randint(1, 30)))
    elif kind < 0.40:
        line = rng.choice(SEEDS)
    else:
        line = mutate(rng, rng.choice(SEEDS))
    if rng.random() < 0.01:
        line += b"x" * rng.randint(2000, 5000)  # over the line limit
    return line + rng.choice((b"\r\n", b"\r\n", b"\r\n", b"\n"))


class Failure(Exception):
    pass


def drive(p: CommandParser, rng: random.Random, data: bytes, stats: Counter[str]) -> None:
    """Feed ``data`` in random chunks and react to events like a session would."""
    i = 0
    while i < len(data):
        n = rng.randint(1, MAX_CHUNK)
        p.feed(data[i : i + n])
        i += n
        while True:
            ev = p.next_event()
            if ev is NEED_DATA:
                break
            if ev is PAUSED:
                stats["paused"] += 1
                choice = rng.randrange(4)
                if choice == 0:
                    p.start_idle()
                elif choice == 1:
                    p.expect_auth_response()
                elif choice == 2 and rng.random() < 0.2:
                    p.take_buffered()
                else:
                    p.resume()
                continue
            if isinstance(ev, ParseError):
                stats["error"] += 1
                line = to_bytes(error_response(ev))
                if not line.endswith(b"\r\n") or line.count(b"\r\n") != 1:
                    raise Failure(f"bad error reply {line!r}")
            elif isinstance(ev, NeedContinuation):
                stats["continuation"] += 1
            elif isinstance(ev, c.Command):
                stats["command"] += 1
                if isinstance(ev, c.Enable):
                    p.utf8_names = not p.utf8_names
            elif isinstance(ev, (IdleDone, AuthResponse)):
                stats["mode-event"] += 1
            else:
                raise Failure(f"unexpected event {ev!r}")
        bound = LIMITS.max_line_length + MAX_CHUNK + 64
        if p.buffered > bound and p._mode == "line":
            raise Failure(f"buffered {p.buffered} bytes")


def run(
    iterations: int, seed: int, *, quiet: bool = False, crash_dir: Path | None = None
) -> Counter[str]:
    rng = random.Random(seed)
    stats: Counter[str] = Counter()
    parser = CommandParser(LIMITS)
    t0 = time.perf_counter()
    done = 0
    while done < iterations:
        batch = [make_line(rng) for _ in range(min(rng.randint(1, 20), iterations - done))]
        done += len(batch)
        data = b"".join(batch)
        stats["lines"] += len(batch)
        stats["bytes"] += len(data)
        try:
            drive(parser, rng, data, stats)
        except Exception as exc:
            stats["crashes"] += 1
            path = (crash_dir or Path.cwd()) / f"fuzz-crash-{stats['crashes']}.bin"
            path.write_bytes(data)
            print(f"CRASH {type(exc).__name__}: {exc} (input saved to {path})", file=sys.stderr)
            parser = CommandParser(LIMITS)
        if rng.random() < 0.02:
            parser = CommandParser(LIMITS)  # a new connection now and then
            stats["connections"] += 1
        if not quiet and done % 100000 < len(batch):
            rate = done / (time.perf_counter() - t0)
            print(f"{done} lines, {rate:,.0f} lines/s, {dict(stats)}", flush=True)
    stats["seconds"] = int(time.perf_counter() - t0)
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("iterations", type=int, help="number of command lines to generate")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    stats = run(args.iterations, args.seed, quiet=args.quiet)
    print("result:", dict(stats))
    return 1 if stats["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
