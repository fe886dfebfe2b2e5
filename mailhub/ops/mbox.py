"""Reading mbox files (mboxrd/mboxo, as mutt, Thunderbird, Evolution and Dovecot write them).

Streaming, so a multi-gigabyte mbox is never held in memory: a message starts at a line
beginning ``From `` that follows a blank line (or starts the file). Lines ``>From ``,
``>>From `` ... lose one ``>`` (mboxrd unquoting; for mboxo files this restores the common
case too). The mbox metadata headers (``Status``, ``X-Status``, ``X-Keywords``, ``X-UID``,
``X-IMAP``, ``X-IMAPbase``, ``Content-Length``) become flags and are removed from the stored
message, as Dovecot and mutt hide them.
"""

from __future__ import annotations

import calendar
import email.utils
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from mailhub.store.flags import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

_QUOTED_FROM = re.compile(rb"^>+From ")
_META_HEADERS = frozenset(
    {b"status", b"x-status", b"x-keywords", b"x-uid", b"x-imap", b"x-imapbase", b"content-length"}
)
# Status: R = read (O = old, not recent: no IMAP flag). X-Status: A answered, F flagged,
# D deleted, T draft (mutt, Dovecot, Thunderbird's import).
STATUS_LETTERS = {"R": SEEN}
X_STATUS_LETTERS = {"A": ANSWERED, "F": FLAGGED, "D": DELETED, "T": DRAFT}
_KEYWORD = re.compile(r"[!#-'*+\-.0-9A-Z^-z|~$]+")


@dataclass(frozen=True, slots=True)
class MboxMessage:
    data: bytes
    flags: frozenset[str]
    internal_date: float | None
    end_offset: int  # bytes of the file consumed so far (progress)


def from_line_date(line: bytes) -> float | None:
    """The date of a ``From sender Sat Jan  3 01:05:34 1996`` separator (UTC), if readable."""
    parts = line.decode("latin-1").split()
    for take in (5, 6):  # some writers append a time zone or put it before the year
        if len(parts) < 2 + take:
            continue
        for fields in (parts[2 : 2 + take], parts[-take:]):
            text = " ".join(f for f in fields if not f.startswith(("+", "-")) and f.isprintable())
            for fmt in ("%a %b %d %H:%M:%S %Y", "%a %b %d %H:%M %Y"):
                try:
                    return float(calendar.timegm(time.strptime(text, fmt)))
                except ValueError:
                    continue
    return None


def _header_date(headers: list[bytes]) -> float | None:
    for line in headers:
        if line[:5].lower() == b"date:":
            try:
                parsed = email.utils.parsedate_to_datetime(line[5:].decode("latin-1").strip())
            except (TypeError, ValueError, IndexError):
                return None
            return parsed.timestamp() if parsed is not None else None
    return None


def split_headers(lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(header lines with their continuations, the rest starting at the blank line)."""
    for i, line in enumerate(lines):
        if line in (b"\n", b"\r\n"):
            return lines[:i], lines[i:]
    return lines, []


def convert(lines: list[bytes], from_line: bytes) -> tuple[bytes, frozenset[str], float | None]:
    """A message's stored bytes, its flags and internal date, from its mbox lines."""
    headers, body = split_headers(lines)
    flags: set[str] = set()
    kept: list[bytes] = []
    dropping = False
    for line in headers:
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        name, colon, value = line.partition(b":")
        dropping = bool(colon) and name.strip().lower() in _META_HEADERS
        if not dropping:
            kept.append(line)
            continue
        key = name.strip().lower()
        text = value.decode("latin-1").strip()
        if key == b"status":
            flags.update(STATUS_LETTERS[c] for c in text if c in STATUS_LETTERS)
        elif key == b"x-status":
            flags.update(X_STATUS_LETTERS[c] for c in text if c in X_STATUS_LETTERS)
        elif key == b"x-keywords":
            flags.update(k for k in re.split(r"[\s,]+", text) if _KEYWORD.fullmatch(k))
    date = from_line_date(from_line)
    if date is None:
        date = _header_date(kept)
    return b"".join(kept) + b"".join(body), frozenset(flags), date


def read_mbox(f: BinaryIO) -> Iterator[MboxMessage]:
    """Every message of the mbox open in ``f`` (binary), in file order."""
    offset = 0
    from_line: bytes | None = None
    lines: list[bytes] = []
    previous_blank = True

    def finish() -> MboxMessage | None:
        if from_line is None:
            return None
        body = lines
        # The blank line before the next "From " belongs to the mbox format, not the message.
        if body and body[-1] in (b"\n", b"\r\n"):
            body = body[:-1]
        data, flags, date = convert(body, from_line)
        return MboxMessage(data, flags, date, offset)

    for raw in f:
        if raw.startswith(b"From ") and previous_blank:
            done = finish()
            if done is not None:
                yield done
            from_line = raw
            lines = []
            previous_blank = False
            offset += len(raw)
            continue
        offset += len(raw)
        previous_blank = raw in (b"\n", b"\r\n")
        if from_line is None:
            continue  # junk before the first separator
        if _QUOTED_FROM.match(raw):
            raw = raw[1:]
        lines.append(raw)
    done = finish()
    if done is not None:
        yield done
