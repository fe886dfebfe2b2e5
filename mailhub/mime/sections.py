"""BODY[section], BINARY[section] and BINARY.SIZE extraction (RFC 9051 §6.4.5, RFC 3516).

The caller passes the message bytes and its parsed :class:`Part` tree. Sections that are one
contiguous byte range (``""``, HEADER, TEXT, MIME, part bodies) are available as a range via
:func:`section_range` so a 50 MB body can be streamed from the store with ``read_range``
instead of being copied; HEADER.FIELDS[.NOT] are built from the header bytes.
A nonexistent part yields an empty string (RFC 3501 leaves it open; Dovecot answers this way).
"""

from __future__ import annotations

import binascii
import enum
import re
from dataclasses import dataclass

from mailhub.mime import headers as H
from mailhub.mime.structure import Part, part_by_number


class SectionErrorKind(enum.Enum):
    """Why a section cannot be served; IMAP maps UNKNOWN_CTE to ``NO [UNKNOWN-CTE]``."""

    SYNTAX = "syntax"  # not a valid section spec: BAD
    UNKNOWN_CTE = "unknown-cte"  # BINARY of a part whose encoding we cannot decode


class SectionError(Exception):
    def __init__(self, kind: SectionErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Section:
    """A parsed section spec: part numbers, then an optional text specifier.

    ``text`` is one of None, "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME";
    ``fields`` holds the header names for the HEADER.FIELDS forms (as given, any case).
    """

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[bytes, ...] = ()

    def spec(self) -> bytes:
        """The section as echoed in a FETCH response, e.g. ``1.2.HEADER.FIELDS (FROM)``."""
        bits = [b"%d" % n for n in self.part]
        if self.text:
            bits.append(self.text.encode())
        out = b".".join(bits)
        if self.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            out += b" (" + b" ".join(f.upper() for f in self.fields) + b")"
        return out


_SPEC = re.compile(
    rb"^((?:[1-9][0-9]*)(?:\.[1-9][0-9]*)*)?\.?"
    rb"(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?"
    rb"(?:\s*\(([^()]*)\))?$",
    re.IGNORECASE,
)


def parse_section(spec: bytes) -> Section:
    """Parse the text between ``[`` and ``]`` (a convenience; the IMAP parser may build
    :class:`Section` itself). Raises SectionError(SYNTAX) on anything RFC 9051 forbids."""
    m = _SPEC.match(spec.strip())
    if m is None:
        raise SectionError(SectionErrorKind.SYNTAX, "bad section")
    nums_b, text_b, flist = m.groups()
    nums = tuple(int(x) for x in nums_b.split(b".")) if nums_b else ()
    text = text_b.decode().upper() if text_b else None
    if nums_b and not text and spec.strip() != nums_b:
        raise SectionError(SectionErrorKind.SYNTAX, "bad section")
    if text_b and nums_b and not spec.strip()[len(nums_b) :].startswith(b"."):
        raise SectionError(SectionErrorKind.SYNTAX, "bad section")
    if text == "MIME" and not nums:
        raise SectionError(SectionErrorKind.SYNTAX, "MIME needs a part number")
    fields: tuple[bytes, ...] = ()
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        if flist is None or not flist.split():
            raise SectionError(SectionErrorKind.SYNTAX, "HEADER.FIELDS needs field names")
        fields = tuple(f.strip(b'"') for f in flist.split())
    elif flist is not None:
        raise SectionError(SectionErrorKind.SYNTAX, "bad section")
    return Section(nums, text, fields)


def _message_of(root: Part, nums: tuple[int, ...]) -> Part | None:
    """The message a HEADER/TEXT specifier refers to: the root, or an embedded message."""
    if not nums:
        return root
    p = part_by_number(root, list(nums))
    if p is None:
        return None
    return p.message  # None for a non-message part


def section_range(root: Part, section: Section) -> tuple[int, int] | None:
    """Byte range ``(start, end)`` of a contiguous section, or None for HEADER.FIELDS forms.

    A section naming a nonexistent part, or HEADER/TEXT of a part that is not a message,
    is the empty range at 0.
    """
    text = section.text
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        return None
    if text is None:
        if not section.part:
            return (root.header_start, root.body_end)
        p = part_by_number(root, list(section.part))
        return (0, 0) if p is None else (p.body_start, p.body_end)
    if text == "MIME":
        p = part_by_number(root, list(section.part))
        return (0, 0) if p is None else (p.header_start, p.header_fetch_end)
    msg = _message_of(root, section.part)
    if msg is None:
        return (0, 0)
    if text == "HEADER":
        return (msg.header_start, msg.header_fetch_end)
    return (msg.body_start, msg.body_end)  # TEXT


def extract(data: bytes, root: Part, section: Section) -> bytes:
    """The bytes of BODY[section] (before any ``<partial>``)."""
    rng = section_range(root, section)
    if rng is not None:
        return data[rng[0] : rng[1]]
    hrng = header_range(root, section)
    if hrng is None:
        return b""
    return filter_header(data[hrng[0] : hrng[1]], section)


def header_range(root: Part, section: Section) -> tuple[int, int] | None:
    """For HEADER.FIELDS[.NOT]: the header block to read and pass to :func:`filter_header`
    (None when the part is not a message: the answer is then empty)."""
    msg = _message_of(root, section.part)
    if msg is None:
        return None
    return (msg.header_start, msg.header_fetch_end)


def filter_header(block: bytes, section: Section) -> bytes:
    """HEADER.FIELDS / HEADER.FIELDS.NOT of a header block (RFC 9051 §6.4.5): the selected
    fields, folding kept, in their original order, then the end-of-header line."""
    wanted = {f.lower() for f in section.fields}
    keep = section.text == "HEADER.FIELDS"
    chunks = H.raw_fields(block)
    if not chunks:
        return b""
    # Dovecot's rules, checked against its answers (tests/mime/fixtures, compare_dovecot.py):
    # HEADER.FIELDS sends each selected field ending in CRLF, then the end-of-header CRLF;
    # HEADER.FIELDS.NOT sends the other fields as stored, plus the blank line if there is one.
    if keep:
        out = [
            c if c.endswith(b"\n") else c + b"\r\n"
            for name, c in chunks
            if name is not None and name in wanted
        ]
        out.append(b"\r\n")
    else:
        out = [c for name, c in chunks if name is None or name not in wanted]
    return b"".join(out)


def nul_safe(value: bytes) -> bytes:
    """BODY[...] bytes fit for a plain literal: NUL (only legal in BINARY's literal8,
    RFC 9051 §4.3) becomes 0x80, as Dovecot sends it."""
    return value.replace(b"\x00", b"\x80") if b"\x00" in value else value


def partial(value: bytes, origin: int, length: int | None) -> bytes:
    """RFC 9051 §6.4.5 ``<origin.length>``: a slice; past the end gives an empty string."""
    if length is None:
        return value[origin:]
    return value[origin : origin + length]


_IDENTITY = {b"7bit", b"8bit", b"binary"}


def decode_body(raw: bytes, encoding: bytes | None, *, strict: bool = True) -> bytes:
    """Undo a Content-Transfer-Encoding (RFC 2045 §6).

    Base64 skips characters outside the alphabet and stops at padding (RFC 2045 §6.8 says to
    ignore them); quoted-printable keeps malformed ``=`` sequences literally. An encoding we
    do not know raises SectionError(UNKNOWN_CTE) when ``strict`` (BINARY, RFC 3516 §4.2),
    else the raw bytes come back (SEARCH still wants to look at them).
    """
    enc = (encoding or b"7bit").strip().lower()
    if enc in _IDENTITY:
        return raw
    if enc == b"base64":
        return _b64(raw)
    if enc == b"quoted-printable":
        # RFC 2045 §6.7 rule 3: blanks at the end of an encoded line are padding; delete them
        return binascii.a2b_qp(_QP_TRAILING.sub(rb"\1", raw))
    if strict:
        raise SectionError(SectionErrorKind.UNKNOWN_CTE, "unknown Content-Transfer-Encoding")
    return raw


_QP_TRAILING = re.compile(rb"[ \t]+(\r?\n|$)")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def _b64(raw: bytes) -> bytes:
    clean = _B64_JUNK.sub(b"", raw.split(b"=", 1)[0])
    clean = clean[: len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean
    clean += b"=" * (-len(clean) % 4)
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error:  # pragma: no cover - cleaned input always decodes
        return b""


def binary(data: bytes, root: Part, part: tuple[int, ...]) -> bytes:
    """BINARY[part] (RFC 3516): the part body with its transfer encoding removed.

    ``part == ()`` is the whole message, returned as is.
    """
    if not part:
        return data[root.header_start : root.body_end]
    p = part_by_number(root, list(part))
    if p is None:
        return b""
    raw = data[p.body_start : p.body_end]
    if p.is_multipart or p.message is not None:
        return raw
    return decode_body(raw, p.encoding)


def binary_size(data: bytes, root: Part, part: tuple[int, ...]) -> int:
    """BINARY.SIZE[part] (RFC 3516 §4.2): the decoded size, cheap for identity encodings."""
    if part:
        p = part_by_number(root, list(part))
        if p is not None and (p.encoding or b"7bit").strip().lower() in _IDENTITY:
            return p.body_size
    return len(binary(data, root, part))


def part_numbers(root: Part) -> list[tuple[tuple[int, ...], Part]]:
    """Every addressable part number of a message with its part, in order (for tests/tools)."""
    out: list[tuple[tuple[int, ...], Part]] = []

    def walk_msg(msg: Part, prefix: tuple[int, ...]) -> None:
        if msg.is_multipart and msg.children:
            for i, c in enumerate(msg.children, 1):
                walk_part(c, (*prefix, i))
        else:
            out.append(((*prefix, 1), msg))
            if msg.message is not None:
                walk_msg(msg.message, (*prefix, 1))

    def walk_part(p: Part, num: tuple[int, ...]) -> None:
        out.append((num, p))
        if p.message is not None:
            walk_msg(p.message, num)
        elif p.is_multipart:
            for i, c in enumerate(p.children, 1):
                walk_part(c, (*num, i))

    walk_msg(root, ())
    return out


def binary_literal8(root: Part, part: tuple[int, ...], value: bytes) -> bool:
    """Whether BINARY[part] should go out as ``~{n}`` (RFC 3516 literal8).

    Dovecot uses literal8 when the part had to be decoded (base64 or quoted-printable) or the
    value holds a NUL, and a normal literal otherwise; clients accept both, we match Dovecot.
    """
    if b"\x00" in value:
        return True
    if not part:
        return False
    p = part_by_number(root, list(part))
    if p is None or p.is_multipart or p.message is not None:
        return False
    return (p.encoding or b"7bit").strip().lower() not in _IDENTITY


def binary_range(root: Part, part: tuple[int, ...]) -> tuple[int, int, bytes | None]:
    """For BINARY[part] served from a cached tree: ``(start, end, encoding)`` where the raw
    bytes ``data[start:end]`` go through ``decode_body(raw, encoding)`` unless encoding is
    None (nothing to decode). A nonexistent part gives ``(0, 0, None)``."""
    if not part:
        return (root.header_start, root.body_end, None)
    p = part_by_number(root, list(part))
    if p is None:
        return (0, 0, None)
    if p.is_multipart or p.message is not None:
        return (p.body_start, p.body_end, None)
    enc = (p.encoding or b"7bit").strip().lower()
    return (p.body_start, p.body_end, None if enc in _IDENTITY else enc)
