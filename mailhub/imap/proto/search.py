"""Typed SEARCH criteria (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 7162 MODSEQ, RFC 5032 WITHIN).

The parser folds the many spellings of the grammar into a few node types, so the search
engine has a small closed set to evaluate:

* ANSWERED/UNANSWERED, DELETED, DRAFT, FLAGGED, SEEN, RECENT and their UN- forms,
  KEYWORD/UNKEYWORD -> :class:`FlagKey`; NEW -> ``And(FlagKey(\\Recent), FlagKey(\\Seen, False))``;
  OLD -> ``FlagKey(\\Recent, False)``.
* FROM/TO/CC/BCC/SUBJECT/HEADER -> :class:`HeaderKey` (``name`` as the header field name;
  an empty ``value`` means "has this header field", RFC 9051 §6.4.4 HEADER).
* BODY/TEXT -> :class:`TextKey`; BEFORE/ON/SINCE and SENT* -> :class:`DateKey`;
  LARGER/SMALLER -> :class:`SizeKey`; YOUNGER/OLDER -> :class:`WithinKey`.
* a sequence set or ``UID`` set (possibly ``$``) -> :class:`SeqKey`.
* a parenthesised list and the top-level program -> :class:`And`; OR -> :class:`Or`;
  NOT -> :class:`Not`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal, Union

from .sequence import SequenceSet

__all__ = [
    "AllKey",
    "And",
    "DateKey",
    "FlagKey",
    "HeaderKey",
    "ModSeqKey",
    "Not",
    "Or",
    "SearchKey",
    "SeqKey",
    "SizeKey",
    "TextKey",
    "WithinKey",
]


@dataclass(frozen=True, slots=True)
class AllKey:
    """ALL: every message."""


@dataclass(frozen=True, slots=True)
class FlagKey:
    """The message has (``present``) or lacks the flag; system flags are canonically cased."""

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class HeaderKey:
    """The header field ``name`` contains ``value`` (case-insensitive substring)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class TextKey:
    """BODY (``body_only``) or TEXT (header and body) contains ``value``."""

    value: str
    body_only: bool


@dataclass(frozen=True, slots=True)
class DateKey:
    """Internal date (or Date: header with ``sent``) before / on / since a day."""

    op: Literal["before", "on", "since"]
    date: datetime.date
    sent: bool = False


@dataclass(frozen=True, slots=True)
class SizeKey:
    """RFC822.SIZE larger / smaller than ``size``."""

    op: Literal["larger", "smaller"]
    size: int


@dataclass(frozen=True, slots=True)
class SeqKey:
    """Message numbers (or UIDs with ``uid``) in the set; ``$`` is ``SequenceSet(saved=True)``."""

    seqset: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class ModSeqKey:
    """MODSEQ >= ``modseq`` (RFC 7162 §3.1.5); the optional entry names a flag's metadata."""

    modseq: int
    entry: str | None = None
    entry_type: Literal["priv", "shared", "all"] | None = None


@dataclass(frozen=True, slots=True)
class WithinKey:
    """YOUNGER / OLDER than ``seconds`` by internal date (RFC 5032)."""

    older: bool
    seconds: int


@dataclass(frozen=True, slots=True)
class Not:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class Or:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class And:
    keys: tuple[SearchKey, ...]


SearchKey = Union[  # noqa: UP007 - forward references
    AllKey,
    FlagKey,
    HeaderKey,
    TextKey,
    DateKey,
    SizeKey,
    SeqKey,
    ModSeqKey,
    WithinKey,
    Not,
    Or,
    And,
]
