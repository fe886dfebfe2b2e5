"""Header blocks and structured MIME header values, on raw bytes.

Values stay bytes: IMAP answers echo header text byte for byte (8-bit included), so decoding is
left to :mod:`mailhub.mime.text`, which SEARCH uses. The parsing rules follow RFC 2045 §5.1
(Content-Type), RFC 2183 (Content-Disposition) and RFC 2231 §3 (parameter continuations), with
Dovecot's lenient choices where real mail breaks the rules (see tests/mime fixtures).
"""

from __future__ import annotations

_TSPECIALS = frozenset(b'()<>@,;:\\"/[]?=')
_WSP = frozenset(b" \t\r\n")


def split_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """Split a header block into ``(lowercased name, raw value)`` pairs in order.

    The raw value is everything after the colon with folding kept (the final line break
    removed). Lines without a colon are skipped: they are kept in the block's bytes (which
    BODY[HEADER] serves) but cannot be looked up.
    """
    if b"\n " in block or b"\n\t" in block or block[:1] in (b" ", b"\t"):
        return _split_folded(block)
    # No continuation lines (most headers of most messages): each line stands alone.
    fields: list[tuple[bytes, bytes]] = []
    for line in block.split(b"\n"):
        if line[-1:] == b"\r":
            line = line[:-1]
        colon = line.find(b":")
        if colon > 0:
            fields.append((line[:colon].strip().lower(), line[colon + 1 :]))
    return fields


def _split_folded(block: bytes) -> list[tuple[bytes, bytes]]:
    """:func:`split_fields` for blocks with folded (continued) lines."""
    fields: list[tuple[bytes, bytes]] = []
    name: bytes | None = None
    parts: list[bytes] = []
    for line in block.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                parts.append(line)
            continue
        if name is not None:
            fields.append((name, b"\r\n".join(parts)))
            name = None
        colon = line.find(b":")
        if colon <= 0:
            continue
        name = line[:colon].strip().lower()
        parts = [line[colon + 1 :]]
    if name is not None:
        fields.append((name, b"\r\n".join(parts)))
    return fields


def unfold(raw: bytes) -> bytes:
    """RFC 5322 §2.2.3 unfolding: drop the blanks right after the colon, then CR/LF.

    Other whitespace is kept (a value folded right after the colon keeps the fold's leading
    blank, trailing blanks stay), as Dovecot does, so IMAP answers match byte for byte.
    """
    return raw.lstrip(b" \t").replace(b"\r", b"").replace(b"\n", b"")


def field_names(fields: list[tuple[bytes, bytes]]) -> set[bytes]:
    """The lowercased names present in ``fields``."""
    return {n for n, _ in fields}


def last_value(
    fields: list[tuple[bytes, bytes]], name: bytes, *, keep_folding: bool = False
) -> bytes | None:
    """The value of the LAST occurrence of ``name`` (Dovecot's choice for ENVELOPE).

    Unfolded unless ``keep_folding`` (then only the whitespace after the colon goes).
    """
    found: bytes | None = None
    for n, v in fields:
        if n == name:
            found = v
    if found is None:
        return None
    return found.lstrip(b" \t") if keep_folding else unfold(found)


def first_value(fields: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The unfolded value of the first occurrence of ``name``."""
    for n, v in fields:
        if n == name:
            return unfold(v)
    return None


class _Lexer:
    """A tiny RFC 822 structured-field lexer: tokens, quoted strings, comments skipped."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def skip_cfws(self) -> None:
        d, n = self.data, len(self.data)
        while self.pos < n:
            c = d[self.pos]
            if c in _WSP:
                self.pos += 1
            elif c == 0x28:  # "(" comment, may nest
                depth = 0
                while self.pos < n:
                    c = d[self.pos]
                    if c == 0x5C:
                        self.pos += 2
                        continue
                    if c == 0x28:
                        depth += 1
                    elif c == 0x29:
                        depth -= 1
                        if depth == 0:
                            self.pos += 1
                            break
                    self.pos += 1
            else:
                break

    def peek(self) -> int | None:
        self.skip_cfws()
        return self.data[self.pos] if self.pos < len(self.data) else None

    def token(self) -> bytes:
        self.skip_cfws()
        d, n, start = self.data, len(self.data), self.pos
        while self.pos < n and d[self.pos] not in _TSPECIALS and d[self.pos] not in _WSP:
            self.pos += 1
        return d[start : self.pos]

    def quoted(self) -> bytes | None:
        """Read a quoted-string (the opening quote is at pos); unescape quoted-pairs.

        None when the closing quote is missing (the value is then not trusted).
        """
        d, n = self.data, len(self.data)
        self.pos += 1
        out = bytearray()
        while self.pos < n:
            c = d[self.pos]
            if c == 0x22:
                self.pos += 1
                return bytes(out)
            if c == 0x5C and self.pos + 1 < n:
                self.pos += 1
                c = d[self.pos]
            if c not in (0x0D, 0x0A):
                out.append(c)
            self.pos += 1
        return None

    def value(self) -> bytes | None:
        if self.peek() == 0x22:
            return self.quoted()
        return self.token()

    def skip_to_semicolon(self) -> bool:
        d, n = self.data, len(self.data)
        while self.pos < n:
            c = d[self.pos]
            if c == 0x22:
                self.quoted()
                continue
            self.pos += 1
            if c == 0x3B:
                return True
        return False


def _params(lex: _Lexer) -> list[tuple[bytes, bytes]]:
    """Parse ``*(";" attribute "=" value)`` and merge RFC 2231 continuations."""
    raw: list[tuple[bytes, bytes]] = []
    while lex.skip_to_semicolon():
        key = lex.token()
        if not key:
            continue
        if lex.peek() != 0x3D:  # "="
            continue
        lex.pos += 1
        val = lex.value()
        if val is None:  # unterminated quoted string: dropped, as Dovecot does
            break
        raw.append((key, val))
    return merge_rfc2231(raw)


def merge_rfc2231(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """RFC 2231 §3-4: join ``name*0``, ``name*1*``... into one ``name*`` (still encoded).

    Dovecot keeps the charset'lang'%XX form undecoded in BODYSTRUCTURE and appends merged
    parameters after the plain ones; we do the same so answers match.
    """
    plain: list[tuple[bytes, bytes]] = []
    groups: dict[bytes, list[tuple[int, bool, bytes]]] = {}
    order: list[bytes] = []
    names: dict[bytes, bytes] = {}
    for key, val in raw:
        star = key.find(b"*")
        if star <= 0:
            plain.append((key, val))
            continue
        base, rest = key[:star], key[star + 1 :]
        extended = rest.endswith(b"*") or rest == b""
        num_s = rest.rstrip(b"*")
        if num_s and not num_s.isdigit():
            plain.append((key, val))
            continue
        num = int(num_s) if num_s else 0
        lb = base.lower()
        if lb not in groups:
            groups[lb] = []
            order.append(lb)
            names[lb] = base
        groups[lb].append((num, extended, val))
    out = list(plain)
    for lb in sorted(order):  # Dovecot sorts the merged ones by name
        segs = sorted(groups[lb], key=lambda s: s[0])
        ext = segs[0][1]
        key = names[lb] + (b"*" if ext else b"")
        out.append((key, b"".join(s[2] for s in segs)))
    return out


def parse_content_type(raw: bytes | None) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]] | None:
    """``type/subtype; params`` -> (type, subtype, params), or None when unparsable."""
    if raw is None:
        return None
    lex = _Lexer(raw)
    typ = lex.token()
    if not typ or lex.peek() != 0x2F:  # "/"
        return None
    lex.pos += 1
    sub = lex.token()
    if not sub or lex.peek() not in (None, 0x3B):
        return None  # junk after the subtype: invalid, so text/plain (RFC 2045 §5.2)
    return typ, sub, _params(lex)


def parse_disposition(raw: bytes | None) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    """RFC 2183 ``disposition-type *(; param)``, or None when absent or empty."""
    if raw is None:
        return None
    lex = _Lexer(raw)
    typ = lex.token()
    if not typ:
        return None
    return typ, _params(lex)


def parse_language(raw: bytes | None) -> list[bytes] | None:
    """RFC 3282 Content-Language: a comma separated list of tags."""
    if raw is None:
        return None
    lex = _Lexer(raw)
    tags: list[bytes] = []
    while lex.peek() is not None:
        tok = lex.token()
        if tok:
            tags.append(tok)
        elif lex.pos < len(lex.data):
            lex.pos += 1
    return tags or None


def get_param(params: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """Case-insensitive parameter lookup (first match)."""
    lname = name.lower()
    for k, v in params:
        if k.lower() == lname:
            return v
    return None


def raw_fields(block: bytes) -> list[tuple[bytes | None, bytes]]:
    """Split a header block into raw chunks ``(lowercased name or None, bytes with EOLs)``.

    Continuation lines stay with their field; a line without a colon counts as a field named
    by the whole line (so HEADER.FIELDS.NOT keeps it, as Dovecot does); the blank line ending
    the header gets ``None`` as its name. Joining the chunks gives the
    block back, which is what BODY[HEADER.FIELDS ...] filters.
    """
    chunks: list[tuple[bytes | None, bytes]] = []
    pos, n = 0, len(block)
    while pos < n:
        nl = block.find(b"\n", pos)
        end = n if nl < 0 else nl + 1
        line = block[pos:end]
        if line[:1] in (b" ", b"\t") and chunks and chunks[-1][0] is not None:
            name, prev = chunks[-1]
            chunks[-1] = (name, prev + line)
        else:
            colon = line.find(b":")
            if colon > 0 and line[:1] not in (b"\r", b"\n"):
                chunks.append((line[:colon].strip().lower(), line))
            elif line.strip():  # a colon-less line is a (nameless) field to Dovecot too
                chunks.append((line.strip().lower(), line))
            else:
                chunks.append((None, line))
        pos = end
    return chunks
