"""A strict reader for the IMAP values we render, used to check they are well-formed.

It reads one parenthesised value (RFC 9051 §9 ``body`` / ``envelope`` shape: lists, NIL,
numbers, quoted strings, literals) and returns it as nested Python lists, raising ValueError
on anything malformed or on trailing bytes.
"""

from __future__ import annotations

import re

Value = bytes | int | None | list["Value"]

_NUM = re.compile(rb"[0-9]+")
_LIT = re.compile(rb"~?\{([0-9]+)\}\r\n")


def read(data: bytes) -> Value:
    value, pos = _value(data, 0)
    if pos != len(data):
        raise ValueError(f"trailing data at {pos}")
    return value


def _value(d: bytes, pos: int) -> tuple[Value, int]:
    if pos >= len(d):
        raise ValueError("unexpected end")
    c = d[pos : pos + 1]
    if c == b"(":
        items: list[Value] = []
        pos += 1
        while True:
            if d[pos : pos + 1] == b")":
                return items, pos + 1
            if items and not (d[pos - 1 : pos] == b")" and d[pos : pos + 1] == b"("):
                if d[pos : pos + 1] != b" ":
                    raise ValueError(f"expected space at {pos}")
                pos += 1
            v, pos = _value(d, pos)
            items.append(v)
    if c == b'"':
        out = bytearray()
        pos += 1
        while True:
            if pos >= len(d):
                raise ValueError("unterminated quoted string")
            ch = d[pos]
            if ch == 0x22:
                return bytes(out), pos + 1
            if ch == 0x5C:
                pos += 1
                if d[pos : pos + 1] not in (b'"', b"\\"):
                    raise ValueError("bad escape")
                ch = d[pos]
            elif ch in (0x0D, 0x0A) or ch >= 0x80 or ch == 0:
                raise ValueError("bad char in quoted string")
            out.append(ch)
            pos += 1
    if d.startswith(b"NIL", pos):
        return None, pos + 3
    m = _LIT.match(d, pos)
    if m:
        n = int(m.group(1))
        start = m.end()
        if start + n > len(d):
            raise ValueError("short literal")
        return d[start : start + n], start + n
    m = _NUM.match(d, pos)
    if m:
        return int(m.group(0)), m.end()
    raise ValueError(f"unexpected {d[pos : pos + 10]!r} at {pos}")
