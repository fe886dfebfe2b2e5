"""IMAP response codes (RFC 9051 §7.1, RFC 5530, RFC 4315, RFC 7162, RFC 4978, RFC 6154).

A :class:`ResponseCode` is a name plus optional arguments, encoded by :mod:`.responses` as
``[NAME args]``. The constructors below spell each code once, so handlers cannot misspell
one; :class:`Code` lists the names (argument-less codes can be used as ``Code.X.value``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from .sequence import format_numbers
from .values import Atom, Value

__all__ = ["Code", "ResponseCode"]


class Code(enum.Enum):
    """Every response code mailhub sends."""

    ALERT = "ALERT"
    ALREADYEXISTS = "ALREADYEXISTS"
    APPENDUID = "APPENDUID"
    AUTHENTICATIONFAILED = "AUTHENTICATIONFAILED"
    AUTHORIZATIONFAILED = "AUTHORIZATIONFAILED"
    BADCHARSET = "BADCHARSET"
    CANNOT = "CANNOT"
    CAPABILITY = "CAPABILITY"
    CLIENTBUG = "CLIENTBUG"
    CLOSED = "CLOSED"
    COMPRESSIONACTIVE = "COMPRESSIONACTIVE"
    CONTACTADMIN = "CONTACTADMIN"
    COPYUID = "COPYUID"
    CORRUPTION = "CORRUPTION"
    EXPIRED = "EXPIRED"
    EXPUNGEISSUED = "EXPUNGEISSUED"
    HASCHILDREN = "HASCHILDREN"
    HIGHESTMODSEQ = "HIGHESTMODSEQ"
    INUSE = "INUSE"
    LIMIT = "LIMIT"
    MODIFIED = "MODIFIED"
    NOMODSEQ = "NOMODSEQ"
    NONEXISTENT = "NONEXISTENT"
    NOPERM = "NOPERM"
    NOTSAVED = "NOTSAVED"
    OVERQUOTA = "OVERQUOTA"
    PARSE = "PARSE"
    PERMANENTFLAGS = "PERMANENTFLAGS"
    PRIVACYREQUIRED = "PRIVACYREQUIRED"
    READ_ONLY = "READ-ONLY"
    READ_WRITE = "READ-WRITE"
    SERVERBUG = "SERVERBUG"
    TOOBIG = "TOOBIG"
    TRYCREATE = "TRYCREATE"
    UIDNEXT = "UIDNEXT"
    UIDNOTSTICKY = "UIDNOTSTICKY"
    UIDVALIDITY = "UIDVALIDITY"
    UNAVAILABLE = "UNAVAILABLE"
    UNKNOWN_CTE = "UNKNOWN-CTE"
    UNSEEN = "UNSEEN"
    USEATTR = "USEATTR"


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """``[name args...]``; ``args`` are encoded like any other values, space-separated."""

    name: str
    args: tuple[Value, ...] = ()

    @classmethod
    def of(cls, code: Code | str, *args: Value) -> ResponseCode:
        return cls(code.value if isinstance(code, Code) else code, args)

    @classmethod
    def raw(cls, text: str) -> ResponseCode:
        """From the ``code`` text of a :class:`~.events.ParseError` (``"BADCHARSET (...)"``)."""
        name, _, rest = text.partition(" ")
        return cls(name, (Atom(rest),) if rest else ())

    # -- constructors for codes with arguments ---------------------------------------------
    @classmethod
    def capability(cls, caps: Iterable[str]) -> ResponseCode:
        return cls("CAPABILITY", tuple(Atom(c) for c in caps))

    @classmethod
    def permanentflags(cls, flags: Iterable[str]) -> ResponseCode:
        return cls("PERMANENTFLAGS", (tuple(Atom(f) for f in flags),))

    @classmethod
    def badcharset(cls, charsets: Iterable[str] = ("US-ASCII", "UTF-8")) -> ResponseCode:
        return cls("BADCHARSET", (tuple(Atom(c) for c in charsets),))

    @classmethod
    def uidnext(cls, n: int) -> ResponseCode:
        return cls("UIDNEXT", (n,))

    @classmethod
    def uidvalidity(cls, n: int) -> ResponseCode:
        return cls("UIDVALIDITY", (n,))

    @classmethod
    def unseen(cls, n: int) -> ResponseCode:
        return cls("UNSEEN", (n,))

    @classmethod
    def highestmodseq(cls, n: int) -> ResponseCode:
        return cls("HIGHESTMODSEQ", (n,))

    @classmethod
    def modified(cls, numbers: Iterable[int]) -> ResponseCode:
        """RFC 7162 §3.1.3: messages that failed UNCHANGEDSINCE."""
        return cls("MODIFIED", (Atom(format_numbers(numbers)),))

    @classmethod
    def appenduid(cls, uidvalidity: int, uids: Iterable[int]) -> ResponseCode:
        """RFC 4315 §3 (the UIDs in APPEND order, compressed when ascending)."""
        return cls("APPENDUID", (uidvalidity, Atom(_uid_list(uids))))

    @classmethod
    def copyuid(cls, uidvalidity: int, src: Iterable[int], dst: Iterable[int]) -> ResponseCode:
        """RFC 4315 §3: source and destination UID sets, in corresponding order."""
        return cls("COPYUID", (uidvalidity, Atom(_uid_list(src)), Atom(_uid_list(dst))))


def _uid_list(uids: Iterable[int]) -> str:
    """Keep the order (COPYUID pairs positions) but compress ascending runs."""
    out: list[str] = []
    run: list[int] = []
    for u in uids:
        if run and u == run[-1] + 1:
            run.append(u)
            continue
        if run:
            out.append(format_numbers(run))
        run = [u]
    if run:
        out.append(format_numbers(run))
    return ",".join(out)
