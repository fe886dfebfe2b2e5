"""What :meth:`CommandParser.next_event` returns besides commands (h11-style events)."""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass
from typing import Literal


class Sentinel(enum.Enum):
    """``NEED_DATA``: feed more bytes. ``PAUSED``: the driver must act first (see parser)."""

    NEED_DATA = "NEED_DATA"
    PAUSED = "PAUSED"


NEED_DATA = Sentinel.NEED_DATA
PAUSED = Sentinel.PAUSED


@dataclass(frozen=True, slots=True)
class NeedContinuation:
    """A synchronising literal was announced: the driver must now send ``+ ...`` (RFC 9051
    §7.6), then keep feeding; the parser collects the ``size`` bytes itself."""

    size: int
    tag: str
    command: str
    binary: bool = False


@dataclass(frozen=True, slots=True)
class ParseError:
    """A command that cannot be executed; answer ``<tag> <status> [<code>] <text>``.

    ``tag`` is ``"*"`` when no tag could be read (then the reply is an untagged BAD).
    ``status`` is BAD for syntax and framing errors, NO for well-formed but refused commands
    (``CANNOT`` names, ``BADCHARSET``, ``TOOBIG`` appends). The parser has already skipped the
    offending input, so the connection can go on; ``fatal`` says it cannot (send BYE, close).
    Count these: the session's BYE-after-N-errors limit counts BAD ones.
    """

    tag: str
    status: Literal["BAD", "NO"]
    code: str | None
    text: str
    fatal: bool = False
    command: str | None = None


@dataclass(frozen=True, slots=True)
class IdleDone:
    """The client ended IDLE with ``DONE`` (RFC 2177); ``tag`` is the IDLE command's tag.

    Any other line during IDLE yields ``ParseError(tag, "BAD", ..., "Expected DONE")``; both
    end IDLE and return the parser to command mode (so a command pipelined right after
    ``DONE``, as iOS does, is read next)."""

    tag: str


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """One client line during AUTHENTICATE ``tag`` (RFC 9051 §6.2.2), raw (base64 or ``*``).

    Afterwards the parser is ``PAUSED`` again: call ``expect_auth_response()`` after the
    next challenge, or ``resume()`` when the exchange is over."""

    tag: str
    line: bytes

    @property
    def cancelled(self) -> bool:
        """The client sent ``*`` to abort the exchange (answer BAD)."""
        return self.line.strip() == b"*"

    def decode(self) -> bytes:
        """The decoded SASL response; :class:`ValueError` if it is not base64."""
        try:
            return base64.b64decode(self.line.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("invalid base64 in AUTHENTICATE response") from exc

    def __repr__(self) -> str:  # contains credentials
        return f"AuthResponse(tag={self.tag!r}, <{len(self.line)} bytes>)"
