"""Typed FETCH attributes (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ).

Macros are expanded by the parser (ALL, FAST, FULL; RFC 9051 §6.4.5), so handlers see only
:class:`FetchAtt` values. :meth:`FetchAtt.response_name` gives the exact spelling the FETCH
response must echo: ``BODY.PEEK[...]`` is answered as ``BODY[...]``, a partial ``<o.n>`` as
``<o>``, ``BINARY.PEEK`` as ``BINARY``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["MACROS", "FetchAtt", "Section"]

SectionText = Literal["HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"]

# The simple attribute names (no section).
SIMPLE_ATTS = frozenset(
    {
        "ENVELOPE",
        "FLAGS",
        "INTERNALDATE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.SIZE",
        "RFC822.TEXT",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        "MODSEQ",
    }
)


@dataclass(frozen=True, slots=True)
class Section:
    """``section-spec``: a part path (``1.2``) and an optional text part.

    ``part == ()`` with ``text is None`` is the whole message (``BODY[]``).
    ``headers`` is set only for HEADER.FIELDS / HEADER.FIELDS.NOT (as written, for the echo).
    """

    part: tuple[int, ...] = ()
    text: SectionText | None = None
    headers: tuple[str, ...] = ()

    def __str__(self) -> str:
        bits = ".".join(str(p) for p in self.part)
        if self.text:
            bits = f"{bits}.{self.text}" if bits else self.text
        if self.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            bits += " (" + " ".join(_astring(h) for h in self.headers) + ")"
        return bits


def _astring(name: str) -> str:
    if name and all(c.isascii() and (c.isalnum() or c in "-_.") for c in name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class FetchAtt:
    """One fetch attribute.

    ``name`` is one of :data:`SIMPLE_ATTS`, or ``BODY`` / ``BINARY`` / ``BINARY.SIZE`` with
    a ``section``. ``peek`` is set for BODY.PEEK / BINARY.PEEK (and means "do not set
    \\Seen"). ``partial`` is ``(origin, count)``.
    """

    name: str
    section: Section | None = None
    partial: tuple[int, int] | None = None
    peek: bool = False

    @property
    def sets_seen(self) -> bool:
        """Fetching this implicitly sets \\Seen (RFC 9051 §6.4.5: BODY[], BINARY[], RFC822*)."""
        if self.peek:
            return False
        if self.name in ("RFC822", "RFC822.TEXT"):
            return True
        return self.section is not None and self.name in ("BODY", "BINARY")

    def request_name(self) -> str:
        """The attribute as the client spells it (used by the command encoder)."""
        name = self.name
        if self.peek:
            name += ".PEEK"
        if self.section is not None:
            name += f"[{self.section}]"
            if self.partial is not None:
                name += f"<{self.partial[0]}.{self.partial[1]}>"
        return name

    def response_name(self) -> str:
        """The attribute as the FETCH response must spell it (RFC 9051 §7.5.2)."""
        if self.section is None:
            return self.name
        name = f"{self.name}[{self.section}]"
        if self.partial is not None:
            name += f"<{self.partial[0]}>"
        return name


MACROS: dict[str, tuple[FetchAtt, ...]] = {
    "FAST": (FetchAtt("FLAGS"), FetchAtt("INTERNALDATE"), FetchAtt("RFC822.SIZE")),
    "ALL": (
        FetchAtt("FLAGS"),
        FetchAtt("INTERNALDATE"),
        FetchAtt("RFC822.SIZE"),
        FetchAtt("ENVELOPE"),
    ),
    "FULL": (
        FetchAtt("FLAGS"),
        FetchAtt("INTERNALDATE"),
        FetchAtt("RFC822.SIZE"),
        FetchAtt("ENVELOPE"),
        FetchAtt("BODY"),
    ),
}
