"""Grammar of SEARCH, SORT and THREAD (RFC 9051 §6.4.4, RFC 4731/5182, RFC 5256/5267/5957,
RFC 7162 MODSEQ, RFC 5032 WITHIN)."""

from __future__ import annotations

import codecs
from collections.abc import Callable

from . import search as sk
from .commands import Search, Sort, SortKey, Thread
from .names import canonical_flag, read_date
from .sequence import SequenceSet
from .tokens import BadSyntax, Reader, Refused

MAX_DEPTH = 64  # nesting of NOT/OR/parentheses; deeper is an attack, not a search
SEQ_CHARS = frozenset(b"0123456789*:,$")
SEARCH_RETURN = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
SORT_KEYS = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)
THREAD_ALGORITHMS = frozenset({"REFERENCES", "ORDEREDSUBJECT"})
SUPPORTED_CHARSETS = "(US-ASCII UTF-8)"

_FLAG_KEYS: dict[str, tuple[str, bool]] = {}
for _f in ("Answered", "Deleted", "Draft", "Flagged", "Seen", "Recent"):
    _FLAG_KEYS[_f.upper()] = ("\\" + _f, True)
    if _f != "Recent":
        _FLAG_KEYS["UN" + _f.upper()] = ("\\" + _f, False)
_HEADER_KEYS = {"FROM": "From", "TO": "To", "CC": "Cc", "BCC": "Bcc", "SUBJECT": "Subject"}
_DATE_KEYS: dict[str, tuple[str, bool]] = {
    "BEFORE": ("before", False),
    "ON": ("on", False),
    "SINCE": ("since", False),
    "SENTBEFORE": ("before", True),
    "SENTON": ("on", True),
    "SENTSINCE": ("since", True),
}

Decoder = Callable[[bytes], str]


def charset_decoder(name: str) -> Decoder:
    """A decoder for a SEARCH CHARSET; unknown or non-text codecs get ``NO [BADCHARSET]``."""
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise Refused(f"BADCHARSET {SUPPORTED_CHARSETS}", f"Unsupported charset {name}")

    def decode(raw: bytes) -> str:
        return raw.decode(info.name, "replace")

    return decode


def _utf8(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def read_seqset(r: Reader) -> SequenceSet:
    tok = r.chars(SEQ_CHARS, "sequence set")
    try:
        return SequenceSet.parse(tok)
    except ValueError as exc:
        raise BadSyntax(f"Invalid sequence set: {exc}") from None


def search_key(r: Reader, dec: Decoder, depth: int = 0) -> sk.SearchKey:
    """One ``search-key``."""
    if depth > MAX_DEPTH:
        raise BadSyntax("Search criteria nested too deeply")
    c = r.peek()
    if c == b"(":
        keys = r.paren_list(lambda rr: search_key(rr, dec, depth + 1))
        return sk.And(tuple(keys))
    if c and c in b"0123456789*$":
        return sk.SeqKey(read_seqset(r))
    word = r.atom_upper("search key")
    if word == "ALL":
        return sk.AllKey()
    if word in _FLAG_KEYS:
        flag, present = _FLAG_KEYS[word]
        return sk.FlagKey(flag, present)
    if word == "NEW":
        return sk.And((sk.FlagKey("\\Recent"), sk.FlagKey("\\Seen", False)))
    if word == "OLD":
        return sk.FlagKey("\\Recent", False)
    if word in ("KEYWORD", "UNKEYWORD"):
        r.sp()
        return sk.FlagKey(canonical_flag(r.atom("keyword")), word == "KEYWORD")
    if word in _HEADER_KEYS:
        r.sp()
        return sk.HeaderKey(_HEADER_KEYS[word], dec(r.astring()))
    if word == "HEADER":
        r.sp()
        name = r.astring("header field name").decode("ascii", "replace")
        r.sp()
        return sk.HeaderKey(name, dec(r.astring()))
    if word in ("BODY", "TEXT"):
        r.sp()
        return sk.TextKey(dec(r.astring()), word == "BODY")
    if word in _DATE_KEYS:
        r.sp()
        op, sent = _DATE_KEYS[word]
        return sk.DateKey(op, read_date(r), sent)  # type: ignore[arg-type]
    if word in ("LARGER", "SMALLER"):
        r.sp()
        return sk.SizeKey("larger" if word == "LARGER" else "smaller", r.number(bits=64))
    if word == "UID":
        r.sp()
        return sk.SeqKey(read_seqset(r), uid=True)
    if word == "NOT":
        r.sp()
        return sk.Not(search_key(r, dec, depth + 1))
    if word == "OR":
        r.sp()
        left = search_key(r, dec, depth + 1)
        r.sp()
        return sk.Or(left, search_key(r, dec, depth + 1))
    if word in ("YOUNGER", "OLDER"):
        r.sp()
        return sk.WithinKey(word == "OLDER", r.number(nz=True))
    if word == "MODSEQ":
        r.sp()
        entry = None
        etype = None
        if r.peek() == b'"':
            entry = r.quoted().decode("ascii", "replace")
            r.sp()
            etype = r.atom_upper("entry type").lower()
            if etype not in ("priv", "shared", "all"):
                raise BadSyntax("Invalid MODSEQ entry type")
            r.sp()
        return sk.ModSeqKey(r.number(bits=64), entry, etype)  # type: ignore[arg-type]
    raise BadSyntax(f"Unknown search key {word}")


def search_program(r: Reader, dec: Decoder) -> sk.And:
    """``search-key *(SP search-key)``: the implicit AND at the top of a search."""
    keys = [search_key(r, dec)]
    while r.try_sp():
        keys.append(search_key(r, dec))
    r.end()
    return sk.And(tuple(keys))


def return_opts(r: Reader, allowed: frozenset[str]) -> tuple[str, ...]:
    """``RETURN (opt ...)`` (already past ``RETURN SP``)."""
    opts = tuple(
        x.upper() for x in r.paren_list(lambda rr: rr.atom_upper("return option"), allow_empty=True)
    )
    for o in opts:
        if o not in allowed:
            raise BadSyntax(f"Unknown RETURN option {o}")
    return opts


def parse_search(r: Reader, tag: str, uid: bool) -> Search:
    """RFC 9051 §6.4.4: ``SEARCH [RETURN (...)] [CHARSET x] keys``."""
    r.sp()
    ret: tuple[str, ...] | None = None
    if r.peek_upper(7) == b"RETURN ":
        r.pos += 7
        ret = return_opts(r, SEARCH_RETURN)
        r.sp()
    charset = None
    dec: Decoder = _utf8
    if r.peek_upper(8) == b"CHARSET ":
        r.pos += 8
        charset = r.astring("charset").decode("ascii", "replace").upper()
        dec = charset_decoder(charset)
        r.sp()
    return Search(tag, uid=uid, criteria=search_program(r, dec), charset=charset, return_opts=ret)


def parse_sort(r: Reader, tag: str, uid: bool) -> Sort:
    """RFC 5256 §3 / RFC 5267 §3: ``SORT [RETURN (...)] (criteria) charset keys``."""
    r.sp()
    ret: tuple[str, ...] | None = None
    if r.peek_upper(7) == b"RETURN ":
        r.pos += 7
        ret = return_opts(r, SEARCH_RETURN)
        r.sp()

    def crit(rr: Reader) -> SortKey:
        word = rr.atom_upper("sort key")
        reverse = False
        if word == "REVERSE":
            reverse = True
            rr.sp()
            word = rr.atom_upper("sort key")
        if word not in SORT_KEYS:
            raise BadSyntax(f"Unknown sort key {word}")
        return SortKey(word, reverse)

    keys = tuple(r.paren_list(crit))
    r.sp()
    charset = r.astring("charset").decode("ascii", "replace").upper()
    dec = charset_decoder(charset)
    r.sp()
    return Sort(
        tag, uid=uid, keys=keys, charset=charset, criteria=search_program(r, dec), return_opts=ret
    )


def parse_thread(r: Reader, tag: str, uid: bool) -> Thread:
    """RFC 5256 §3: ``THREAD algorithm charset keys``."""
    r.sp()
    algorithm = r.atom_upper("thread algorithm")
    if algorithm not in THREAD_ALGORITHMS:
        raise BadSyntax(f"Unsupported thread algorithm {algorithm}")
    r.sp()
    charset = r.astring("charset").decode("ascii", "replace").upper()
    dec = charset_decoder(charset)
    r.sp()
    return Thread(
        tag, uid=uid, algorithm=algorithm, charset=charset, criteria=search_program(r, dec)
    )
