"""IMAP sequence sets (RFC 9051 §9 ``sequence-set``, RFC 5182 ``$``).

A :class:`SequenceSet` is kept exactly as the client wrote it (ranges in any order, ``*``
unresolved) because ``*`` only gets a value against a particular mailbox snapshot: the
highest sequence number for message sets, the highest UID for UID sets. :meth:`resolve`
does that and returns sorted, de-duplicated numbers. ``$`` (SEARCHRES, RFC 5182) is the
separate :data:`SequenceSet.saved` form: the session substitutes its saved search result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["MAX_NUMBER", "SequenceSet", "format_numbers"]

MAX_NUMBER = 4294967295  # nz-number is a 32-bit unsigned value (RFC 9051 §9 "number")

# One range: (start, end); ``None`` stands for ``*``. A single number n is (n, n).
Range = tuple[int | None, int | None]


def _parse_num(text: str) -> int | None:
    if text == "*":
        return None
    if not text.isdigit() or not text.isascii() or text[0] == "0" or len(text) > 10:
        raise ValueError(f"invalid sequence number {text!r}")
    value = int(text)
    if value > MAX_NUMBER:
        raise ValueError(f"sequence number out of range: {text}")
    return value


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed ``sequence-set``; ``saved`` is True when ``$`` occurs (RFC 5182 allows it as
    the last element, e.g. ``1:5,$``; we accept it anywhere). The session replaces ``$`` with
    its saved result through :meth:`with_saved` before resolving."""

    ranges: tuple[Range, ...] = ()
    saved: bool = False

    @classmethod
    def parse(cls, text: str | bytes) -> SequenceSet:
        """Parse the wire form; raise :class:`ValueError` if it is not a sequence set."""
        if isinstance(text, bytes):
            text = text.decode("ascii", "replace")
        if not text:
            raise ValueError("empty sequence set")
        ranges: list[Range] = []
        saved = False
        for part in text.split(","):
            if part == "$":
                saved = True
                continue
            lo, sep, hi = part.partition(":")
            if sep:
                ranges.append((_parse_num(lo), _parse_num(hi)))
            else:
                n = _parse_num(lo)
                ranges.append((n, n))
        return cls(tuple(ranges), saved)

    @classmethod
    def of(cls, numbers: Iterable[int]) -> SequenceSet:
        """Build the shortest set covering ``numbers`` (e.g. ``[1, 2, 3, 7]`` -> ``1:3,7``)."""
        ranges: list[Range] = []
        for lo, hi in _runs(numbers):
            ranges.append((lo, hi))
        return cls(tuple(ranges))

    @classmethod
    def all(cls) -> SequenceSet:
        """``1:*``."""
        return cls(((1, None),))

    def __str__(self) -> str:
        parts = [_fmt_range(r) for r in self.ranges]
        if self.saved:
            parts.append("$")
        return ",".join(parts)

    def with_saved(self, numbers: Iterable[int]) -> SequenceSet:
        """Replace ``$`` by the saved search result (RFC 5182 §2.1); no-op without ``$``."""
        if not self.saved:
            return self
        return SequenceSet(self.ranges + tuple((n, n) for n in numbers))

    def __bytes__(self) -> bytes:
        return str(self).encode("ascii")

    @property
    def uses_star(self) -> bool:
        """Whether ``*`` occurs (its value depends on the mailbox)."""
        return any(a is None or b is None for a, b in self.ranges)

    def bounds(self, largest: int) -> Iterator[tuple[int, int]]:
        """Yield each range as ``(low, high)`` with ``*`` = ``largest``, in written order."""
        if self.saved:
            raise ValueError("'$' must be replaced by the saved search result first")
        for a, b in self.ranges:
            lo = largest if a is None else a
            hi = largest if b is None else b
            if lo > hi:
                lo, hi = hi, lo
            yield lo, hi

    def max_explicit(self) -> int:
        """The largest number written explicitly (0 if only ``*``): for "out of range" checks."""
        return max((x for r in self.ranges for x in r if x is not None), default=0)

    def resolve(self, largest: int, *, clip: bool = True) -> list[int]:
        """Sorted unique numbers of this set with ``*`` = ``largest``.

        With ``clip`` (the normal case), numbers above ``largest`` are dropped: for UID sets
        that is what RFC 9051 §6.4.9 asks for, and for message sets the session should first
        check :meth:`max_explicit` against the mailbox size and answer BAD.
        """
        merged = _merge(self.bounds(largest))
        out: list[int] = []
        for lo, hi in merged:
            lo = max(lo, 1)  # "*" in an empty mailbox is 0: nothing
            if clip:
                hi = min(hi, largest)
            if lo <= hi:
                out.extend(range(lo, hi + 1))
        return out

    def contains(self, number: int, largest: int) -> bool:
        """Whether ``number`` is in the set with ``*`` = ``largest``."""
        return number >= 1 and any(lo <= number <= hi for lo, hi in self.bounds(largest))


def _fmt_range(r: Range) -> str:
    a, b = r
    sa = "*" if a is None else str(a)
    if a == b:
        return sa
    return sa + ":" + ("*" if b is None else str(b))


def _merge(bounds: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(bounds):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _runs(numbers: Iterable[int]) -> list[tuple[int, int]]:
    return _merge((n, n) for n in numbers)


def format_numbers(numbers: Iterable[int]) -> str:
    """The compact sequence-set spelling of ``numbers`` (for ESEARCH ALL, VANISHED, COPYUID)."""
    return ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in _runs(numbers))
