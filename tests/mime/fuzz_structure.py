"""Mutation fuzzer for the MIME structure parser and the renderers built on it.

Run directly for a long campaign (``python tests/mime/fuzz_structure.py 200000``); the test
suite runs a short one through :func:`run`. Each case mutates a corpus message (byte flips,
splices between messages, inserted boundary/header tokens, truncation, CRLF<->LF changes),
then parses it, checks the offset invariants, renders ENVELOPE/BODY/BODYSTRUCTURE, reads
them back as IMAP syntax and extracts every section. Any exception is a failure.
"""

from __future__ import annotations

import contextlib
import pathlib
import random
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent))
    sys.path.insert(0, str(HERE.parent))

from mailhub.imap.render import body, bodystructure, envelope  # noqa: E402
from mailhub.mime.sections import (  # noqa: E402
    Section,
    SectionError,
    binary,
    extract,
    part_numbers,
)
from mailhub.mime.structure import parse  # noqa: E402
from mailhub.mime.text import body_texts, decode_header  # noqa: E402

try:
    from tests.mime.imapsyntax import read
    from tests.mime.test_structure import check_invariants
except ImportError:  # run as a script from another directory
    from mime.imapsyntax import read  # type: ignore[no-redef]
    from mime.test_structure import check_invariants  # type: ignore[no-redef]

TOKENS = [
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"--",
    b"--b1_alt",
    b"--outer--",
    b"--inner\r\n",
    b"Content-Type: multipart/mixed; boundary=q\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"\r\n--q\r\n",
    b"\r\n--q--\r\n",
    b'"',
    b"(",
    b")",
    b"<",
    b">",
    b":",
    b";",
    b"=?utf-8?b?",
    b"?=",
    b"\x00",
    b"\xff",
    b"*0*=",
    b"boundary=",
]


def mutate(rng: random.Random, corpus: list[bytes]) -> bytes:
    data = bytearray(rng.choice(corpus))
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        pos = rng.randint(0, len(data))
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[pos:pos] = rng.choice(TOKENS)
        elif op == 2:
            other = rng.choice(corpus)
            a = rng.randint(0, len(other))
            data[pos:pos] = other[a : a + rng.randint(0, 400)]
        elif op == 3:
            del data[pos : pos + rng.randint(1, 60)]
        elif op == 4:
            data = data[:pos]
        else:
            data = bytearray(bytes(data).replace(b"\r\n", b"\n"))
    return bytes(data)


def check(data: bytes) -> None:
    root = parse(data)
    check_invariants(data, root)
    for value in (bodystructure(root), body(root), envelope(root.fields)):
        read(value)
    assert extract(data, root, Section()) == data
    for num, part in part_numbers(root):
        for text in (None, "MIME", "HEADER", "TEXT"):
            extract(data, root, Section(num, text))
        extract(data, root, Section(num, "HEADER.FIELDS", (b"subject",)))
        with contextlib.suppress(SectionError):
            binary(data, root, num)
        if part.message is not None:
            read(envelope(part.message.fields))
    decode_header(data[: root.body_start])
    for _ in body_texts(data, root):
        pass


def run(iterations: int, seed: int = 0) -> int:
    corpus = [f.read_bytes() for f in sorted((HERE / "corpus").glob("*.eml"))]
    rng = random.Random(seed)
    for i in range(iterations):
        data = mutate(rng, corpus)
        try:
            check(data)
        except Exception as e:
            raise AssertionError(f"case {i} (seed {seed}) failed on {data!r}") from e
    return iterations


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else int(time.time())
    t = time.perf_counter()
    run(n, seed)
    print(f"{n} cases, seed {seed}, {time.perf_counter() - t:.1f}s, no failure")
