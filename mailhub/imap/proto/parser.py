"""The incremental command parser: bytes in, typed events out (h11's feed/next_event shape).

Framing and grammar are separate. This module only finds command boundaries: it reads lines,
notices a literal announced at the end of a line (``{n}``, ``{n+}``, ``~{n}``; RFC 9051 §4.3,
RFC 7888, RFC 3516), collects its bytes, and enforces every size limit *before* buffering, so
memory per connection is bounded by :class:`Limits`. When a command is complete it goes to
:func:`.grammar.parse_command` in one piece.

After an error the parser skips exactly the offending input: the rest of an over-long line,
and the bytes of a rejected non-synchronising literal (which the client sends without
waiting). A rejected *synchronising* literal is never sent by the client, because the driver
answers with the tagged error instead of ``+``. So every error leaves the connection usable.

Modes that the protocol switches into are explicit. After :class:`~.commands.Idle`,
:class:`~.commands.Authenticate`, :class:`~.commands.StartTls` and
:class:`~.commands.Compress` the parser returns ``PAUSED`` until the driver calls
:meth:`CommandParser.start_idle`, :meth:`~CommandParser.expect_auth_response`,
:meth:`~CommandParser.take_buffered` (STARTTLS: drop the bytes, they were sent in the clear;
COMPRESS: inflate them and feed them back) or :meth:`~CommandParser.resume`.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Literal, Union

from . import commands as c
from .events import (
    NEED_DATA,
    PAUSED,
    AuthResponse,
    IdleDone,
    NeedContinuation,
    ParseError,
    Sentinel,
)
from .grammar import PARSERS
from .names import NameOptions
from .parse_cache import parse_command_cached
from .tokens import TAG_CHARS, BadSyntax, Refused

__all__ = ["CommandParser", "Event", "Limits"]

Event = Union[  # noqa: UP007
    c.Command, NeedContinuation, ParseError, IdleDone, AuthResponse, Sentinel
]

_LITERAL_AT_END = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}$")
_PAUSING = (c.Idle, c.Authenticate, c.StartTls, c.Compress)
_TAIL = 32  # bytes of a skipped line kept to spot a literal announced at its end


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection input limits (all in bytes).

    ``max_literal_size`` is the APPENDLIMIT: the largest message literal APPEND accepts.
    ``max_arg_literal_size`` bounds every other literal (a password, a search string).
    ``max_command_size`` bounds a whole non-APPEND command (lines and literals); an APPEND
    may carry at most ``max_append_total`` literal bytes (MULTIAPPEND), by default the
    APPENDLIMIT. ``max_nonsync_literal`` = 4096 gives LITERAL- semantics (RFC 7888 §5);
    None accepts any non-synchronising literal within the other limits (LITERAL+).
    A rejected non-synchronising literal is read and discarded (the client sends it without
    waiting) unless it is larger than ``max_discard``: then the error is ``fatal`` and the
    driver should send BYE and close rather than read that much.
    """

    max_line_length: int = 65536
    max_literal_size: int = 64 * 1024 * 1024
    max_arg_literal_size: int = 65536
    max_command_size: int = 1024 * 1024
    max_nonsync_literal: int | None = None
    max_append_total: int | None = None
    max_discard: int = 1 << 30


Mode = Literal["line", "literal", "skip", "skip_literal", "paused", "idle", "auth"]


class CommandParser:
    """Incremental IMAP command parser; see the module docstring for the protocol.

    ``utf8_names`` (a property) switches mailbox names from modified UTF-7 to UTF-8; set it
    once ENABLE UTF8=ACCEPT or IMAP4rev2 succeeded. Since commands are parsed only when
    :meth:`next_event` is called, a pipelined command after ENABLE is read the new way,
    provided the driver executes each command before asking for the next event.
    """

    def __init__(self, limits: Limits | None = None, *, separator: str = "/") -> None:
        self.limits = limits or Limits()
        self.names = NameOptions(utf8=False, separator=separator)
        self._buf = bytearray()
        self._scan = 0  # bytes of _buf already known to hold no LF
        self._mode: Mode = "line"
        self._cmd = bytearray()
        self._cmd_tag = "*"
        self._cmd_name = ""
        self._cmd_literals = 0
        self._remaining = 0
        self._tail = b""
        self._pending: deque[Event] = deque()
        self._paused_tag = "*"

    # -- configuration -------------------------------------------------------------------
    @property
    def utf8_names(self) -> bool:
        return self.names.utf8

    @utf8_names.setter
    def utf8_names(self, value: bool) -> None:
        self.names.utf8 = value

    # -- input -----------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Add received bytes; call :meth:`next_event` until it returns ``NEED_DATA``."""
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet consumed (for back-pressure decisions)."""
        return len(self._buf)

    # -- driver-controlled modes -----------------------------------------------------------
    def resume(self) -> None:
        """Leave ``PAUSED`` (or an IDLE/AUTHENTICATE mode) and read commands again."""
        self._mode = "line"

    def start_idle(self) -> None:
        """The driver sent ``+ idling``: wait for the ``DONE`` line (RFC 2177 §3)."""
        self._mode = "idle"

    def expect_auth_response(self) -> None:
        """The driver sent a ``+`` challenge: the next line is an :class:`AuthResponse`."""
        self._mode = "auth"

    def take_buffered(self) -> bytes:
        """Remove and return unconsumed input, and resume command mode.

        After STARTTLS the driver must discard these bytes (they arrived before TLS and must
        not be executed, CVE-2011-0411 style). After COMPRESS they are already compressed:
        inflate them and :meth:`feed` the result back.
        """
        data = bytes(self._buf)
        self._buf.clear()
        self._scan = 0
        self._mode = "line"
        return data

    # -- events ----------------------------------------------------------------------------
    def next_event(self) -> Event:
        """Return the next event, ``NEED_DATA`` or ``PAUSED``. Never raises on any input."""
        while True:
            if self._pending:
                return self._pending.popleft()
            mode = self._mode
            if mode == "paused":
                return PAUSED
            if mode in ("literal", "skip_literal"):
                if not self._take_literal():
                    return NEED_DATA
                continue
            if mode == "skip":
                if not self._skip_line():
                    return NEED_DATA
                continue
            line = self._read_line()
            if line is None:
                if self._pending or self._mode != mode:
                    continue
                return NEED_DATA
            ev = self._on_line(line)
            if ev is not None:
                return ev

    # -- internals ---------------------------------------------------------------------------
    def _read_line(self) -> bytes | None:
        """Pop one complete line (without CR LF); on overflow start skipping and queue an error."""
        buf = self._buf
        idx = buf.find(b"\n", self._scan)
        limit = self.limits.max_line_length
        if idx < 0:
            # A trailing CR may be the first half of the CRLF: it does not count, exactly as
            # for a complete line (else the limit would depend on how the bytes were split).
            if len(buf) - (1 if buf.endswith(b"\r") else 0) > limit:
                self._tail = bytes(buf[-_TAIL:])
                self._line_too_long(bytes(buf[:256]))
                buf.clear()
                self._scan = 0
                self._mode = "skip"
            else:
                self._scan = len(buf)
            return None
        end = idx - 1 if idx > 0 and buf[idx - 1] == 0x0D else idx
        line = bytes(buf[:end])
        del buf[: idx + 1]
        self._scan = 0
        if len(line) > limit:
            self._tail = line[-_TAIL:]
            self._line_too_long(line[:256])
            self._after_skipped_line()
            return None
        return line

    def _line_too_long(self, head: bytes) -> None:
        if self._mode in ("idle", "auth"):
            self._pending.append(ParseError(self._paused_tag, "BAD", None, "Line too long"))
            self._mode = "line"
            return
        tag = self._cmd_tag if self._cmd else _tag_of(head)
        self._pending.append(ParseError(tag, "BAD", "TOOBIG", "Command line too long"))
        self._reset_command()

    def _skip_line(self) -> bool:
        buf = self._buf
        idx = buf.find(b"\n")
        if idx < 0:
            self._tail = (self._tail + bytes(buf))[-_TAIL:]
            buf.clear()
            return False
        end = idx - 1 if idx > 0 and buf[idx - 1] == 0x0D else idx
        self._tail = (self._tail + bytes(buf[:end]))[-_TAIL:]
        del buf[: idx + 1]
        self._after_skipped_line()
        return True

    def _after_skipped_line(self) -> None:
        """A skipped line ending in a non-synchronising literal: skip its bytes too."""
        tail = self._tail
        if tail.endswith(b"\r"):  # the CR of the CRLF, kept when the LF came in a later read
            tail = tail[:-1]
        m = _LITERAL_AT_END.search(tail)
        self._tail = b""
        if m and m.group(3):
            self._remaining = int(m.group(2))
            self._mode = "skip_literal"
        else:
            self._mode = "line"

    def _take_literal(self) -> bool:
        buf = self._buf
        n = min(self._remaining, len(buf))
        if self._mode == "literal":
            self._cmd += buf[:n]
        del buf[:n]
        self._remaining -= n
        if self._remaining:
            return False
        self._mode = "line" if self._mode == "literal" else "skip"
        return True

    def _reset_command(self) -> None:
        self._cmd = bytearray()
        self._cmd_tag = "*"
        self._cmd_name = ""
        self._cmd_literals = 0

    def _on_line(self, line: bytes) -> Event | None:
        if self._mode == "idle":
            self._mode = "line"
            if line.strip().upper() == b"DONE":
                return IdleDone(self._paused_tag)
            return ParseError(self._paused_tag, "BAD", None, "Expected DONE")
        if self._mode == "auth":
            self._mode = "paused"
            return AuthResponse(self._paused_tag, line)
        m = _LITERAL_AT_END.search(line)
        if not self._cmd:
            if not line.strip():
                return None  # tolerate empty lines between commands, as Dovecot does
            if m is None:  # the usual one-line command: tag and name only matter on error
                return self._parse(line, None, None)
            self._cmd_tag = _tag_of(line)
            self._cmd_name = _name_of(line)
        elif len(self._cmd) + len(line) > self.limits.max_command_size:
            return self._reject_rest(line, "BAD", "TOOBIG", "Command too long")
        self._cmd += line
        if m is None:
            return self._complete()
        return self._on_literal(line, int(m.group(2)), bool(m.group(3)), bool(m.group(1)))

    def _on_literal(self, line: bytes, size: int, nonsync: bool, binary: bool) -> Event | None:
        lim = self.limits
        if self._cmd_tag == "*" or self._cmd_name not in PARSERS:
            # Do not ask a client for literal data of a command we cannot run anyway.
            text = "Invalid tag" if self._cmd_tag == "*" else "Unknown command"
            return self._reject_literal(size, nonsync, "BAD", None, text)
        is_append = self._cmd_name == "APPEND"
        if nonsync and lim.max_nonsync_literal is not None and size > lim.max_nonsync_literal:
            return self._reject_literal(
                size, nonsync, "BAD", "TOOBIG", "Non-synchronizing literal too large"
            )
        if is_append:
            total = (
                lim.max_append_total if lim.max_append_total is not None else lim.max_literal_size
            )
            if size > lim.max_literal_size:
                return self._reject_literal(size, nonsync, "NO", "TOOBIG", "Message too large")
            if self._cmd_literals + size > total:
                return self._reject_literal(
                    size, nonsync, "NO", "LIMIT", "Too much data in one APPEND"
                )
        else:
            if size > lim.max_arg_literal_size:
                return self._reject_literal(size, nonsync, "BAD", "TOOBIG", "Literal too large")
            if len(self._cmd) + size > lim.max_command_size:
                return self._reject_literal(size, nonsync, "BAD", "TOOBIG", "Command too long")
        self._cmd_literals += size
        self._cmd += b"\r\n"
        self._remaining = size
        self._mode = "literal"
        if nonsync:
            return None
        return NeedContinuation(size, self._cmd_tag, self._cmd_name, binary)

    def _reject_literal(
        self, size: int, nonsync: bool, status: Literal["BAD", "NO"], code: str | None, text: str
    ) -> ParseError:
        fatal = nonsync and size > self.limits.max_discard
        err = ParseError(self._cmd_tag, status, code, text, fatal, self._cmd_name or None)
        self._reset_command()
        if nonsync:
            self._remaining = size
            self._mode = "skip_literal"
        return err

    def _reject_rest(
        self, line: bytes, status: Literal["BAD", "NO"], code: str, text: str
    ) -> ParseError:
        err = ParseError(self._cmd_tag, status, code, text, command=self._cmd_name or None)
        self._reset_command()
        self._tail = line[-_TAIL:]
        self._after_skipped_line()
        return err

    def _complete(self) -> Event:
        data = bytes(self._cmd)
        tag, name = self._cmd_tag, self._cmd_name or None
        self._reset_command()
        return self._parse(data, tag, name)

    def _parse(self, data: bytes, tag: str | None, name: str | None) -> Event:
        """Parse a whole command; ``tag``/``name`` (for an error reply) are worked out from
        ``data`` only when it fails, when the caller did not already know them."""
        try:
            cmd = parse_command_cached(data, self.names)
        except BadSyntax as exc:
            tag, name = _failed(data, tag, name)
            return ParseError(tag, "BAD", None, str(exc), command=name)
        except Refused as exc:
            tag, name = _failed(data, tag, name)
            return ParseError(tag, "NO", exc.code, exc.text, command=name)
        except RecursionError:  # pragma: no cover - depth is bounded in the grammar
            tag, name = _failed(data, tag, name)
            return ParseError(tag, "BAD", None, "Command nested too deeply", command=name)
        if isinstance(cmd, _PAUSING):
            self._mode = "paused"
            self._paused_tag = cmd.tag
        return cmd


def _failed(data: bytes, tag: str | None, name: str | None) -> tuple[str, str | None]:
    if tag is None:
        return _tag_of(data), _name_of(data) or None
    return tag, name


def _tag_of(line: bytes) -> str:
    tag = line.split(b" ", 1)[0]
    if tag and len(tag) <= 64 and all(b in TAG_CHARS for b in tag):
        return tag.decode("ascii")
    return "*"


def _name_of(line: bytes) -> str:
    parts = line.split(b" ", 3)
    if len(parts) < 2:
        return ""
    name = parts[1].upper()
    if name == b"UID" and len(parts) > 2:
        name = b"UID " + parts[2].upper()
    try:
        return name[:32].decode("ascii")
    except UnicodeDecodeError:
        return ""
