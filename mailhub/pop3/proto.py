"""POP3 wire format, sans I/O: lines in, typed commands out; replies and multi-line bodies out.

Nothing here touches sockets, the event loop or the store (the h11 shape), so every rule of the
grammar is tested with bytes in and values out. The session decides what a command means; this
module only decides whether it is well formed.

References: RFC 1939 (POP3), RFC 2449 (CAPA, response codes), RFC 2595 (STLS), RFC 5034 (SASL
AUTH), RFC 6856 (UTF8).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# RFC 2449 §3 and RFC 3206 response codes (the bracketed token after -ERR / +OK).
CODE_IN_USE = "IN-USE"
CODE_LOGIN_DELAY = "LOGIN-DELAY"
CODE_SYS_TEMP = "SYS/TEMP"
CODE_SYS_PERM = "SYS/PERM"
CODE_AUTH = "AUTH"
CODE_UTF8 = "UTF8"

CRLF = b"\r\n"
TERMINATOR = b".\r\n"

# RFC 1939 message numbers are positive decimal integers; ten digits is more than any maildrop.
_MAX_NUMBER_DIGITS = 10


# ---------------------------------------------------------------------------------------------
# Commands (RFC 1939 §4-§7, RFC 2449 §5, RFC 2595 §4, RFC 5034 §4, RFC 6856 §2)


@dataclass(frozen=True, slots=True)
class User:
    """USER name (RFC 1939 §7)."""

    name: str


@dataclass(frozen=True, slots=True)
class Pass:
    """PASS string (RFC 1939 §7); the whole rest of the line, spaces included."""

    password: str

    def __repr__(self) -> str:  # never let a password reach a log through a repr
        return "Pass(password=<hidden>)"


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT (RFC 1939 §5 and §6)."""


@dataclass(frozen=True, slots=True)
class Stat:
    """STAT (RFC 1939 §5)."""


@dataclass(frozen=True, slots=True)
class List:
    """LIST [msg] (RFC 1939 §5)."""

    msg: int | None = None


@dataclass(frozen=True, slots=True)
class Retr:
    """RETR msg (RFC 1939 §5)."""

    msg: int


@dataclass(frozen=True, slots=True)
class Dele:
    """DELE msg (RFC 1939 §5)."""

    msg: int


@dataclass(frozen=True, slots=True)
class Noop:
    """NOOP (RFC 1939 §5)."""


@dataclass(frozen=True, slots=True)
class Rset:
    """RSET (RFC 1939 §5)."""


@dataclass(frozen=True, slots=True)
class Top:
    """TOP msg n (RFC 1939 §7)."""

    msg: int
    lines: int


@dataclass(frozen=True, slots=True)
class Uidl:
    """UIDL [msg] (RFC 1939 §7)."""

    msg: int | None = None


@dataclass(frozen=True, slots=True)
class Capa:
    """CAPA (RFC 2449 §5)."""


@dataclass(frozen=True, slots=True)
class Stls:
    """STLS (RFC 2595 §4)."""


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH [mechanism [initial-response]] (RFC 5034 §4).

    A bare AUTH (no mechanism) is the pre-CAPA way some clients ask for the mechanism list.
    """

    mechanism: str | None = None
    initial_response: str | None = None

    def __repr__(self) -> str:
        shown = None if self.initial_response is None else "<hidden>"
        return f"Auth(mechanism={self.mechanism!r}, initial_response={shown})"


@dataclass(frozen=True, slots=True)
class Utf8:
    """UTF8 (RFC 6856 §2)."""


Command = (
    User
    | Pass
    | Quit
    | Stat
    | List
    | Retr
    | Dele
    | Noop
    | Rset
    | Top
    | Uidl
    | Capa
    | Stls
    | Auth
    | Utf8
)


@dataclass(frozen=True, slots=True)
class ParseError:
    """A line that is not a well-formed command; the session answers ``-ERR text``."""

    text: str
    code: str | None = None


def _number(arg: bytes, *, allow_zero: bool = False) -> int | None:
    if not arg or len(arg) > _MAX_NUMBER_DIGITS or not arg.isdigit():
        return None
    value = int(arg)
    if value == 0 and not allow_zero:
        return None
    return value


def _text(arg: bytes) -> str | None:
    """Arguments are UTF-8 (RFC 6856 lets a UTF8 client send UTF-8; ASCII is a subset)."""
    try:
        text = arg.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return None
    return text


_NO_ARGS: dict[bytes, Command] = {
    b"QUIT": Quit(),
    b"STAT": Stat(),
    b"NOOP": Noop(),
    b"RSET": Rset(),
    b"CAPA": Capa(),
    b"STLS": Stls(),
    b"UTF8": Utf8(),
}


def strip_eol(line: bytes) -> bytes:
    """Drop the CRLF (or a bare LF, which real clients send) that ends a line."""
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line


def parse_command(line: bytes) -> Command | ParseError:
    """Parse one command line (with or without its line ending) into a typed command.

    RFC 1939 §3: a keyword of three or four characters, case-insensitive, then arguments
    separated by a single space. PASS and USER take the rest of the line as one argument, since
    passwords (and some user names) may contain spaces (RFC 1939 §7, PASS discussion).
    """
    line = strip_eol(line)
    keyword, _, rest = line.partition(b" ")
    verb = keyword.upper()
    if not verb:
        return ParseError("Empty command")
    if len(verb) > 4 or not verb.isalnum():
        return ParseError("Unknown command")
    if verb in _NO_ARGS:
        if rest.strip():
            return ParseError(f"{verb.decode()} takes no arguments")
        return _NO_ARGS[verb]
    if verb in (b"USER", b"PASS"):
        text = _text(rest.strip(b" ") if verb == b"USER" else rest)
        if not text:
            return ParseError(f"{verb.decode()} needs one argument")
        return User(text) if verb == b"USER" else Pass(text)
    args = rest.split()
    if verb in (b"LIST", b"UIDL"):
        if len(args) > 1:
            return ParseError("Too many arguments")
        if not args:
            return List() if verb == b"LIST" else Uidl()
        msg = _number(args[0])
        if msg is None:
            return ParseError("Invalid message number")
        return List(msg) if verb == b"LIST" else Uidl(msg)
    if verb in (b"RETR", b"DELE"):
        if len(args) != 1:
            return ParseError(f"{verb.decode()} needs one message number")
        msg = _number(args[0])
        if msg is None:
            return ParseError("Invalid message number")
        return Retr(msg) if verb == b"RETR" else Dele(msg)
    if verb == b"TOP":
        if len(args) != 2:
            return ParseError("TOP needs a message number and a line count")
        msg = _number(args[0])
        count = _number(args[1], allow_zero=True)
        if msg is None or count is None:
            return ParseError("Invalid message number or line count")
        return Top(msg, count)
    if verb == b"AUTH":
        if not args:
            return Auth()
        if len(args) > 2:
            return ParseError("Too many arguments")
        mech = _text(args[0])
        if mech is None:
            return ParseError("Invalid mechanism name")
        initial = None
        if len(args) == 2:
            initial = _text(args[1])
            if initial is None:
                return ParseError("Invalid initial response")
        return Auth(mech.upper(), initial)
    return ParseError("Unknown command")


# ---------------------------------------------------------------------------------------------
# Replies (RFC 1939 §3, RFC 2449 §8 response codes)


def _status(indicator: bytes, text: str, code: str | None) -> bytes:
    # Reply text must stay on one line whatever a store error message contains.
    clean = text.replace("\r", " ").replace("\n", " ")
    parts = [indicator]
    if code:
        parts.append(b"[" + code.encode("ascii") + b"]")
    if clean:
        parts.append(clean.encode("utf-8"))
    return b" ".join(parts) + CRLF


def ok(text: str = "", code: str | None = None) -> bytes:
    """A positive status line: ``+OK [code] text``."""
    return _status(b"+OK", text, code)


def err(text: str = "", code: str | None = None) -> bytes:
    """A negative status line: ``-ERR [code] text``."""
    return _status(b"-ERR", text, code)


def multiline(lines: Iterable[bytes]) -> bytes:
    """A whole short multi-line body (LIST, UIDL, CAPA): stuffed lines and the terminator."""
    out = [b"." + line if line[:1] == b"." else line for line in lines]
    out.append(b".")
    return CRLF.join(out) + CRLF


# Above this many stuffed lines in one piece, copying with bytes.replace is cheaper than
# handing the transport one slice per line.
_MAX_SLICES = 64


class DotStuffer:
    """Byte-stuffs a message streamed in chunks (RFC 1939 §3) and ends it with ``.CRLF``.

    A line that starts with "." gets a second "." in front; the check carries across chunk
    boundaries, so callers may split the message anywhere. A body that does not end with a line
    ending gets CRLF before the terminator, as the terminator must start a line.

    ``feed_parts`` does not copy the message: it returns slices of it with the extra dots in
    between, for the transport's ``writelines`` (one ``writev``). Most mail has no line
    starting with a dot, and then the whole work is one search (``bytes.replace`` would search
    twice and copy once).
    """

    __slots__ = ("_at_line_start",)

    def __init__(self) -> None:
        self._at_line_start = True

    def feed_parts(self, chunk: bytes) -> list[bytes | memoryview]:
        """The stuffed form of the next piece of the message, as a list of pieces."""
        if not chunk:
            return []
        lead = self._at_line_start and chunk[0] == 0x2E
        self._at_line_start = chunk[-1] == 0x0A
        pos = chunk.find(b"\n.")
        if pos < 0:
            return [b".", chunk] if lead else [chunk]
        view = memoryview(chunk)
        parts: list[bytes | memoryview] = [b"."] if lead else []
        start = 0
        while pos >= 0:
            parts.append(view[start : pos + 1])
            parts.append(b".")
            start = pos + 1  # the "." itself goes out with the next slice
            if len(parts) > 2 * _MAX_SLICES:
                parts.append(chunk[start:].replace(b"\n.", b"\n.."))
                return parts
            pos = chunk.find(b"\n.", pos + 2)
        parts.append(view[start:])
        return parts

    def feed(self, chunk: bytes) -> bytes:
        """Return the stuffed form of the next piece of the message as one bytes object."""
        return b"".join(self.feed_parts(chunk))

    def finish(self) -> bytes:
        """The end of the multi-line response."""
        return TERMINATOR if self._at_line_start else CRLF + TERMINATOR


class TopFilter:
    """Passes the header, the blank line and the first ``lines`` body lines (RFC 1939 §7 TOP).

    Fed the message in chunks; ``done`` turns True once nothing more is wanted, so the caller
    stops reading. The header ends at the first empty line ("CRLF" alone, or bare "LF").
    """

    __slots__ = ("_in_header", "_left", "_pending", "done")

    def __init__(self, lines: int) -> None:
        self._in_header = True
        self._left = lines
        # Bytes of the current, unfinished line while they could still make a blank line
        # (b"" or b"\r"); None once the line has other content.
        self._pending: bytes | None = b""
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        """Return the part of ``chunk`` that belongs to the TOP response."""
        if self.done:
            return b""
        pos = 0
        while True:
            nl = chunk.find(b"\n", pos)
            if nl < 0:
                tail = chunk[pos:]
                if self._pending is not None:
                    joined = self._pending + tail
                    self._pending = joined if joined in (b"", b"\r") else None
                return chunk
            segment = chunk[pos:nl]
            blank = self._pending is not None and (self._pending + segment) in (b"", b"\r")
            self._pending = b""
            pos = nl + 1
            if self._in_header:
                if blank:
                    self._in_header = False
                    if self._left == 0:
                        self.done = True
                        return chunk[:pos]
            else:
                self._left -= 1
                if self._left <= 0:
                    self.done = True
                    return chunk[:pos]


# ---------------------------------------------------------------------------------------------
# Line framing with a length limit (RFC 2449 §4: commands up to 255 octets; we allow the
# configured maximum so long AUTH initial responses fit)


class LineTooLong:
    """Marker returned once for a line that went over the limit (the rest of it is dropped)."""

    __slots__ = ()


LINE_TOO_LONG = LineTooLong()


class LineBuffer:
    """Splits received bytes into lines, never holding more than ``max_line`` of one line.

    Pipelined commands (RFC 2449 §6.6) simply queue up here. ``clear`` drops everything
    buffered, which STLS needs: nothing sent before the TLS handshake may be taken as a command
    after it (the STARTTLS command-injection class of bugs, CVE-2011-0411).
    """

    __slots__ = ("_buf", "_discarding", "_max")

    def __init__(self, max_line: int) -> None:
        self._buf = bytearray()
        self._max = max_line
        self._discarding = False

    def feed(self, data: bytes) -> None:
        self._buf += data

    def has_line(self) -> bool:
        """Whether ``next_line`` would return something without more input."""
        return b"\n" in self._buf or (not self._discarding and len(self._buf) > self._max)

    def next_line(self) -> bytes | LineTooLong | None:
        """The next complete line (with its ending), ``LINE_TOO_LONG``, or None for "need more"."""
        while True:
            nl = self._buf.find(b"\n")
            if self._discarding:
                if nl < 0:
                    self._buf.clear()
                    return None
                del self._buf[: nl + 1]
                self._discarding = False
                continue
            if nl < 0:
                if len(self._buf) > self._max:
                    self._buf.clear()
                    self._discarding = True
                    return LINE_TOO_LONG
                return None
            if nl + 1 > self._max + 2:
                del self._buf[: nl + 1]
                return LINE_TOO_LONG
            line = bytes(self._buf[: nl + 1])
            del self._buf[: nl + 1]
            return line

    def clear(self) -> None:
        self._buf.clear()
        self._discarding = False
