"""Decoded text of a message for SEARCH, SORT and THREAD.

SEARCH (RFC 9051 §6.4.4) matches HEADER/SUBJECT/FROM/... and BODY/TEXT against what a person
reads, so header values are RFC 2047-decoded and bodies have their transfer encoding and
charset undone; matching is a case-insensitive substring test on casefolded text. SORT and
THREAD (RFC 5256, RFC 5957) need the base subject, the first address's mailbox and the
display name; SENTBEFORE/SENTON/SENTSINCE need the Date header's calendar date.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import datetime as dt
import email.utils
import re
from collections.abc import Iterator

from mailhub.mime import headers as H
from mailhub.mime.address import Address, parse_addresses
from mailhub.mime.sections import decode_body
from mailhub.mime.structure import Part, parse

_EW = re.compile(rb"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")
_EW_GAP = re.compile(rb"(\?=)[ \t\r\n]+(=\?)")
_WS = re.compile(r"\s+")
_QHEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def _charset(name: bytes | str | None) -> str:
    """A Python codec name for a MIME charset, falling back to latin-1 for unknown ones."""
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    name = (name or "us-ascii").split("*", 1)[0].strip().strip('"').lower()
    if name in ("us-ascii", "ascii", "unknown-8bit", "x-unknown", ""):
        return "utf-8"  # 8-bit text labelled ASCII is in practice UTF-8 (or falls back below)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return "latin-1"
    # "base64", "zlib", "rot13"... are codecs too, but not charsets
    return info.name if getattr(info, "_is_text_encoding", True) else "latin-1"


def decode_bytes(raw: bytes, charset: bytes | str | None = None) -> str:
    """Bytes in ``charset`` to str, never failing: invalid UTF-8 falls back to cp1252."""
    cs = _charset(charset)
    try:
        return raw.decode(cs)
    except (UnicodeDecodeError, LookupError, ValueError, TypeError):
        if cs != "utf-8":
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return raw.decode("cp1252", "replace")


def decode_header(raw: bytes) -> str:
    """An RFC 2047 decoded, unfolded header value (raw 8-bit taken as UTF-8 or cp1252)."""
    value = H.unfold(raw)
    value = _EW_GAP.sub(rb"\1\2", value)  # RFC 2047 §6.2: whitespace between words goes

    out: list[str] = []
    pos = 0
    for m in _EW.finditer(value):
        out.append(decode_bytes(value[pos : m.start()]))
        cs, enc, text = m.groups()
        try:
            if enc in b"Bb":
                text += b"=" * (-len(text) % 4)
                data = base64.b64decode(text, validate=False)
            else:
                data = _QHEX.sub(lambda x: bytes([int(x.group(1), 16)]), text.replace(b"_", b" "))
            out.append(decode_bytes(data, cs))
        except (ValueError, binascii.Error):
            out.append(decode_bytes(m.group(0)))
        pos = m.end()
    out.append(decode_bytes(value[pos:]))
    return "".join(out)


def header_values(fields: list[tuple[bytes, bytes]], name: str) -> list[str]:
    """All decoded values of header ``name`` (case-insensitive), in order."""
    lname = name.lower().encode("ascii", "replace")
    return [decode_header(v) for n, v in fields if n == lname]


def fold(s: str) -> str:
    """The form both sides of a SEARCH comparison take: casefolded, whitespace collapsed."""
    return _WS.sub(" ", s).casefold()


def header_matches(fields: list[tuple[bytes, bytes]], name: str, needle: str) -> bool:
    """RFC 9051 SEARCH HEADER: substring of a decoded value; "" matches if the field exists."""
    values = header_values(fields, name)
    if not needle:
        return bool(values)
    n = fold(needle)
    return any(n in fold(v) for v in values)


def body_texts(data: bytes, root: Part) -> Iterator[str]:
    """Decoded text of every text/* leaf part, and the headers of embedded messages."""
    for p in root.walk():
        if p is not root and p.message is not None:
            msg = p.message
            yield decode_header(data[msg.header_start : msg.body_start])
        if p.is_multipart or p.message is not None:
            continue
        if p.type.lower() != b"text" and p.explicit_type:
            continue
        raw = data[p.body_start : p.body_end]
        try:
            decoded = decode_body(raw, p.encoding, strict=False)
        except ValueError:
            decoded = raw
        yield decode_bytes(decoded, p.param(b"charset"))


def body_matches(data: bytes, root: Part, needle: str) -> bool:
    """SEARCH BODY: the decoded body text contains ``needle`` (case-insensitive)."""
    n = fold(needle)
    return any(n in fold(t) for t in body_texts(data, root))


def text_matches(data: bytes, root: Part, needle: str) -> bool:
    """SEARCH TEXT: the decoded header or body contains ``needle`` (case-insensitive)."""
    n = fold(needle)
    if n in fold(decode_header(data[root.header_start : root.body_start])):
        return True
    return body_matches(data, root, needle)


def parse_date(raw: bytes | str | None) -> dt.datetime | None:
    """An RFC 5322 Date value as an aware datetime (naive ones taken as UTC), or None."""
    if raw is None:
        return None
    s = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    try:
        d = email.utils.parsedate_to_datetime(s.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if d is None:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return d


def sent_date(fields: list[tuple[bytes, bytes]]) -> dt.date | None:
    """SENTBEFORE/SENTON/SENTSINCE compare the Date header's date "disregarding time and
    timezone" (RFC 9051 §6.4.4), i.e. the calendar date as written."""
    d = parse_date(H.first_value(fields, b"date"))
    return None if d is None else d.date()


def sort_date(fields: list[tuple[bytes, bytes]]) -> dt.datetime | None:
    """SORT DATE key (RFC 5256 §3): the sent date-time in UTC; None means "use INTERNALDATE"."""
    d = parse_date(H.first_value(fields, b"date"))
    return None if d is None else d.astimezone(dt.UTC)


_BLOB = r"\[[^\[\]]*\]\s*"
_REFWD = re.compile(r"^(?:" + _BLOB + r")*(?:re|fwd?)\s*(?:" + _BLOB + r")?:", re.IGNORECASE)
_BLOB_RE = re.compile(r"^" + _BLOB)


MAX_SUBJECT = 4096


def _strip_trailer(s: str) -> str:
    """RFC 5256 §2.1 step 2: drop trailing blanks and "(fwd)" markers (linear time)."""
    while True:
        s = s.rstrip()
        if s[-5:].lower() == "(fwd)":
            s = s[:-5]
            continue
        return s


def base_subject_info(subject: str) -> tuple[str, bool]:
    """RFC 5256 §2.1 base subject and whether it was a reply/forward (for THREAD).

    Only the first :data:`MAX_SUBJECT` characters are considered, so a hostile subject of
    many thousand ``[blob]``s cannot make sorting quadratic.
    """
    s = _WS.sub(" ", subject[:MAX_SUBJECT])
    is_reply = False
    while True:
        s = _strip_trailer(s)  # (2)
        while True:  # (3)-(5)
            before = s
            while True:
                if s.startswith(" "):
                    s = s.lstrip(" ")
                    continue
                m = _REFWD.match(s)
                if m is None:
                    break
                s = s[m.end() :]
                is_reply = True
            m = _BLOB_RE.match(s)
            if m is not None and s[m.end() :]:
                s = s[m.end() :]
            if s == before:
                break
        if s[:5].lower() == "[fwd:" and s.endswith("]"):  # (6)
            s = s[5:-1]
            is_reply = True
            continue
        return s, is_reply


def base_subject(subject: str) -> str:
    """RFC 5256 §2.1 base subject, compared case-insensitively by SORT SUBJECT."""
    return base_subject_info(subject)[0]


def subject_of(fields: list[tuple[bytes, bytes]]) -> str:
    """The decoded Subject ("" when absent)."""
    values = header_values(fields, "subject")
    return values[0] if values else ""


def first_address(fields: list[tuple[bytes, bytes]], name: str) -> Address | None:
    """The first real address (not a group marker) of an address header."""
    lname = name.lower().encode()
    for n, v in fields:
        if n == lname:
            for a in parse_addresses(H.unfold(v)):
                if a.host is not None:
                    return a
    return None


def sort_mailbox(fields: list[tuple[bytes, bytes]], name: str) -> str:
    """SORT FROM/TO/CC key (RFC 5256 §3): the first address's local-part, lowercased."""
    a = first_address(fields, name)
    if a is None or a.mailbox is None:
        return ""
    return decode_bytes(a.mailbox).casefold()


def display_name(fields: list[tuple[bytes, bytes]], name: str) -> str:
    """SORT DISPLAYFROM/DISPLAYTO key (RFC 5957 §3): the decoded display name of the first
    address, or its addr-spec when it has none; "" when there is no address."""
    a = first_address(fields, name)
    if a is None:
        return ""
    if a.name:
        decoded = decode_header(a.name).strip()
        if decoded:
            return decoded.casefold()
    return decode_bytes(a.addr_spec).casefold()


def sort_subject(fields: list[tuple[bytes, bytes]]) -> str:
    """SORT SUBJECT key (RFC 5256 §3): the base subject, casefolded."""
    return base_subject(subject_of(fields)).casefold()


_MSGID = re.compile(rb"<([^<>\s]+)>")


def message_ids(value: bytes | None) -> list[str]:
    """The ``<msg-id>`` tokens of a header value, without brackets, in order."""
    if not value:
        return []
    return [m.group(1).decode("utf-8", "replace") for m in _MSGID.finditer(value)]


def message_id_of(fields: list[tuple[bytes, bytes]]) -> str | None:
    """The message's own Message-ID (first valid one), for THREAD=REFERENCES (RFC 5256 §4)."""
    ids = message_ids(H.first_value(fields, b"message-id"))
    return ids[0] if ids else None


def references_of(fields: list[tuple[bytes, bytes]]) -> list[str]:
    """The parent chain for THREAD=REFERENCES (RFC 5256 §4 step 1A): the References ids,
    or failing those the first valid id of In-Reply-To."""
    refs = message_ids(H.first_value(fields, b"references"))
    if refs:
        return refs
    return message_ids(H.first_value(fields, b"in-reply-to"))[:1]


class MessageText:
    """One message's searchable text, decoded and casefolded once and reused by every key
    of a SEARCH program (``OR BODY a BODY b`` must not decode a 20 MB body twice)."""

    __slots__ = ("_body", "_data", "_header", "root")

    def __init__(self, data: bytes, root: Part | None = None) -> None:
        self._data = data
        self.root = root if root is not None else parse(data)
        self._header: str | None = None
        self._body: list[str] | None = None

    @property
    def fields(self) -> list[tuple[bytes, bytes]]:
        return self.root.fields

    def header_contains(self, name: str, needle: str) -> bool:
        """SEARCH HEADER name needle (and FROM/TO/CC/BCC/SUBJECT)."""
        return header_matches(self.root.fields, name, needle)

    def body_contains(self, needle: str) -> bool:
        """SEARCH BODY needle."""
        if self._body is None:
            self._body = [fold(t) for t in body_texts(self._data, self.root)]
        n = fold(needle)
        return any(n in t for t in self._body)

    def text_contains(self, needle: str) -> bool:
        """SEARCH TEXT needle: header or body."""
        if self._header is None:
            r = self.root
            self._header = fold(decode_header(self._data[r.header_start : r.body_start]))
        return fold(needle) in self._header or self.body_contains(needle)
