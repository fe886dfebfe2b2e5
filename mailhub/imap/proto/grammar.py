"""Command grammar: one assembled command buffer -> one typed :class:`~.commands.Command`.

:func:`parse_command` reads ``tag SP command-name [args]`` and dispatches on the name through
:data:`PARSERS`, which must cover every row of :data:`~.commands.REGISTRY` (a unit test checks
that). Failures raise :class:`~.tokens.BadSyntax` (-> BAD) or :class:`~.tokens.Refused`
(-> NO [code]); the framing layer turns them into :class:`~.events.ParseError` events.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from . import commands as c
from .grammar_fetch import parse_copy, parse_fetch, parse_move, parse_store, parse_uid_expunge
from .grammar_search import parse_search, parse_sort, parse_thread, read_seqset
from .names import (
    NameOptions,
    decode_mailbox,
    read_date_time,
    read_flag_list,
    read_mailbox,
    read_pattern,
    validate_mailbox,
)
from .tokens import TAG_CHARS, BadSyntax, Reader, Refused

Parser = Callable[[Reader, str, NameOptions], c.Command]

STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "SIZE",
        "RECENT",
        "HIGHESTMODSEQ",
        "APPENDLIMIT",
    }
)
LIST_SELECTION = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})
MAX_ID_PARAMS = 30  # RFC 2971 §3.3: at most 30 field-value pairs


def _bare(cls: type[c.Command]) -> Parser:
    def parse(r: Reader, tag: str, opts: NameOptions) -> c.Command:
        r.end()
        return cls(tag)

    return parse


def _utf8(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _one_mailbox(cls: type[c.Command]) -> Parser:
    def parse(r: Reader, tag: str, opts: NameOptions) -> c.Command:
        r.sp()
        name = read_mailbox(r, opts)
        r.end()
        return cls(tag, name)  # type: ignore[call-arg]

    return parse


def _login(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    r.sp()
    user = _utf8(r.astring("user name"))
    r.sp()
    password = _utf8(r.astring("password"))
    r.end()
    return c.Login(tag, user, password)


def _authenticate(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    r.sp()
    mech = r.atom_upper("SASL mechanism")
    initial = None
    if r.try_sp():
        tok = r.chars(
            frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="),
            "base64",
        )
        initial = decode_base64(tok)
    r.end()
    return c.Authenticate(tag, mech, initial)


def decode_base64(tok: bytes) -> bytes:
    """SASL base64 (RFC 4959 ``=`` is the empty response); BadSyntax when malformed."""
    if tok == b"=":
        return b""
    try:
        return base64.b64decode(tok, validate=True)
    except (binascii.Error, ValueError):
        raise BadSyntax("Invalid base64") from None


def _enable(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    caps = []
    r.sp()
    caps.append(r.atom_upper("capability"))
    while r.try_sp():
        caps.append(r.atom_upper("capability"))
    r.end()
    return c.Enable(tag, tuple(caps))


def _id(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    r.sp()
    if r.peek() != b"(":
        r.expect(b"NIL")
        r.end()
        return c.Id(tag, None)
    items = r.paren_list(lambda rr: rr.nstring(), allow_empty=True)
    if len(items) % 2 or len(items) > 2 * MAX_ID_PARAMS:
        raise BadSyntax("ID needs field-value pairs (at most 30)")
    params: list[tuple[str, str | None]] = []
    for i in range(0, len(items), 2):
        key, value = items[i], items[i + 1]
        if key is None:
            raise BadSyntax("ID field name may not be NIL")
        params.append((_utf8(key), None if value is None else _utf8(value)))
    r.end()
    return c.Id(tag, tuple(params))


def _select(readonly: bool) -> Parser:
    def parse(r: Reader, tag: str, opts: NameOptions) -> c.Command:
        r.sp()
        name = read_mailbox(r, opts)
        condstore = False
        qresync = None
        if r.try_sp():

            def param(rr: Reader) -> None:
                nonlocal condstore, qresync
                word = rr.atom_upper("select parameter")
                if word == "CONDSTORE":
                    condstore = True
                elif word == "QRESYNC":
                    rr.sp()
                    qresync = _qresync(rr)
                else:
                    raise BadSyntax(f"Unknown select parameter {word}")

            r.paren_list(param)
        r.end()
        return c.Select(tag, name, readonly, condstore, qresync)

    return parse


def _qresync(r: Reader) -> c.QResyncParams:
    """``(uidvalidity modseq [known-uids [(seq-match-data)]])``, RFC 7162 §3.2.5.1."""
    r.expect(b"(")
    uidvalidity = r.number(nz=True)
    r.sp()
    modseq = r.number(nz=True, bits=64)
    known = None
    match = None
    if r.try_sp():
        if r.peek() != b"(":
            known = read_seqset(r)
            if not r.try_sp():
                r.expect(b")")
                return c.QResyncParams(uidvalidity, modseq, known, None)
        r.expect(b"(")
        seqs = read_seqset(r)
        r.sp()
        uids = read_seqset(r)
        r.expect(b")")
        match = (seqs, uids)
    r.expect(b")")
    return c.QResyncParams(uidvalidity, modseq, known, match)


def _create(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    r.sp()
    name = decode_mailbox(r.astring("mailbox name"), opts)
    # RFC 9051 §6.3.4: a trailing separator declares intent to create children.
    if len(name) > 1 and name.endswith(opts.separator):
        name = name[: -len(opts.separator)]
    validate_mailbox(name, opts.separator)
    uses: tuple[str, ...] = ()
    if r.try_sp():

        def param(rr: Reader) -> None:
            nonlocal uses
            word = rr.atom_upper("create parameter")
            if word != "USE":
                raise BadSyntax(f"Unknown create parameter {word}")
            rr.sp()
            uses = read_flag_list(rr)

        r.paren_list(param)
    r.end()
    return c.Create(tag, name, uses)


def _rename(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    r.sp()
    old = read_mailbox(r, opts)
    r.sp()
    new = read_mailbox(r, opts)
    r.end()
    return c.Rename(tag, old, new)


def _status_items(r: Reader) -> tuple[str, ...]:
    items = tuple(r.paren_list(lambda rr: rr.atom_upper("status item")))
    for it in items:
        if it not in STATUS_ITEMS:
            raise BadSyntax(f"Unknown status item {it}")
    return items


def _status(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    r.sp()
    name = read_mailbox(r, opts)
    r.sp()
    items = _status_items(r)
    r.end()
    return c.Status(tag, name, items)


def _list(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    """RFC 9051 §6.3.9 with RFC 5258 selection/return options and RFC 5819 STATUS."""
    r.sp()
    extended = False
    selection: tuple[str, ...] = ()
    if r.peek() == b"(":
        extended = True
        selection = tuple(
            r.paren_list(lambda rr: rr.atom_upper("selection option"), allow_empty=True)
        )
        for s in selection:
            if s not in LIST_SELECTION:
                raise BadSyntax(f"Unknown LIST selection option {s}")
        if "RECURSIVEMATCH" in selection and len(selection) == 1:
            raise BadSyntax("RECURSIVEMATCH needs another selection option")
        r.sp()
    ref = read_pattern(r, opts)
    r.sp()
    if r.peek() == b"(":
        extended = True
        patterns = tuple(r.paren_list(lambda rr: read_pattern(rr, opts)))
    else:
        patterns = (read_pattern(r, opts),)
    ret: list[str] = []
    status_items: tuple[str, ...] = ()
    return_status = False
    if r.try_sp():
        extended = True
        r.expect(b"RETURN ")

        def ret_opt(rr: Reader) -> None:
            nonlocal status_items, return_status
            word = rr.atom_upper("return option")
            if word not in LIST_RETURN:
                raise BadSyntax(f"Unknown LIST return option {word}")
            if word == "STATUS":
                rr.sp()
                status_items = _status_items(rr)
                return_status = True
            else:
                ret.append(word)

        r.paren_list(ret_opt, allow_empty=True)
    r.end()
    return c.List(tag, ref, patterns, selection, tuple(ret), status_items, return_status, extended)


def _lsub_like(cls: type[c.Lsub] | type[c.XList]) -> Parser:
    def parse(r: Reader, tag: str, opts: NameOptions) -> c.Command:
        r.sp()
        ref = read_pattern(r, opts)
        r.sp()
        pat = read_pattern(r, opts)
        r.end()
        return cls(tag, ref, pat)

    return parse


def _append(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    """RFC 9051 §6.3.12, MULTIAPPEND (RFC 3502), BINARY literal8 (RFC 3516), UTF8 (RFC 6855)."""
    r.sp()
    name = read_mailbox(r, opts)
    messages: list[c.AppendMessage] = []
    while r.try_sp():
        flags: tuple[str, ...] = ()
        date = None
        if r.peek() == b"(":
            flags = read_flag_list(r)
            r.sp()
        if r.peek() == b'"':
            date = read_date_time(r)
            r.sp()
        utf8 = False
        if r.peek_upper(4) == b"UTF8":
            r.expect(b"UTF8 (")
            utf8 = True
        if r.peek() not in (b"{", b"~"):
            raise BadSyntax("Expected message literal")
        data, binary = r.literal(allow_binary=True)
        if utf8:
            r.expect(b")")
        messages.append(c.AppendMessage(data, flags, date, binary, utf8))
    if not messages:
        raise BadSyntax("APPEND needs a message")
    r.end()
    return c.Append(tag, name, tuple(messages))


def _getquota(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    r.sp()
    root = _utf8(r.astring("quota root"))
    r.end()
    return c.GetQuota(tag, root)


def _setquota(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    r.sp()
    root = _utf8(r.astring("quota root"))
    r.sp()
    r.expect(b"(")
    limits: list[tuple[str, int]] = []
    if not r.try_token(b")"):
        while True:
            res = r.atom_upper("resource name")
            r.sp()
            limits.append((res, r.number(bits=64)))
            if r.try_token(b")"):
                break
            r.sp()
    r.end()
    return c.SetQuota(tag, root, tuple(limits))


def _compress(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    r.sp()
    mech = r.atom_upper("compression mechanism")
    r.end()
    return c.Compress(tag, mech)


def _uid(name: str) -> Callable[[Reader, str, bool, NameOptions], c.Command]:
    table: dict[str, Callable[[Reader, str, bool, NameOptions], c.Command]] = {
        "FETCH": lambda r, t, u, o: parse_fetch(r, t, u),
        "STORE": lambda r, t, u, o: parse_store(r, t, u),
        "SEARCH": lambda r, t, u, o: parse_search(r, t, u),
        "SORT": lambda r, t, u, o: parse_sort(r, t, u),
        "THREAD": lambda r, t, u, o: parse_thread(r, t, u),
        "COPY": parse_copy,
        "MOVE": parse_move,
    }
    return table[name]


def _expunge(r: Reader, tag: str, opts: NameOptions) -> c.Command:
    r.end()
    return c.Expunge(tag)


PARSERS: dict[str, Parser] = {
    "CAPABILITY": _bare(c.Capability),
    "NOOP": _bare(c.Noop),
    "LOGOUT": _bare(c.Logout),
    "ID": _id,
    "STARTTLS": _bare(c.StartTls),
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "ENABLE": _enable,
    "SELECT": _select(False),
    "EXAMINE": _select(True),
    "CREATE": _create,
    "DELETE": _one_mailbox(c.Delete),
    "RENAME": _rename,
    "SUBSCRIBE": _one_mailbox(c.Subscribe),
    "UNSUBSCRIBE": _one_mailbox(c.Unsubscribe),
    "LIST": _list,
    "LSUB": _lsub_like(c.Lsub),
    "XLIST": _lsub_like(c.XList),
    "NAMESPACE": _bare(c.Namespace),
    "STATUS": _status,
    "APPEND": _append,
    "IDLE": _bare(c.Idle),
    "GETQUOTA": _getquota,
    "GETQUOTAROOT": _one_mailbox(c.GetQuotaRoot),
    "SETQUOTA": _setquota,
    "COMPRESS": _compress,
    "CHECK": _bare(c.Check),
    "CLOSE": _bare(c.Close),
    "UNSELECT": _bare(c.Unselect),
    "EXPUNGE": _expunge,
    "UID EXPUNGE": lambda r, t, o: parse_uid_expunge(r, t),
}
for _name in ("FETCH", "STORE", "SEARCH", "SORT", "THREAD", "COPY", "MOVE"):
    PARSERS[_name] = (lambda f: lambda r, t, o: f(r, t, False, o))(_uid(_name))
    PARSERS["UID " + _name] = (lambda f: lambda r, t, o: f(r, t, True, o))(_uid(_name))


def read_tag(r: Reader) -> str:
    """``tag`` = 1*<any ASTRING-CHAR except "+">."""
    return r.chars(TAG_CHARS, "tag").decode("ascii")


def parse_command(buf: bytes, opts: NameOptions) -> c.Command:
    """Parse one complete command (no trailing CRLF; literals inline as on the wire)."""
    r = Reader(buf)
    tag = read_tag(r)
    r.sp()
    name = r.atom_upper("command name")
    if name == "UID":
        r.sp()
        name = "UID " + r.atom_upper("command name")
    parser = PARSERS.get(name)
    if parser is None:
        raise BadSyntax(f"Unknown command {name[:40]}")
    return parser(r, tag, opts)


__all__ = ["PARSERS", "BadSyntax", "Refused", "decode_base64", "parse_command", "read_tag"]
