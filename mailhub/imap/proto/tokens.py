"""Lexer for one complete IMAP command (RFC 9051 §9 formal syntax, RFC 7888, RFC 3516).

The framing layer (:mod:`.parser`) assembles a whole command - its lines and the literal
bytes announced at their ends - into one buffer laid out exactly as on the wire. A
:class:`Reader` then walks that buffer with one method per grammar element (atom, quoted,
literal, astring, nstring, list, number, ...). Literal *sizes* were already checked by the
framing layer against the limits, so here a literal is only sliced out of the buffer.

Every syntax failure raises :class:`BadSyntax`; the parser turns it into a tagged BAD.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "ASTRING_CHARS",
    "ATOM_CHARS",
    "TAG_CHARS",
    "BadSyntax",
    "Reader",
]

T = TypeVar("T")

# atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
_ATOM_SPECIALS = set(b'(){ %*"\\]') | set(range(0x00, 0x20)) | {0x7F}
ATOM_CHARS = frozenset(set(range(0x01, 0x80)) - _ATOM_SPECIALS)
ASTRING_CHARS = ATOM_CHARS | {ord("]")}
TAG_CHARS = ASTRING_CHARS - {ord("+")}
# list-char = ATOM-CHAR / list-wildcards / resp-specials
LIST_CHARS = ATOM_CHARS | {ord("%"), ord("*"), ord("]")}

_LITERAL_RE = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\r\n")


class BadSyntax(Exception):
    """The command does not match the grammar; ``str(exc)`` is the text for the BAD reply."""


def _run(buf: bytes, pos: int, chars: frozenset[int]) -> int:
    end = pos
    n = len(buf)
    while end < n and buf[end] in chars:
        end += 1
    return end


class Reader:
    """A cursor over one assembled command; each method consumes one grammar element."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    # -- basics -------------------------------------------------------------------------
    def at_end(self) -> bool:
        return self.pos >= len(self.buf)

    def peek(self, n: int = 1) -> bytes:
        return self.buf[self.pos : self.pos + n]

    def peek_upper(self, n: int) -> bytes:
        return self.buf[self.pos : self.pos + n].upper()

    def expect(self, token: bytes, what: str | None = None) -> None:
        """Consume ``token`` (case-insensitive for letters) or fail."""
        if self.buf[self.pos : self.pos + len(token)].upper() != token.upper():
            raise BadSyntax(f"Expected {what or token.decode('ascii', 'replace')!r}")
        self.pos += len(token)

    def try_token(self, token: bytes) -> bool:
        """Consume ``token`` (case-insensitive) if it is next."""
        if self.buf[self.pos : self.pos + len(token)].upper() == token.upper():
            self.pos += len(token)
            return True
        return False

    def sp(self) -> None:
        if self.buf[self.pos : self.pos + 1] != b" ":
            raise BadSyntax("Expected space")
        self.pos += 1

    def try_sp(self) -> bool:
        if self.buf[self.pos : self.pos + 1] == b" ":
            self.pos += 1
            return True
        return False

    def end(self) -> None:
        """Require the end of the command."""
        if self.pos != len(self.buf):
            raise BadSyntax("Unexpected extra arguments")

    # -- atoms and numbers --------------------------------------------------------------
    def atom(self, what: str = "atom") -> bytes:
        end = _run(self.buf, self.pos, ATOM_CHARS)
        if end == self.pos:
            raise BadSyntax(f"Expected {what}")
        tok = self.buf[self.pos : end]
        self.pos = end
        return tok

    def atom_upper(self, what: str = "atom") -> str:
        return self.atom(what).decode("ascii").upper()

    def chars(self, charset: frozenset[int], what: str) -> bytes:
        end = _run(self.buf, self.pos, charset)
        if end == self.pos:
            raise BadSyntax(f"Expected {what}")
        tok = self.buf[self.pos : end]
        self.pos = end
        return tok

    def number(self, *, nz: bool = False, bits: int = 32) -> int:
        """``number`` (32-bit) or ``number64``; ``nz`` forbids zero."""
        start = self.pos
        end = start
        while end < len(self.buf) and 0x30 <= self.buf[end] <= 0x39:
            end += 1
        if end == start:
            raise BadSyntax("Expected number")
        if end - start > 20:
            raise BadSyntax("Number too large")
        value = int(self.buf[start:end])
        if value >= (1 << bits) or (bits == 64 and value >= (1 << 63)):
            raise BadSyntax("Number too large")
        if nz and value == 0:
            raise BadSyntax("Expected non-zero number")
        self.pos = end
        return value

    # -- strings ------------------------------------------------------------------------
    def quoted(self) -> bytes:
        buf = self.buf
        if buf[self.pos : self.pos + 1] != b'"':
            raise BadSyntax("Expected quoted string")
        i = self.pos + 1
        out = bytearray()
        n = len(buf)
        while True:
            j = i
            while j < n and buf[j] not in (0x22, 0x5C, 0x0D, 0x0A, 0x00):
                j += 1
            out += buf[i:j]
            if j >= n:
                raise BadSyntax("Unterminated quoted string")
            c = buf[j]
            if c == 0x22:
                self.pos = j + 1
                return bytes(out)
            if c == 0x5C:
                if j + 1 < n and buf[j + 1] in (0x22, 0x5C):
                    out.append(buf[j + 1])
                    i = j + 2
                    continue
                raise BadSyntax("Invalid escape in quoted string")
            raise BadSyntax("Invalid character in quoted string")

    def literal(self, *, allow_binary: bool = False) -> tuple[bytes, bool]:
        """``literal`` or (with ``allow_binary``) ``literal8``; return (data, is_literal8)."""
        m = _LITERAL_RE.match(self.buf, self.pos)
        if m is None:
            raise BadSyntax("Expected literal")
        binary = bool(m.group(1))
        if binary and not allow_binary:
            raise BadSyntax("literal8 not allowed here")
        size = int(m.group(2))
        start = m.end()
        if start + size > len(self.buf):
            raise BadSyntax("Truncated literal")
        data = self.buf[start : start + size]
        if not binary and 0 in data:
            raise BadSyntax("NUL in literal (use literal8)")
        self.pos = start + size
        return data, binary

    def string(self) -> bytes:
        c = self.buf[self.pos : self.pos + 1]
        if c == b'"':
            return self.quoted()
        if c in (b"{", b"~"):
            return self.literal()[0]
        raise BadSyntax("Expected string")

    def astring(self, what: str = "astring") -> bytes:
        c = self.buf[self.pos : self.pos + 1]
        if c == b'"':
            return self.quoted()
        if c == b"{":
            return self.literal()[0]
        return self.chars(ASTRING_CHARS, what)

    def nstring(self) -> bytes | None:
        if self.peek_upper(3) == b"NIL" and self.buf[self.pos + 3 : self.pos + 4] not in ATOM_BYTES:
            self.pos += 3
            return None
        return self.string()

    def list_mailbox(self) -> bytes:
        """``list-mailbox``: a LIST pattern (wildcards and ``]`` allowed unquoted)."""
        c = self.buf[self.pos : self.pos + 1]
        if c == b'"':
            return self.quoted()
        if c == b"{":
            return self.literal()[0]
        return self.chars(frozenset(LIST_CHARS), "mailbox pattern")

    # -- lists ----------------------------------------------------------------------------
    def paren_list(self, item: Callable[[Reader], T], *, allow_empty: bool = False) -> list[T]:
        """``"(" item *(SP item) ")"``."""
        self.expect(b"(")
        out: list[T] = []
        if self.try_token(b")"):
            if not allow_empty:
                raise BadSyntax("Empty list")
            return out
        while True:
            out.append(item(self))
            if self.try_token(b")"):
                return out
            self.sp()


ATOM_BYTES = {bytes([c]) for c in ATOM_CHARS}


class Refused(Exception):
    """The command is well-formed but refused before execution: a tagged ``NO [code] text``.

    Used for names that could escape the Maildir (``CANNOT``), unknown charsets
    (``BADCHARSET (...)``), and oversized APPENDs (``TOOBIG``).
    """

    def __init__(self, code: str | None, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
