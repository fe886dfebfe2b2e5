"""MIME structure of a message: a tree of parts with byte offsets (RFC 2045/2046).

IMAP's BODYSTRUCTURE, BODY[section] and BINARY all need to know where each part's header and
body lie in the stored bytes, plus sizes and line counts, so we scan boundaries ourselves
instead of asking :mod:`email` (which re-serialises). The scan follows Dovecot's
``message-parser.c``:

- a boundary line is any line starting with ``--`` plus an active boundary (prefix match,
  the longest active boundary wins, the innermost on ties);
- the line break before it belongs to the delimiter (RFC 2046 §5.1.1);
- a missing close delimiter ends the part at the parent's next delimiter or at the end of
  the message;
- a multipart with no parts gets one empty text/plain child.

Delimiters are found with one compiled regex per set of active boundaries, so a 50 MB base64
attachment costs a C-level search, not a Python loop per line.

:func:`parse` never raises on any input; nesting and part counts are capped like Dovecot's
``mail_max_nested_mime_parts`` so hostile input cannot exhaust the stack.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mailhub.mime import headers as H

MAX_DEPTH = 100
MAX_PARTS = 10000

_DEFAULT_PARAMS: list[tuple[bytes, bytes]] = [(b"charset", b"us-ascii")]


@dataclass(slots=True, eq=False)
class Part:
    """One MIME entity. Offsets index the whole message's bytes; ``body_end`` is exclusive.

    ``header_start..body_start`` is the MIME header including its blank line (when present);
    ``message`` is the embedded message of a message/rfc822 part (whose offsets lie inside
    this part's body), ``children`` the parts of a multipart.
    """

    header_start: int
    body_start: int
    body_end: int
    fields: list[tuple[bytes, bytes]]
    type: bytes
    subtype: bytes
    params: list[tuple[bytes, bytes]]
    lines: int = 0
    children: list[Part] = field(default_factory=list)
    message: Part | None = None
    explicit_type: bool = True
    header_cut: bool = False  # the header ran into a delimiter line (no blank line)
    cut_header_end: int = 0  # then: the header's end without the line break before it
    preamble_end: int = -1  # multipart: where the first delimiter line starts (-1: none)
    epilogue_start: int = -1  # multipart: just after the close delimiter line (-1: none)
    is_mime: bool = True  # False: a message without MIME-Version and Content-Type

    @property
    def header_size(self) -> int:
        return self.body_start - self.header_start

    @property
    def body_size(self) -> int:
        return self.body_end - self.body_start

    @property
    def header_fetch_end(self) -> int:
        """End of the header as BODY[...HEADER] / [...MIME] serve it.

        Normally ``body_start``; when the header ran into a delimiter line, the line break
        before the delimiter is the delimiter's (RFC 2046 §5.1.1), as Dovecot serves it.
        """
        return self.cut_header_end if self.header_cut else self.body_start

    @property
    def is_multipart(self) -> bool:
        return self.type.lower() == b"multipart"

    @property
    def is_message(self) -> bool:
        return self.message is not None

    def header(self, name: bytes) -> bytes | None:
        """Unfolded value of the first ``name`` field of this part's header.

        Content-* fields of a message that is not MIME (no MIME-Version, no Content-Type;
        RFC 2045 §4) are ignored, as Dovecot ignores them.
        """
        lname = name.lower()
        if not self.is_mime and lname.startswith(b"content-"):
            return None
        return H.first_value(self.fields, lname)

    @property
    def encoding(self) -> bytes | None:
        enc = self.header(b"content-transfer-encoding")
        if enc is None:
            return None
        tok = H._Lexer(enc).token()
        return tok or None

    @property
    def content_id(self) -> bytes | None:
        return self.header(b"content-id")

    @property
    def description(self) -> bytes | None:
        return self.header(b"content-description")

    @property
    def md5(self) -> bytes | None:
        return self.header(b"content-md5")

    @property
    def location(self) -> bytes | None:
        return self.header(b"content-location")

    @property
    def disposition(self) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
        return H.parse_disposition(self.header(b"content-disposition"))

    @property
    def language(self) -> list[bytes] | None:
        return H.parse_language(self.header(b"content-language"))

    def param(self, name: bytes) -> bytes | None:
        return H.get_param(self.params, name)

    def walk(self) -> list[Part]:
        """This part and all parts below it (children and embedded messages), pre-order."""
        out: list[Part] = []
        stack: list[Part] = [self]
        while stack:
            p = stack.pop()
            out.append(p)
            below = list(p.children)
            if p.message is not None:
                below.append(p.message)
            stack.extend(reversed(below))
        return out


@dataclass(slots=True)
class _Hit:
    line_start: int
    after: int
    level: int
    close: bool


class _Scanner:
    __slots__ = ("_pats", "count", "data", "n", "stack")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.n = len(data)
        self.stack: list[bytes] = []
        self.count = 0
        self._pats: dict[tuple[bytes, ...], tuple[re.Pattern[bytes], re.Pattern[bytes]]] = {}

    def _patterns(self) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
        """Regexes for a delimiter line of any active boundary, longest alternative first
        (so the longest prefix wins, as in Dovecot); one C-level scan instead of a Python
        loop over candidate lines."""
        key = tuple(self.stack)
        pats = self._pats.get(key)
        if pats is None:
            alts = b"|".join(re.escape(b) for b in sorted(set(key), key=len, reverse=True))
            pats = (re.compile(rb"\n--(" + alts + rb")"), re.compile(rb"--(" + alts + rb")"))
            self._pats[key] = pats
        return pats

    def _hit(self, line: int, matched: bytes) -> _Hit:
        level = max(i for i, b in enumerate(self.stack) if b == matched)  # innermost on ties
        end = line + 2 + len(matched)
        close = self.data.startswith(b"--", end)
        nl = self.data.find(b"\n", end)
        return _Hit(line, self.n if nl < 0 else nl + 1, level, close)

    def find_boundary(self, pos: int, limit: int | None = None) -> _Hit | None:
        """First boundary line at or after ``pos`` (a line start) that starts before ``limit``."""
        if not self.stack:
            return None
        stop = self.n if limit is None else limit
        if pos >= stop:
            return None
        nl_pat, start_pat = self._patterns()
        m = start_pat.match(self.data, pos)
        if m is not None:
            return self._hit(pos, m.group(1))
        m = nl_pat.search(self.data, pos)
        if m is None or m.start() + 1 >= stop:
            return None
        return self._hit(m.start() + 1, m.group(1))

    def trim(self, start: int, line_start: int) -> int:
        """End of a body that a delimiter line follows: the CRLF before it is the delimiter's."""
        e = line_start
        if e > start and self.data[e - 1] == 0x0A:
            e -= 1
            if e > start and self.data[e - 1] == 0x0D:
                e -= 1
        return e

    def header_end(self, pos: int) -> tuple[int, _Hit | None, bool]:
        """Where the header starting at ``pos`` ends (= body start), the next delimiter line
        (if any) and whether the header ran into it.

        The blank-line search is bounded by the next delimiter line, so parts whose headers
        have no blank line cost O(distance to that delimiter), never a scan to the end of
        the message each (which made a 5 MB message of such parts take minutes).
        """
        data = self.data
        hit = self.find_boundary(pos)
        limit = self.n if hit is None else hit.line_start
        if data.startswith(b"\r\n", pos) and pos + 2 <= limit:
            return pos + 2, hit, False
        if data.startswith(b"\n", pos) and pos + 1 <= limit:
            return pos + 1, hit, False
        a = data.find(b"\n\r\n", pos, limit)
        b = data.find(b"\n\n", pos, limit if a < 0 else a + 2)  # CRLF mail has no LF LF
        if a >= 0 and (b < 0 or a < b):
            return a + 3, hit, False
        if b >= 0:
            return b + 2, hit, False
        return limit, hit, hit is not None

    def part(
        self, pos: int, depth: int, default_digest: bool, msg_root: bool = False
    ) -> tuple[Part, _Hit | None]:
        self.count += 1
        data = self.data
        body_start, next_hit, cut = self.header_end(pos)
        fields = H.split_fields(data[pos:body_start])
        is_mime = not msg_root or any(n in (b"mime-version", b"content-type") for n, _ in fields)
        ct = H.parse_content_type(H.first_value(fields, b"content-type"))
        explicit = ct is not None
        params: list[tuple[bytes, bytes]] = []
        if ct is None:
            typ, sub = (b"message", b"rfc822") if default_digest else (b"text", b"plain")
        else:
            typ, sub, params = ct
        p = Part(pos, body_start, body_start, fields, typ, sub, params, explicit_type=explicit)
        p.is_mime = is_mime
        ltyp, lsub = typ.lower(), sub.lower()
        capped = depth >= MAX_DEPTH or self.count >= MAX_PARTS
        if cut:
            # the header ran into a delimiter: empty body, nothing nested to scan
            hit = next_hit
            p.header_cut = True
            p.cut_header_end = self.trim(pos, body_start)
            if ltyp == b"multipart":
                p.children.append(_empty(body_start))
            elif ltyp == b"message" and lsub == b"rfc822" and not capped:
                p.message = _empty(body_start)
            return p, hit
        if ltyp == b"multipart" and not capped:
            hit = self._multipart(p, depth)
        elif ltyp == b"message" and lsub == b"rfc822" and not capped:
            child, hit = self.part(body_start, depth + 1, False, True)
            p.message = child
            p.body_end = child.body_end
        else:
            hit = next_hit  # same stack: the delimiter found after the header ends the body
            p.body_end = self.n if hit is None else self.trim(body_start, hit.line_start)
            if hit is not None and hit.line_start == body_start > pos:
                # a delimiter right after the blank line takes that line break (RFC 2046
                # §5.1.1): BODY[n.MIME] ends before it, as Dovecot serves it
                p.header_cut = True
                p.cut_header_end = self.trim(pos, body_start)
            if ltyp == b"multipart":  # nesting cap reached: keep the tree shape valid
                p.children.append(_empty(p.body_end))
        p.lines = data.count(b"\n", p.body_start, p.body_end)
        return p, hit

    def _multipart(self, p: Part, depth: int) -> _Hit | None:
        boundary = p.param(b"boundary")
        digest = p.subtype.lower() == b"digest"
        if not boundary:
            hit = self.find_boundary(p.body_start)
            p.body_end = self.n if hit is None else self.trim(p.body_start, hit.line_start)
            p.children.append(_empty(p.body_end))
            return hit
        level = len(self.stack)
        self.stack.append(boundary)
        hit = self.find_boundary(p.body_start)
        if hit is not None and hit.level == level:
            p.preamble_end = hit.line_start
        while hit is not None and hit.level == level and not hit.close:
            if self.count >= MAX_PARTS:
                break
            child, hit = self.part(hit.after, depth + 1, digest)
            p.children.append(child)
        del self.stack[level:]
        floor = p.body_start
        if hit is not None and hit.level == level:
            # after the close delimiter (or when the part cap stopped us) the rest up to an
            # outer boundary is epilogue; the close line keeps its own line break
            floor = p.epilogue_start = hit.after
            hit = self.find_boundary(hit.after)
        p.body_end = self.n if hit is None else self.trim(floor, hit.line_start)
        if p.children:  # a last child with an empty body owns the CRLF the trim would take
            p.body_end = max(p.body_end, p.children[-1].body_end)
        else:
            p.children.append(_empty(p.preamble_end if p.preamble_end >= 0 else p.body_end))
        return hit


def _empty(pos: int) -> Part:
    """The zero-length text/plain part Dovecot reports for a multipart with no parts."""
    return Part(pos, pos, pos, [], b"text", b"plain", [], explicit_type=False)


def parse(data: bytes) -> Part:
    """Parse a whole message into its part tree. Never raises on any bytes."""
    sc = _Scanner(data)
    root, _ = sc.part(0, 0, False, True)
    return root


def root_fields(data: bytes) -> list[tuple[bytes, bytes]]:
    """The top-level header fields, exactly ``parse(data).fields`` without parsing the body.

    ENVELOPE needs nothing else; ``data`` may be the whole message or any prefix that holds
    its whole header block (blank line included).
    """
    end, _, _ = _Scanner(data).header_end(0)
    return H.split_fields(data[:end])


def has_header_end(data: bytes) -> bool:
    """Whether ``data`` holds the message's whole header block (a prefix is enough)."""
    return data.startswith((b"\r\n", b"\n")) or b"\n\r\n" in data or b"\n\n" in data


def part_by_number(root: Part, numbers: list[int]) -> Part | None:
    """Resolve an IMAP part number (RFC 9051 §6.4.5 ``section-part``) to a part.

    A message whose body is not multipart has exactly one part, numbered 1 (its body); the
    part numbers under a message/rfc822 part refer to its embedded message's parts.
    """
    cur = root
    in_msg = True  # cur is a message (root or embedded), not yet a part of it
    for n in numbers:
        if not in_msg:
            if cur.message is not None:
                cur, in_msg = cur.message, True
            elif cur.is_multipart and cur.children:
                if not 1 <= n <= len(cur.children):
                    return None
                cur = cur.children[n - 1]
                continue
            else:
                return None
        if cur.is_multipart and cur.children:
            if not 1 <= n <= len(cur.children):
                return None
            cur = cur.children[n - 1]
        elif n != 1:
            return None
        in_msg = False
    return cur


def default_params(p: Part) -> list[tuple[bytes, bytes]]:
    """Parameters as BODYSTRUCTURE reports them: text parts always carry a charset."""
    if p.type.lower() == b"text" and p.param(b"charset") is None:
        return [*p.params, *_DEFAULT_PARAMS]
    return p.params


# -- compact serialisation (for the store index) ---------------------------------------------

_KEEP_FIELDS = frozenset(
    {b"content-type", b"content-transfer-encoding", b"content-disposition", b"content-id"}
)


def _to_obj(p: Part) -> list[object]:
    fields = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in p.fields if n in _KEEP_FIELDS]
    return [
        p.header_start,
        p.body_start,
        p.body_end,
        p.lines,
        p.type.decode("latin-1"),
        p.subtype.decode("latin-1"),
        [[k.decode("latin-1"), v.decode("latin-1")] for k, v in p.params],
        fields,
        int(p.explicit_type) | (int(p.header_cut) << 1) | (int(p.is_mime) << 2),
        p.cut_header_end,
        p.preamble_end,
        p.epilogue_start,
        [_to_obj(c) for c in p.children],
        None if p.message is None else _to_obj(p.message),
    ]


def _from_obj(o: list[Any]) -> Part:
    flags = int(o[8])
    p = Part(
        int(o[0]),
        int(o[1]),
        int(o[2]),
        [(n.encode("latin-1"), v.encode("latin-1")) for n, v in o[7]],
        o[4].encode("latin-1"),
        o[5].encode("latin-1"),
        [(k.encode("latin-1"), v.encode("latin-1")) for k, v in o[6]],
        lines=int(o[3]),
        explicit_type=bool(flags & 1),
        header_cut=bool(flags & 2),
        is_mime=bool(flags & 4),
        cut_header_end=int(o[9]),
        preamble_end=int(o[10]),
        epilogue_start=int(o[11]),
    )
    p.children = [_from_obj(c) for c in o[12]]
    p.message = None if o[13] is None else _from_obj(o[13])
    return p


def dumps(root: Part) -> bytes:
    """A compact serialisation of the part tree: offsets and the MIME fields sections need.

    With it cached in the index, BODY[1.2] / BINARY[2] of a big message are served with
    ``read_range`` without reading and parsing the whole message again. Header fields other
    than Content-* are not kept (ENVELOPE is cached rendered; HEADER.FIELDS reads the
    header block from the message).
    """
    return json.dumps(_to_obj(root), separators=(",", ":")).encode("ascii")


def loads(blob: bytes) -> Part | None:
    """Inverse of :func:`dumps`; None when the blob is damaged or from another format."""
    try:
        return _from_obj(json.loads(blob))
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, RecursionError):
        return None
