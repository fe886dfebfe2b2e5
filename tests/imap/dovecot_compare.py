"""Run the same IMAP commands against mailhub and against Debian's Dovecot (PREAUTH over a
pipe, tests/support/dovecot_preauth.py) and return both answers, command by command."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from imap_raw import RawImap

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from support import dovecot_preauth

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


def append_line(tag: str, data: bytes, flags: str = "", date: str | None = None) -> bytes:
    """APPEND with a LITERAL+ literal (both servers accept it without a continuation)."""
    d = f' "{date}"' if date else ""
    return f"{tag} APPEND INBOX ({flags}){d} {{{len(data)}+}}\r\n".encode() + data


def literalize(line: str) -> bytes:
    """Quoted strings with non-ASCII characters become LITERAL+ literals (7-bit safe)."""

    def sub(m: re.Match[str]) -> str:
        raw = m.group(1).encode("utf-8")
        if raw.isascii():
            return m.group(0)
        return f"\x00LIT{len(raw)}\x00" + m.group(1)

    text = re.sub(r'"([^"]*)"', sub, line)
    out = bytearray()
    parts = re.split(r"\x00LIT(\d+)\x00", text)
    out += parts[0].encode()
    for i in range(1, len(parts), 2):
        n = int(parts[i])
        out += b"{%d+}\r\n" % n
        out += parts[i + 1].encode("utf-8")
    return bytes(out)


def split_lines(data: bytes) -> list[bytes]:
    """Response lines with literals inlined (like ``RawImap.line``)."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        cur = b""
        while True:
            end = data.find(b"\r\n", pos)
            if end < 0:
                return out
            part = data[pos : end + 2]
            pos = end + 2
            cur += part
            m = _LITERAL.search(part)
            if not m:
                break
            n = int(m.group(1))
            cur += data[pos : pos + n]
            pos += n
        out.append(cur[:-2])
    return out


def by_tag(lines: list[bytes], tags: list[str]) -> dict[str, list[bytes]]:
    """Untagged lines grouped by the command whose tagged reply follows them, plus the
    tagged reply itself as the last element."""
    out: dict[str, list[bytes]] = {}
    cur: list[bytes] = []
    wanted = {t.encode() for t in tags}
    for ln in lines:
        tag = ln.split(b" ", 1)[0]
        if tag in wanted:
            out[tag.decode()] = [*cur, ln]
            cur = []
        elif ln.startswith(b"* ") or ln.startswith(b"+"):
            cur.append(ln)
    return out


def dovecot(
    maildir: Path, setup: list[bytes], commands: list[tuple[str, bytes]]
) -> dict[str, list[bytes]]:
    output = dovecot_preauth.run(maildir, setup + [line for _, line in commands], timeout=120)
    return by_tag(split_lines(output), [t for t, _ in commands])


def mailhub(
    client: RawImap, setup: list[bytes], commands: list[tuple[str, bytes]]
) -> dict[str, list[bytes]]:
    for line in setup:
        tag = line.split(b" ", 1)[0].decode()
        out = client.cmd(line, tag)
        assert out[-1].split(b" ")[1] == b"OK", out[-1]
    return {tag: client.cmd(line, tag) for tag, line in commands}


available = dovecot_preauth.available
__all__ = [
    "append_line",
    "available",
    "by_tag",
    "dovecot",
    "dovecot_preauth",
    "literalize",
    "mailhub",
    "split_lines",
]
