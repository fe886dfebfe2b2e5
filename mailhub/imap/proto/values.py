"""Wire values for responses and the low-level encoder that picks their exact syntax.

A :data:`Value` is ``None`` (NIL), an ``int`` (number), ``str``/``bytes`` (a string: quoted
when short and safe, else a literal - RFC 9051 §4.3), :class:`Atom` (written verbatim),
:class:`Literal` (always a literal; ``binary`` -> ``~{n}`` literal8), :class:`MailboxName`
(modified UTF-7 or UTF-8 depending on the session), :class:`BodyRef` (a literal whose bytes
the driver streams from elsewhere) or a tuple/list of values (a parenthesised list).

The encoder emits ``bytes`` pieces and, for every :class:`BodyRef`, the ref itself right
after its ``{size}\\r\\n`` header: the driver writes the bytes, then streams exactly
``size`` bytes from ``ref.chunks()``. Small pieces are coalesced so a 100,000-message FETCH
becomes one ``bytes`` per response, not one per token.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeAlias, Union

from . import utf7

__all__ = ["Atom", "BodyRef", "Builder", "Literal", "MailboxName", "Piece", "Raw", "Value"]

MAX_QUOTED = 1024  # longer strings go out as literals


@dataclass(frozen=True, slots=True)
class Atom:
    """Written verbatim (flags, keywords, sequence sets, capability names). Not checked."""

    text: str


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes written verbatim (pre-encoded fragments)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Literal:
    """A string that must be sent as a literal (``binary``: literal8, RFC 3516 §4.2)."""

    data: bytes
    binary: bool = False


@dataclass(frozen=True, slots=True)
class MailboxName:
    """A mailbox name; encoded per the session's UTF-8 mode (RFC 6855 §3, RFC 9051 §5.1)."""

    name: str


@dataclass(frozen=True, slots=True)
class BodyRef:
    """A literal streamed by the driver: exactly ``size`` bytes from ``chunks()``.

    ``binary`` announces it as literal8 (``~{n}``, BINARY[] with NULs, RFC 3516).
    """

    size: int
    chunks: Callable[[], AsyncIterator[bytes]]
    binary: bool = False


Value = Union[  # noqa: UP007 - recursive alias
    None,
    int,
    str,
    bytes,
    Atom,
    Raw,
    Literal,
    MailboxName,
    BodyRef,
    tuple["Value", ...],
    list["Value"],
]
Piece: TypeAlias = bytes | BodyRef


def _quotable(data: bytes, utf8: bool) -> bool:
    if len(data) > MAX_QUOTED or b"\r" in data or b"\n" in data or b"\x00" in data:
        return False
    if data.isascii():
        return True
    if not utf8:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Builder:
    """Accumulates encoded output; see the module docstring."""

    __slots__ = ("buf", "pieces", "utf8")

    def __init__(self, utf8: bool = False) -> None:
        self.utf8 = utf8
        self.buf = bytearray()
        self.pieces: list[Piece] = []

    def raw(self, data: bytes) -> None:
        self.buf += data

    def ref(self, ref: BodyRef) -> None:
        self.buf += b"~{%d}\r\n" % ref.size if ref.binary else b"{%d}\r\n" % ref.size
        self.pieces.append(bytes(self.buf))
        self.buf.clear()
        self.pieces.append(ref)

    def finish(self) -> list[Piece]:
        if self.buf:
            self.pieces.append(bytes(self.buf))
            self.buf.clear()
        out, self.pieces = self.pieces, []
        return out

    def string(self, data: bytes) -> None:
        if _quotable(data, self.utf8):
            self.buf += b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
        elif b"\x00" in data:
            self.buf += b"~{%d}\r\n" % len(data) + data
        else:
            self.buf += b"{%d}\r\n" % len(data) + data

    def mailbox(self, name: str) -> None:
        if self.utf8:
            self.string(name.encode("utf-8", "surrogatepass"))
        else:
            self.string(utf7.encode(name).encode("ascii"))

    def value(self, v: Value) -> None:
        if v is None:
            self.buf += b"NIL"
        elif isinstance(v, bool):
            raise TypeError("bool is not an IMAP value")
        elif isinstance(v, int):
            self.buf += b"%d" % v
        elif isinstance(v, str):
            self.string(v.encode("utf-8", "surrogatepass"))
        elif isinstance(v, bytes):
            self.string(v)
        elif isinstance(v, Atom):
            self.buf += v.text.encode("utf-8")
        elif isinstance(v, Raw):
            self.buf += v.data
        elif isinstance(v, Literal):
            self.buf += (b"~{%d}\r\n" if v.binary else b"{%d}\r\n") % len(v.data) + v.data
        elif isinstance(v, MailboxName):
            self.mailbox(v.name)
        elif isinstance(v, BodyRef):
            self.ref(v)
        elif isinstance(v, (tuple, list)):
            self.buf += b"("
            self.values(v)
            self.buf += b")"
        else:
            raise TypeError(f"not an IMAP value: {type(v).__name__}")

    def values(self, vs: tuple[Value, ...] | list[Value]) -> None:
        first = True
        for item in vs:
            if not first:
                self.buf += b" "
            first = False
            self.value(item)

    def text(self, text: str) -> None:
        """Human-readable ``text`` (no CR/LF; 7-bit unless UTF-8 mode)."""
        clean = text.replace("\r", " ").replace("\n", " ")
        self.buf += clean.encode("utf-8" if self.utf8 else "ascii", "replace")


class Response(abc.ABC):
    """Base class: ``write`` emits the whole response line(s) including the final CRLF."""

    __slots__ = ()

    @abc.abstractmethod
    def write(self, b: Builder) -> None:
        """Append this response's wire bytes to ``b``."""
