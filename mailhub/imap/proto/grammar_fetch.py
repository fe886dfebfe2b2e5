"""Grammar of FETCH, STORE, COPY, MOVE, UID EXPUNGE (RFC 9051 §6.4, RFC 3516 BINARY,
RFC 7162 CHANGEDSINCE/VANISHED/UNCHANGEDSINCE, RFC 6851 MOVE, RFC 4315 UID EXPUNGE)."""

from __future__ import annotations

from typing import Literal

from .commands import Copy, Expunge, Fetch, Move, Store
from .fetch import MACROS, SIMPLE_ATTS, FetchAtt, Section, SectionText
from .grammar_search import read_seqset
from .names import NameOptions, read_flag, read_flag_list, read_mailbox
from .tokens import BadSyntax, Reader

_NAME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.")
_MSGTEXT = ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME")


def _section(r: Reader, binary: bool) -> Section:
    """``section`` (or ``section-binary`` when ``binary``), already past ``[``."""
    parts: list[int] = []
    text: SectionText | None = None
    headers: tuple[str, ...] = ()
    while r.peek() not in (b"]", b""):
        if r.peek().isdigit():
            parts.append(r.number(nz=True))
            if r.peek() == b".":
                r.pos += 1
                if r.peek() in (b"]", b""):
                    raise BadSyntax("Invalid section")
                continue
            break
        if binary:
            raise BadSyntax("BINARY section must be a part number")
        for cand in _MSGTEXT:
            if r.try_token(cand.encode()):
                text = cand  # type: ignore[assignment]
                break
        else:
            raise BadSyntax("Invalid section")
        if text == "MIME" and not parts:
            raise BadSyntax("MIME needs a part number")
        if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            r.sp()
            headers = tuple(
                h.decode("ascii", "replace")
                for h in r.paren_list(lambda rr: rr.astring("header field name"))
            )
        break
    r.expect(b"]")
    return Section(tuple(parts), text, headers)


def fetch_att(r: Reader) -> FetchAtt:
    """One ``fetch-att``."""
    name = r.chars(_NAME_CHARS, "fetch attribute").decode("ascii").upper()
    if r.peek() != b"[":
        if name in SIMPLE_ATTS:
            return FetchAtt(name)
        raise BadSyntax(f"Unknown fetch attribute {name}")
    peek = name.endswith(".PEEK")
    base = name[:-5] if peek else name
    if base not in ("BODY", "BINARY") and not (name == "BINARY.SIZE"):
        raise BadSyntax(f"Unknown fetch attribute {name}")
    r.pos += 1
    section = _section(r, binary=base != "BODY")
    partial = None
    if r.peek() == b"<":
        if name == "BINARY.SIZE":
            raise BadSyntax("BINARY.SIZE takes no partial")
        r.pos += 1
        origin = r.number()
        r.expect(b".")
        count = r.number(nz=True)
        r.expect(b">")
        partial = (origin, count)
    return FetchAtt(base, section, partial, peek)


def fetch_atts(r: Reader) -> tuple[FetchAtt, ...]:
    if r.peek() == b"(":
        return tuple(r.paren_list(fetch_att))
    save = r.pos
    word = r.chars(_NAME_CHARS, "fetch attribute").decode("ascii").upper()
    if word in MACROS and r.peek() != b"[":
        return MACROS[word]
    r.pos = save
    return (fetch_att(r),)


def parse_fetch(r: Reader, tag: str, uid: bool) -> Fetch:
    """RFC 9051 §6.4.5 ``FETCH seqset atts [(modifiers)]``; RFC 7162 §3.1.4.1 / §3.2.6."""
    r.sp()
    seqset = read_seqset(r)
    r.sp()
    atts = fetch_atts(r)
    changedsince = None
    vanished = False
    if r.try_sp():

        def modifier(rr: Reader) -> None:
            nonlocal changedsince, vanished
            word = rr.atom_upper("fetch modifier")
            if word == "CHANGEDSINCE":
                rr.sp()
                changedsince = rr.number(bits=64)
            elif word == "VANISHED":
                vanished = True
            else:
                raise BadSyntax(f"Unknown fetch modifier {word}")

        r.paren_list(modifier)
        if vanished and (not uid or changedsince is None):
            raise BadSyntax("VANISHED needs UID FETCH with CHANGEDSINCE")
    r.end()
    return Fetch(
        tag, uid=uid, seqset=seqset, atts=atts, changedsince=changedsince, vanished=vanished
    )


def parse_store(r: Reader, tag: str, uid: bool) -> Store:
    """RFC 9051 §6.4.6 ``STORE seqset [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags``."""
    r.sp()
    seqset = read_seqset(r)
    r.sp()
    unchanged = None
    if r.peek() == b"(":

        def modifier(rr: Reader) -> None:
            nonlocal unchanged
            word = rr.atom_upper("store modifier")
            if word != "UNCHANGEDSINCE":
                raise BadSyntax(f"Unknown store modifier {word}")
            rr.sp()
            unchanged = rr.number(bits=64)

        r.paren_list(modifier)
        r.sp()
    item = r.atom_upper("store item")
    mode: Literal["replace", "add", "remove"] = "replace"
    if item[:1] in ("+", "-"):
        mode = "add" if item[0] == "+" else "remove"
        item = item[1:]
    silent = item.endswith(".SILENT")
    if silent:
        item = item[:-7]
    if item != "FLAGS":
        raise BadSyntax("Expected FLAGS, +FLAGS or -FLAGS")
    r.sp()
    if r.peek() == b"(":
        flags = read_flag_list(r)
    else:
        fl = [read_flag(r)]
        while r.try_sp():
            fl.append(read_flag(r))
        flags = tuple(fl)
    r.end()
    return Store(
        tag,
        uid=uid,
        seqset=seqset,
        mode=mode,
        silent=silent,
        flags=flags,
        unchangedsince=unchanged,
    )


def parse_copy(r: Reader, tag: str, uid: bool, opts: NameOptions) -> Copy:
    r.sp()
    seqset = read_seqset(r)
    r.sp()
    mailbox = read_mailbox(r, opts)
    r.end()
    return Copy(tag, uid=uid, seqset=seqset, mailbox=mailbox)


def parse_move(r: Reader, tag: str, uid: bool, opts: NameOptions) -> Move:
    c = parse_copy(r, tag, uid, opts)
    return Move(tag, uid=uid, seqset=c.seqset, mailbox=c.mailbox)


def parse_uid_expunge(r: Reader, tag: str) -> Expunge:
    r.sp()
    uids = read_seqset(r)
    r.end()
    return Expunge(tag, uid=True, uids=uids)
