"""Maildir file names: ``<unique>,U=<uid>,S=<size>,W=<crlf size>:2,<flags>``.

``S=`` and ``W=`` are Dovecot's fields (file size and CRLF size), so a mailhub Maildir opened by
Dovecot needs no stat or read to know sizes. ``U=`` is mailhub's own: the UID the message was
given when it was stored. The index is the authority for UIDs, but if an index commit is lost
(power failure with SQLite's ``synchronous=NORMAL``) the UID can be recovered from the name, so
an acknowledged UID is never handed to another message. Other programs ignore unknown
``,X=`` fields.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import time
from dataclasses import dataclass
from operator import itemgetter

from mailhub.store.flags import LETTER_TO_FLAG, MAILDIR_LETTERS

_counter = itertools.count()
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072").replace(",", "\\054")


@dataclass(frozen=True, slots=True)
class ParsedName:
    """What a Maildir file name tells without opening the file."""

    base: str  # everything before the ":2," info: stable across flag changes
    uid: int | None
    size: int | None
    crlf_size: int | None
    letters: str  # the info letters after ":2,"


def unique() -> str:
    """A new unique base in the style of the Maildir spec (time, microseconds, pid, counter)."""
    now = time.time()
    sec = int(now)
    usec = int((now - sec) * 1_000_000)
    return f"{sec}.M{usec}P{os.getpid()}Q{next(_counter)}.{_HOST}"


_UNIQUE = re.compile(r"\d+\.M\d+P(\d+)Q\d+\.(.+)")


def writer_pid(name: str) -> int | None:
    """The pid of the process of this host whose ``unique()`` made ``name``, else None."""
    match = _UNIQUE.fullmatch(name)
    if match is None or match.group(2) != _HOST:
        return None
    return int(match.group(1))


def parse(name: str) -> ParsedName:
    """Split a file name into its base, the fields mailhub and Dovecot write, and flag letters."""
    base, sep, info = name.partition(":")
    letters = info[2:] if sep and info.startswith("2,") else ""
    return ParsedName(base, *fields(base), letters)


def fields(base: str) -> tuple[int | None, int | None, int | None]:
    """``(U=, S=, W=)`` of a base, ``None`` for each one missing or not a plain number.

    A tuple, not a ``ParsedName``: an index rebuild calls this for every file, and building
    a frozen dataclass costs more than the parsing itself.
    """
    uid = size = crlf = None
    if "," in base:
        for field in base.split(",")[1:]:
            if field[1:2] != "=":
                continue
            value = field[2:]
            if not value.isdigit() or not value.isascii():
                continue
            key = field[0]
            if key == "S":
                size = int(value)
            elif key == "W":
                crlf = int(value)
            elif key == "U":
                uid = int(value)
    return uid, size, crlf


# One line of "\n".join(names): the base with its usual fields in their usual order (mailhub's
# U=,S=,W=; Dovecot's S=,W=), what else the base holds, and the letters after ":2,". Every line
# matches (all parts are optional); a line whose "rest" is not empty is parsed again by
# ``fields``, so the result is always exactly what ``parse`` gives.
# Possessive quantifiers (``*+``, ``?+``): no backtracking, which halves the time, and none is
# needed as every line matches at the first try.
_NAME_LINE = re.compile(
    r"^([^,:\n]*+"
    r"(?:,U=([0-9]++)(?=[,:\n]|$))?+"
    r"(?:,S=([0-9]++)(?=[,:\n]|$))?+"
    r"(?:,W=([0-9]++)(?=[,:\n]|$))?+"
    r"([^:\n]*+))"
    r"(?::(?:2,([^\n]*+)|[^\n]*+))?+$",
    re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class ParsedNames:
    """``parse`` of many names, as columns: position ``i`` is name ``i``."""

    bases: list[str]
    uids: list[int | None]
    sizes: list[int | None]
    crlf_sizes: list[int | None]
    letters: list[str]


def parse_many(names: list[str]) -> ParsedNames:
    """``parse`` for every name of a directory listing, at a fraction of the cost.

    An index rebuild parses 100,000 names and more; one regular-expression pass over all of
    them, run in C, replaces 100,000 Python calls (and their 100,000 result objects).
    """
    found = _NAME_LINE.findall("\n".join(names))
    if len(found) != len(names) or not names:  # a name with a line break in it (or none)
        one_by_one = [parse(name) for name in names]
        return ParsedNames(
            [p.base for p in one_by_one],
            [p.uid for p in one_by_one],
            [p.size for p in one_by_one],
            [p.crlf_size for p in one_by_one],
            [p.letters for p in one_by_one],
        )
    # One column at a time (itemgetter runs in C): 4x faster than transposing with zip(*found).
    bases, uids, sizes, crlfs, rests, letters = (list(map(itemgetter(i), found)) for i in range(6))
    parsed = ParsedNames(bases, _ints(uids), _ints(sizes), _ints(crlfs), letters)
    if rests.count("") != len(rests):  # other fields, or these in another order
        for i, rest in enumerate(rests):
            if rest:
                parsed.uids[i], parsed.sizes[i], parsed.crlf_sizes[i] = fields(bases[i])
    return parsed


def _ints(column: list[str]) -> list[int | None]:
    if "" not in column:
        return list(map(int, column))
    return [int(value) if value else None for value in column]


def build(base: str, letters: str) -> str:
    """The ``cur/`` name for ``base`` with the given info letters."""
    return f"{base}:2,{letters}"


def new_base(uid: int, size: int, crlf_size: int) -> str:
    """A fresh base carrying the UID and both sizes."""
    return f"{unique()},U={uid},S={size},W={crlf_size}"


def flags_to_letters(flags: frozenset[str], keyword_letter: dict[str, str]) -> str:
    """Info letters for ``flags``: system letters, then keyword letters, each sorted (ASCII)."""
    system = sorted(MAILDIR_LETTERS[f] for f in flags if f in MAILDIR_LETTERS)
    keywords = sorted(
        keyword_letter[f] for f in flags if f not in MAILDIR_LETTERS and f in keyword_letter
    )
    return "".join(system) + "".join(keywords)


def letters_to_flags(letters: str, letter_keyword: dict[str, str]) -> frozenset[str]:
    """Flags for info letters; unknown letters are ignored (Maildir says to keep them as is)."""
    flags: set[str] = set()
    for ch in letters:
        if ch in LETTER_TO_FLAG:
            flags.add(LETTER_TO_FLAG[ch])
        elif ch in letter_keyword:
            flags.add(letter_keyword[ch])
    return frozenset(flags)
