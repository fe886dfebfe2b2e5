"""Reuse parsed commands that differ only in their tag (and sequence set).

Why: a client repeats a handful of command shapes all session long - ``NOOP``, ``UID FETCH
<set> (FLAGS)``, ``UID STORE <set> +FLAGS (\\Seen)``, ``FETCH <n> (BODY.PEEK[])`` - and the
recursive-descent grammar spends 10-35 microseconds on each line, as much as the rest of a
small command. Commands are frozen dataclasses, so one parse of a shape can serve every later
line of that shape: only the tag changes, and for commands whose first argument is a sequence
set, the set (parsed on its own, which is cheap).

Only single-line commands of a known-harmless kind are reused: never a line with a literal,
never LOGIN or AUTHENTICATE (no password is kept), and anything unusual (an odd tag, a bad
set, a parse error) goes to the full grammar, so every error reply stays what it was.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from .commands import Command
from .grammar import parse_command
from .grammar_search import SEQ_CHARS
from .names import NameOptions
from .sequence import SequenceSet
from .tokens import TAG_CHARS

__all__ = ["parse_command_cached"]

MAX_SHAPES = 1024
MAX_LINE = 1024

# Command words whose first argument is a sequence set: the set is parsed per line.
_SET_FIRST = frozenset({b"FETCH", b"STORE", b"COPY", b"MOVE"})
# Commands whose parse may be reused (never LOGIN/AUTHENTICATE: no secrets in the cache).
_REUSABLE = _SET_FIRST | frozenset(
    {
        b"NOOP",
        b"CHECK",
        b"CAPABILITY",
        b"SEARCH",
        b"SORT",
        b"THREAD",
        b"STATUS",
        b"SELECT",
        b"EXAMINE",
        b"IDLE",
        b"CLOSE",
        b"UNSELECT",
        b"EXPUNGE",
        b"LIST",
        b"LSUB",
        b"NAMESPACE",
        b"GETQUOTAROOT",
        b"ENABLE",
    }
)
# The commands that have a UID form (RFC 9051 and the SORT/THREAD extension).
_UID_FORMS = _SET_FIRST | frozenset({b"SEARCH", b"SORT", b"THREAD"})
_TAG_BYTES = bytes(sorted(TAG_CHARS))
_SEQ_BYTES = bytes(sorted(SEQ_CHARS))

# shape -> a constructor of that command with everything but the tag (and set) filled in
_shapes: dict[tuple[bytes, bool, str], Callable[..., Command]] = {}


def parse_command_cached(buf: bytes, opts: NameOptions) -> Command:
    """:func:`.grammar.parse_command`, answered from earlier parses of the same shape."""
    if len(buf) > MAX_LINE or b"{" in buf:
        return parse_command(buf, opts)
    tag, sp, rest = buf.partition(b" ")
    if not sp or not tag or tag.translate(None, _TAG_BYTES):
        return parse_command(buf, opts)
    words = rest.split(b" ", 3)
    first = words[0].upper()
    at = 1 if first == b"UID" else 0
    word = words[at].upper() if len(words) > at else b""
    if word not in _REUSABLE or (at and word not in _UID_FORMS):
        return parse_command(buf, opts)
    seqset: SequenceSet | None = None
    key = rest
    if word in _SET_FIRST:
        if len(words) < at + 3:  # no set or nothing after it: let the grammar say why
            return parse_command(buf, opts)
        raw_set = words[at + 1]
        if not raw_set or raw_set.translate(None, _SEQ_BYTES):
            return parse_command(buf, opts)
        try:
            seqset = SequenceSet.parse(raw_set)
        except ValueError:
            return parse_command(buf, opts)
        # The shape: everything but the tag and the set.
        key = b" ".join(words[: at + 1]) + b" \0 " + rest.split(b" ", at + 2)[at + 2]
    shape = (key, opts.utf8, opts.separator)
    make = _shapes.get(shape)
    if make is None:
        cmd = parse_command(buf, opts)
        if len(_shapes) >= MAX_SHAPES:
            _shapes.clear()
        fixed = {
            f.name: getattr(cmd, f.name)
            for f in dataclasses.fields(cmd)
            if f.name != "tag" and (seqset is None or f.name != "seqset")
        }
        _shapes[shape] = functools.partial(type(cmd), **fixed)
        return cmd
    if seqset is None:
        return make(tag=tag.decode("ascii"))
    return make(tag=tag.decode("ascii"), seqset=seqset)
