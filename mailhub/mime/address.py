"""RFC 5322 §3.4 address lists, parsed leniently into IMAP ENVELOPE address tuples.

IMAP (RFC 9051 §7.5.2) wants ``(name adl mailbox host)`` per address, with group syntax as
``(NIL NIL group NIL)`` ... ``(NIL NIL NIL NIL)``. Real headers are often broken, so like
Dovecot's ``message-address.c`` we always produce something: a missing domain becomes
``MISSING_DOMAIN``, an empty ``<>`` becomes ``MISSING_MAILBOX``, an unterminated ``<...``
gets the host ``SYNTAX_ERROR``, and a trailing comment stands in for a missing display name.
Values stay raw bytes (encoded-words are not decoded: ENVELOPE carries them as sent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPECIALS = frozenset(b'()<>[]:;@\\,."')
_WSP = frozenset(b" \t\r\n")

MISSING_MAILBOX = b"MISSING_MAILBOX"
MISSING_DOMAIN = b"MISSING_DOMAIN"
SYNTAX_ERROR = b"SYNTAX_ERROR"


@dataclass(frozen=True, slots=True)
class Address:
    """One ENVELOPE address; a group start has only ``mailbox``, a group end has nothing."""

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    host: bytes | None

    @property
    def is_group_start(self) -> bool:
        return self.host is None and self.mailbox is not None

    @property
    def is_group_end(self) -> bool:
        return self.mailbox is None and self.host is None

    @property
    def addr_spec(self) -> bytes:
        """``mailbox@host`` (used for SORT FROM/TO and searching)."""
        if self.mailbox is None:
            return b""
        if self.host is None:
            return self.mailbox
        return self.mailbox + b"@" + self.host


class _P:
    __slots__ = ("comment", "d", "n", "pos")

    def __init__(self, d: bytes) -> None:
        self.d = d
        self.n = len(d)
        self.pos = 0
        self.comment: bytes | None = None

    def cfws(self) -> None:
        d, n = self.d, self.n
        while self.pos < n:
            c = d[self.pos]
            if c in _WSP:
                self.pos += 1
            elif c == 0x28:
                depth, start = 0, self.pos
                while self.pos < n:
                    c = d[self.pos]
                    if c == 0x5C:
                        self.pos += 2
                        continue
                    if c == 0x28:
                        depth += 1
                    elif c == 0x29:
                        depth -= 1
                        if depth == 0:
                            break
                    self.pos += 1
                self.comment = d[start + 1 : min(self.pos, n)].strip()
                self.pos += 1
            else:
                break

    def peek(self) -> int:
        self.cfws()
        return self.d[self.pos] if self.pos < self.n else -1

    def atom(self, allow_dot: bool) -> bytes:
        d, n, start = self.d, self.n, self.pos
        while self.pos < n:
            c = d[self.pos]
            if c in _WSP or (c in _SPECIALS and not (allow_dot and c == 0x2E)):
                break
            self.pos += 1
        return d[start : self.pos]

    def quoted(self, keep_quotes: bool) -> bytes:
        d, n = self.d, self.n
        start = self.pos
        self.pos += 1
        out = bytearray()
        while self.pos < n:
            c = d[self.pos]
            if c == 0x22:
                self.pos += 1
                break
            if c == 0x5C and self.pos + 1 < n:
                self.pos += 1
                c = d[self.pos]
            if c not in (0x0D, 0x0A):
                out.append(c)
            self.pos += 1
        return d[start : self.pos] if keep_quotes else bytes(out)

    def phrase(self) -> bytes:
        words: list[bytes] = []
        while True:
            c = self.peek()
            if c == 0x22:
                words.append(self.quoted(False))
            elif c >= 0 and (c not in _SPECIALS or c == 0x2E):
                w = self.atom(True)
                if not w:
                    break
                words.append(w)
            else:
                break
        return b" ".join(words)

    def local_part(self) -> bytes:
        out = bytearray()
        while True:
            c = self.peek()
            if c == 0x22:
                out += self.quoted(True)
            elif c == 0x2E:
                out.append(c)
                self.pos += 1
            elif c >= 0 and c not in _SPECIALS:
                out += self.atom(False)
            else:
                break
        return bytes(out)

    def domain(self) -> bytes:
        c = self.peek()
        if c == 0x5B:  # domain-literal
            end = self.d.find(b"]", self.pos)
            end = self.n if end < 0 else end + 1
            lit = self.d[self.pos : end]
            self.pos = end
            return lit
        out = bytearray()
        while True:
            c = self.peek()
            if c == 0x2E:
                out.append(c)
                self.pos += 1
            elif c >= 0 and c not in _SPECIALS:
                out += self.atom(False)
            else:
                break
        return bytes(out)


def _angle(p: _P, name: bytes | None) -> Address:
    """Parse ``< [route:] local@domain >``; the ``<`` is at ``p.pos``."""
    p.pos += 1
    route: bytes | None = None
    if p.peek() == 0x40:  # obs-route "@a,@b:" (searched in a bounded window: no O(n^2))
        start = p.pos
        window = min(p.n, start + 1024)
        colon = p.d.find(b":", start, window)
        gt = p.d.find(b">", start, window)
        if colon >= 0 and (gt < 0 or colon < gt):
            route = p.d[start:colon].strip()
            p.pos = colon + 1
    local = p.local_part()
    host: bytes | None = None
    if p.peek() == 0x40:
        p.pos += 1
        host = p.domain()
    closed = p.peek() == 0x3E
    if closed:
        p.pos += 1
    else:  # skip junk up to the next separator
        while p.pos < p.n and p.d[p.pos] not in b",;>":
            p.pos += 1
        if p.pos < p.n and p.d[p.pos] == 0x3E:
            p.pos += 1
            closed = True
    if not local and not host:
        return Address(name, route, MISSING_MAILBOX, MISSING_DOMAIN)
    if not closed:
        host = SYNTAX_ERROR
    return Address(name, route, local or MISSING_MAILBOX, host or MISSING_DOMAIN)


def _mailbox(p: _P) -> Address | None:
    """One mailbox (name-addr or addr-spec); None when nothing parseable is left here."""
    start = p.pos
    p.comment = None
    phrase = p.phrase()
    c = p.peek()
    if c == 0x3C:
        return _angle(p, phrase or None)
    after_phrase = p.pos
    p.pos = start
    p.comment = None
    local = p.local_part()
    host: bytes | None = None
    if p.peek() == 0x40:
        p.pos += 1
        host = p.domain()
    elif phrase and (b" " in phrase or p.d[start : start + 1] == b'"'):
        # several words (or a quoted string) and no address at all: a display name alone
        p.pos = after_phrase
        return Address(phrase, None, MISSING_MAILBOX, MISSING_DOMAIN)
    p.cfws()
    name = p.comment
    if not local:
        return None  # nothing, or "@domain" without a mailbox: Dovecot drops it too
    return Address(name or None, None, local, host or MISSING_DOMAIN)


def _skip_junk(p: _P) -> None:
    while p.pos < p.n and p.d[p.pos] not in b",;":
        p.pos += 1


# The shape nearly every real header has: ``Name <local@domain>`` or ``local@domain``,
# comma-separated, without quotes, comments, groups, routes or domain literals. Such values
# are answered by one regex match per address instead of the byte-by-byte parser below (the
# ENVELOPE of a first FETCH spent most of its time there); the result is the same (see
# tests/mime/test_address_fast.py), and anything else takes the full parser.
_WORD = rb"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\x80-\xff]+"
_SIMPLE = re.compile(
    rb"[ \t]*(?:(?:("
    + _WORD
    + rb"(?:[ \t]+"
    + _WORD
    + rb")*)[ \t]*)?<("
    + _WORD
    + rb")@("
    + _WORD
    + rb")>|("
    + _WORD
    + rb")@("
    + _WORD
    + rb"))[ \t]*\Z"
)
_NOT_SIMPLE = re.compile(rb'[()"\\:;\[\]]')
_BLANKS = re.compile(rb"[ \t]+")


def _simple_addresses(value: bytes) -> list[Address] | None:
    """The fast path (None: the value needs the full parser)."""
    if _NOT_SIMPLE.search(value) is not None:
        return None
    out: list[Address] = []
    for piece in value.split(b","):
        m = _SIMPLE.match(piece)
        if m is None:
            if piece.strip(b" \t"):
                return None
            continue  # empty list elements are skipped, as the parser does
        name, local, host, spec_local, spec_host = m.groups()
        if local is not None:
            out.append(Address(_BLANKS.sub(b" ", name) if name else None, None, local, host))
        else:
            out.append(Address(None, None, spec_local, spec_host))
    return out


def parse_addresses(value: bytes | None) -> list[Address]:
    """Parse an address-list header value into ENVELOPE addresses (never raises)."""
    if not value:
        return []
    fast = _simple_addresses(value)
    if fast is not None:
        return fast
    return _parse_addresses(value)


def _parse_addresses(value: bytes) -> list[Address]:
    """The full lenient parser (Dovecot's ``message-address.c`` rules)."""
    p = _P(value)
    out: list[Address] = []
    while True:
        c = p.peek()
        if c < 0:
            break
        if c in (0x2C, 0x3B):
            p.pos += 1
            continue
        start = p.pos
        phrase = p.phrase()
        if p.peek() == 0x3A:  # group
            p.pos += 1
            out.append(Address(None, None, phrase, None))
            while True:
                c = p.peek()
                if c < 0:
                    break
                if c == 0x3B:
                    p.pos += 1
                    break
                if c == 0x2C:
                    p.pos += 1
                    continue
                before = p.pos
                a = _mailbox(p)
                if a is not None:
                    out.append(a)
                if p.pos == before:
                    p.pos += 1
            out.append(Address(None, None, None, None))
            if p.peek() not in (-1, 0x2C):
                break  # RFC 5322 needs a comma after a group; like Dovecot, stop here
            continue
        p.pos = start
        a = _mailbox(p)
        if a is not None:
            out.append(a)
        if p.pos == start:
            p.pos += 1
        else:
            _skip_junk(p)
    return out
