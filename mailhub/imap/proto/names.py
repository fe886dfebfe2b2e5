"""Mailbox names, flags and dates as the command grammar spells them.

Mailbox names arrive as modified UTF-7 (IMAP4rev1) or UTF-8 (after ENABLE UTF8=ACCEPT or
IMAP4rev2; RFC 6855 §3, RFC 9051 §5.1). In UTF-8 mode the bytes are taken literally, so the
``&`` that Thunderbird sends unencoded after ENABLE UTF8=ACCEPT is simply an ampersand.

:func:`validate_mailbox` is the one check that stands between a client and the filesystem:
it refuses (``NO [CANNOT]``) any name that could escape the account's Maildir or that the
store could not represent - empty components, ``.``/``..``, control characters, wildcards,
over-long components.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from . import utf7
from .tokens import BadSyntax, Reader, Refused

__all__ = [
    "NameOptions",
    "canonical_flag",
    "decode_mailbox",
    "normalize_inbox",
    "parse_date",
    "parse_date_time",
    "validate_mailbox",
]

MAX_COMPONENT_BYTES = 255  # one path component of the Maildir++ directory name
MAX_NAME_BYTES = 1024

SYSTEM_FLAGS = {
    f.upper(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")
}

SPECIAL_USE = {
    f.upper(): f
    for f in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(slots=True)
class NameOptions:
    """How the session currently wants names read: set ``utf8`` after UTF8=ACCEPT/IMAP4rev2."""

    utf8: bool = False
    separator: str = "/"


def normalize_inbox(name: str, separator: str = "/") -> str:
    """``INBOX`` is case-insensitive (RFC 9051 §5.1), also as the first hierarchy level."""
    head = name[:5]
    if head.upper() == "INBOX" and (len(name) == 5 or name[5:6] == separator):
        return "INBOX" + name[5:]
    return name


def decode_mailbox(raw: bytes, opts: NameOptions) -> str:
    """Wire bytes -> Unicode name (not validated); ``Refused(CANNOT)`` if undecodable."""
    if opts.utf8:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Refused("CANNOT", "Mailbox name is not valid UTF-8") from exc
    else:
        try:
            text = utf7.decode(raw)
        except utf7.UTF7Error as exc:
            raise Refused("CANNOT", f"Mailbox name is not valid modified UTF-7: {exc}") from exc
    return normalize_inbox(text, opts.separator)


def validate_mailbox(name: str, separator: str = "/") -> str:
    """Refuse names that are unsafe or unrepresentable; return the name unchanged."""
    if not name:
        raise Refused("CANNOT", "Empty mailbox name")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise Refused("CANNOT", "Mailbox name too long")
    for ch in name:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o <= 0x9F or o in (0x2028, 0x2029) or 0xD800 <= o <= 0xDFFF:
            raise Refused("CANNOT", "Control character in mailbox name")
        if ch in "%*":
            raise Refused("CANNOT", "Wildcard character in mailbox name")
        if ch == "\\" and separator != "\\":
            raise Refused("CANNOT", "Backslash in mailbox name")
    for comp in name.split(separator):
        if comp == "":
            raise Refused("CANNOT", "Empty hierarchy level in mailbox name")
        if comp in (".", "..") or comp.strip(".") == "":
            raise Refused("CANNOT", "Mailbox name level may not be '.' or '..'")
        if len(comp.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise Refused("CANNOT", "Mailbox name level too long")
    return name


def read_mailbox(r: Reader, opts: NameOptions, *, validate: bool = True) -> str:
    """``mailbox`` = astring, decoded and (by default) validated."""
    name = decode_mailbox(r.astring("mailbox name"), opts)
    return validate_mailbox(name, opts.separator) if validate else name


def read_pattern(r: Reader, opts: NameOptions) -> str:
    """``list-mailbox``: decoded, wildcards kept, not validated (it names nothing by itself)."""
    raw = r.list_mailbox()
    if opts.utf8:
        return normalize_inbox(raw.decode("utf-8", "replace"), opts.separator)
    try:
        return normalize_inbox(utf7.decode(raw), opts.separator)
    except utf7.UTF7Error:
        # A pattern that is not mUTF-7 matches nothing canonical; keep it literal.
        return raw.decode("latin-1")


def canonical_flag(raw: bytes) -> str:
    """System flags get their canonical case; keywords are kept as sent."""
    text = raw.decode("ascii", "replace")
    if text.startswith("\\"):
        up = text.upper()
        return SYSTEM_FLAGS.get(up) or SPECIAL_USE.get(up, text)
    return text


def read_flag(r: Reader) -> str:
    """``flag`` = "\\" atom / keyword atom."""
    if r.try_token(b"\\"):
        return canonical_flag(b"\\" + r.atom("flag"))
    return canonical_flag(r.atom("flag keyword"))


def read_flag_list(r: Reader) -> tuple[str, ...]:
    """``flag-list`` = "(" [flag *(SP flag)] ")"."""
    return tuple(r.paren_list(read_flag, allow_empty=True))


def _month(text: bytes) -> int:
    try:
        return MONTHS.index(text.decode("ascii").upper()) + 1
    except (ValueError, UnicodeDecodeError):
        raise BadSyntax("Invalid month") from None


def parse_date(text: bytes) -> datetime.date:
    """``date-text`` = date-day "-" date-month "-" date-year (e.g. ``1-Feb-1994``)."""
    parts = text.split(b"-")
    if len(parts) != 3 or not (1 <= len(parts[0]) <= 2) or len(parts[2]) != 4:
        raise BadSyntax("Invalid date")
    if not (parts[0].isdigit() and parts[2].isdigit()):
        raise BadSyntax("Invalid date")
    try:
        return datetime.date(int(parts[2]), _month(parts[1]), int(parts[0]))
    except ValueError:
        raise BadSyntax("Invalid date") from None


def read_date(r: Reader) -> datetime.date:
    """``date`` = date-text / DQUOTE date-text DQUOTE."""
    if r.peek() == b'"':
        return parse_date(r.quoted())
    return parse_date(r.atom("date"))


def parse_date_time(text: bytes) -> datetime.datetime:
    """``date-time`` contents: ``dd-Mon-yyyy hh:mm:ss +zzzz`` (day may be space-padded)."""
    s = text.strip(b" ")
    try:
        dpart, tpart, zpart = s.split(b" ")
        d = parse_date(dpart)
        hh, mm, ss = (int(x) for x in tpart.split(b":"))
        if len(tpart) != 8 or len(zpart) != 5 or zpart[:1] not in (b"+", b"-"):
            raise ValueError
        if not zpart[1:].isdigit():
            raise ValueError
        offset = int(zpart[1:3]) * 60 + int(zpart[3:5])
        if int(zpart[3:5]) >= 60:
            raise ValueError
        tz = datetime.timezone(datetime.timedelta(minutes=-offset if zpart[:1] == b"-" else offset))
        return datetime.datetime(d.year, d.month, d.day, hh, mm, ss, tzinfo=tz)
    except ValueError:
        raise BadSyntax("Invalid date-time") from None


def read_date_time(r: Reader) -> datetime.datetime:
    return parse_date_time(r.quoted())


def format_date_time(dt: datetime.datetime) -> str:
    """The ``date-time`` wire form (INTERNALDATE, APPEND): ``"dd-Mon-yyyy hh:mm:ss +zzzz"``."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    off = dt.utcoffset() or datetime.timedelta(0)
    minutes = int(off.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f"{dt.day:02d}-{MONTHS[dt.month - 1].title()}-{dt.year:04d} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


def format_date(d: datetime.date) -> str:
    """``date-text`` (SEARCH dates)."""
    return f"{d.day}-{MONTHS[d.month - 1].title()}-{d.year:04d}"
