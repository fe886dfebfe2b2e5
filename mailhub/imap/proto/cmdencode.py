"""Client-side encoding of typed commands back to wire bytes.

The inverse of the parser: ``parse(encode_command(cmd)) == cmd`` for every command whose
fields hold canonical values (what the parser itself produces). It exists for the property
tests and the fuzzer's seed corpus, and is handy for test clients that need byte-exact
input. Strings go out as atoms when possible, quoted when safe, otherwise as
non-synchronising literals (``{n+}``, LITERAL+), so the bytes can be fed in one piece.
"""

from __future__ import annotations

from . import commands as c
from . import search as sk
from . import utf7
from .names import format_date, format_date_time
from .tokens import ASTRING_CHARS

__all__ = ["encode_command", "encode_search_key"]

_FLAG_WORDS = {
    ("\\Answered", True): "ANSWERED",
    ("\\Answered", False): "UNANSWERED",
    ("\\Deleted", True): "DELETED",
    ("\\Deleted", False): "UNDELETED",
    ("\\Draft", True): "DRAFT",
    ("\\Draft", False): "UNDRAFT",
    ("\\Flagged", True): "FLAGGED",
    ("\\Flagged", False): "UNFLAGGED",
    ("\\Seen", True): "SEEN",
    ("\\Seen", False): "UNSEEN",
    ("\\Recent", True): "RECENT",
    ("\\Recent", False): "OLD",
}
_DATE_WORDS = {
    ("before", False): "BEFORE",
    ("on", False): "ON",
    ("since", False): "SINCE",
    ("before", True): "SENTBEFORE",
    ("on", True): "SENTON",
    ("since", True): "SENTSINCE",
}


def _quote(data: bytes) -> bytes:
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def string(data: bytes | str, *, atom_ok: bool = True) -> bytes:
    """astring: atom, quoted or ``{n+}`` literal."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if atom_ok and data and all(b in ASTRING_CHARS for b in data) and data.upper() != b"NIL":
        return data
    if not any(b in (0, 0x0A, 0x0D) for b in data) and len(data) < 1000:
        return _quote(data)
    return b"{%d+}\r\n" % len(data) + data


def nstring(data: str | None) -> bytes:
    return b"NIL" if data is None else string(data, atom_ok=False)


def mailbox(name: str, utf8: bool) -> bytes:
    return string(name.encode("utf-8") if utf8 else utf7.encode(name).encode("ascii"))


def _flags(flags: tuple[str, ...]) -> bytes:
    return b"(" + " ".join(flags).encode("utf-8") + b")"


def _paren(words: tuple[str, ...]) -> bytes:
    return b"(" + " ".join(words).encode("ascii") + b")"


def encode_search_key(key: sk.SearchKey) -> bytes:
    """One search key in wire form (an :class:`~.search.And` becomes a parenthesised list)."""
    if isinstance(key, sk.AllKey):
        return b"ALL"
    if isinstance(key, sk.FlagKey):
        word = _FLAG_WORDS.get((key.flag, key.present))
        if word:
            return word.encode()
        return (b"KEYWORD " if key.present else b"UNKEYWORD ") + key.flag.encode()
    if isinstance(key, sk.HeaderKey):
        return b"HEADER " + string(key.name) + b" " + string(key.value)
    if isinstance(key, sk.TextKey):
        return (b"BODY " if key.body_only else b"TEXT ") + string(key.value)
    if isinstance(key, sk.DateKey):
        return _DATE_WORDS[(key.op, key.sent)].encode() + b" " + format_date(key.date).encode()
    if isinstance(key, sk.SizeKey):
        return b"%s %d" % (key.op.upper().encode(), key.size)
    if isinstance(key, sk.SeqKey):
        return (b"UID " if key.uid else b"") + bytes(key.seqset)
    if isinstance(key, sk.ModSeqKey):
        entry = b""
        if key.entry is not None:
            entry = _quote(key.entry.encode()) + b" " + (key.entry_type or "all").encode() + b" "
        return b"MODSEQ " + entry + b"%d" % key.modseq
    if isinstance(key, sk.WithinKey):
        return b"%s %d" % (b"OLDER" if key.older else b"YOUNGER", key.seconds)
    if isinstance(key, sk.Not):
        return b"NOT " + encode_search_key(key.key)
    if isinstance(key, sk.Or):
        return b"OR " + encode_search_key(key.left) + b" " + encode_search_key(key.right)
    if isinstance(key, sk.And):
        return b"(" + b" ".join(encode_search_key(k) for k in key.keys) + b")"
    raise TypeError(key)


def _program(key: sk.SearchKey | None) -> bytes:
    if isinstance(key, sk.And):
        return b" ".join(encode_search_key(k) for k in key.keys)
    return encode_search_key(key or sk.AllKey())


def _ret(opts: tuple[str, ...] | None) -> bytes:
    return b"" if opts is None else b"RETURN " + _paren(opts) + b" "


def _args(cmd: c.Command, utf8: bool) -> bytes:
    if isinstance(cmd, c.Id):
        if cmd.params is None:
            return b" NIL"
        return (
            b" ("
            + b" ".join(string(k, atom_ok=False) + b" " + nstring(v) for k, v in cmd.params)
            + b")"
        )
    if isinstance(cmd, c.Authenticate):
        out = b" " + cmd.mechanism.encode()
        if cmd.initial_response is not None:
            import base64

            out += b" " + (base64.b64encode(cmd.initial_response) or b"=")
        return out
    if isinstance(cmd, c.Login):
        return b" " + string(cmd.username) + b" " + string(cmd.password)
    if isinstance(cmd, c.Enable):
        return b" " + " ".join(cmd.capabilities).encode()
    if isinstance(cmd, c.Select):
        out = b" " + mailbox(cmd.mailbox, utf8)
        params = []
        if cmd.condstore:
            params.append(b"CONDSTORE")
        if cmd.qresync is not None:
            q = cmd.qresync
            inner = b"%d %d" % (q.uidvalidity, q.modseq)
            if q.known_uids is not None:
                inner += b" " + bytes(q.known_uids)
            if q.seq_match is not None:
                inner += b" (" + bytes(q.seq_match[0]) + b" " + bytes(q.seq_match[1]) + b")"
            params.append(b"QRESYNC (" + inner + b")")
        if params:
            out += b" (" + b" ".join(params) + b")"
        return out
    if isinstance(cmd, c.Create):
        out = b" " + mailbox(cmd.mailbox, utf8)
        if cmd.special_use:
            out += b" (USE " + _flags(cmd.special_use) + b")"
        return out
    if isinstance(cmd, c.Rename):
        return b" " + mailbox(cmd.mailbox, utf8) + b" " + mailbox(cmd.new_name, utf8)
    if isinstance(cmd, (c.Delete, c.Subscribe, c.Unsubscribe, c.GetQuotaRoot)):
        return b" " + mailbox(cmd.mailbox, utf8)
    if isinstance(cmd, c.List):
        if not cmd.extended:
            return b" " + mailbox(cmd.reference, utf8) + b" " + mailbox(cmd.patterns[0], utf8)
        out = b" " + _paren(cmd.selection) + b" " + mailbox(cmd.reference, utf8) + b" ("
        out += b" ".join(mailbox(p, utf8) for p in cmd.patterns) + b")"
        opts = list(cmd.return_opts)
        if cmd.return_status:
            opts.append("STATUS " + _paren(cmd.status_items).decode())
        return out + b" RETURN " + _paren(tuple(opts))
    if isinstance(cmd, (c.Lsub, c.XList)):
        return b" " + mailbox(cmd.reference, utf8) + b" " + mailbox(cmd.pattern, utf8)
    if isinstance(cmd, c.Status):
        return b" " + mailbox(cmd.mailbox, utf8) + b" " + _paren(cmd.items)
    if isinstance(cmd, c.Append):
        out = b" " + mailbox(cmd.mailbox, utf8)
        for m in cmd.messages:
            out += b" "
            if m.flags:
                out += _flags(m.flags) + b" "
            if m.date is not None:
                out += b'"' + format_date_time(m.date).encode() + b'" '
            lit = (b"~{%d+}\r\n" if m.binary else b"{%d+}\r\n") % len(m.data) + m.data
            out += b"UTF8 (" + lit + b")" if m.utf8 else lit
        return out
    if isinstance(cmd, c.GetQuota):
        return b" " + string(cmd.root)
    if isinstance(cmd, c.SetQuota):
        return (
            b" "
            + string(cmd.root)
            + b" ("
            + " ".join(f"{r} {n}" for r, n in cmd.limits).encode()
            + b")"
        )
    if isinstance(cmd, c.Compress):
        return b" " + cmd.mechanism.encode()
    if isinstance(cmd, c.Expunge):
        return b" " + bytes(cmd.uids) if cmd.uid and cmd.uids is not None else b""
    if isinstance(cmd, c.Search):
        cs = b"CHARSET " + cmd.charset.encode() + b" " if cmd.charset else b""
        return b" " + _ret(cmd.return_opts) + cs + _program(cmd.criteria)
    if isinstance(cmd, c.Fetch):
        out = (
            b" "
            + bytes(cmd.seqset)
            + b" ("
            + " ".join(a.request_name() for a in cmd.atts).encode()
            + b")"
        )
        mods = []
        if cmd.changedsince is not None:
            mods.append(b"CHANGEDSINCE %d" % cmd.changedsince)
        if cmd.vanished:
            mods.append(b"VANISHED")
        if mods:
            out += b" (" + b" ".join(mods) + b")"
        return out
    if isinstance(cmd, c.Store):
        out = b" " + bytes(cmd.seqset) + b" "
        if cmd.unchangedsince is not None:
            out += b"(UNCHANGEDSINCE %d) " % cmd.unchangedsince
        out += {"replace": b"", "add": b"+", "remove": b"-"}[cmd.mode] + b"FLAGS"
        return out + (b".SILENT " if cmd.silent else b" ") + _flags(cmd.flags)
    if isinstance(cmd, (c.Copy, c.Move)):
        return b" " + bytes(cmd.seqset) + b" " + mailbox(cmd.mailbox, utf8)
    if isinstance(cmd, c.Sort):
        keys = " ".join(("REVERSE " if k.reverse else "") + k.key for k in cmd.keys)
        return (
            b" "
            + _ret(cmd.return_opts)
            + b"("
            + keys.encode()
            + b") "
            + cmd.charset.encode()
            + b" "
            + _program(cmd.criteria)
        )
    if isinstance(cmd, c.Thread):
        return (
            b" "
            + cmd.algorithm.encode()
            + b" "
            + cmd.charset.encode()
            + b" "
            + _program(cmd.criteria)
        )
    return b""


def encode_command(cmd: c.Command, *, utf8: bool = False) -> bytes:
    """The full command line(s), CRLF-terminated."""
    return cmd.tag.encode("ascii") + b" " + cmd.name.encode("ascii") + _args(cmd, utf8) + b"\r\n"
