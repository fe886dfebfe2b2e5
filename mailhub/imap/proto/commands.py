"""One frozen dataclass per IMAP command, and the declarative command REGISTRY.

Every command of RFC 9051 and RFC 3501 plus the extensions mailhub offers parses into one of
these types; handlers receive a typed value and never re-parse text (pymap's typed commands,
not Dovecot's ``imap_arg`` trees). Mailbox names are already decoded to Unicode (from
modified UTF-7, or UTF-8 after UTF8=ACCEPT / IMAP4rev2), validated, and ``INBOX`` is
canonically upper-cased. Commands with a ``uid`` flag stand for both the plain and the
``UID`` form.

:data:`REGISTRY` is the single table (Dovecot ``imap-commands.c``, mox ``commandsState*``)
that the session consults before dispatch: allowed states, whether the command refers to
message sequence numbers (``uses_seqs``: no untagged EXPUNGE may be sent while it runs,
RFC 9051 §7.5.1) or may send pending EXPUNGE/VANISHED updates (``breaks_seqs``), and the
capability that advertises it.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from typing import ClassVar, Literal

from .fetch import FetchAtt
from .search import SearchKey
from .sequence import SequenceSet

_NO_SET = SequenceSet()

# ---------------------------------------------------------------------------------------------
# states


class State(enum.Enum):
    """Connection states (RFC 9051 §3)."""

    NOT_AUTHENTICATED = "not-authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
NOAUTH = frozenset({State.NOT_AUTHENTICATED})
AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
AUTH_ONLY = frozenset({State.AUTHENTICATED})
SELECTED = frozenset({State.SELECTED})


@dataclass(frozen=True, slots=True)
class Command:
    """Base of all commands: ``tag`` is the client's tag; ``NAME`` the command word."""

    NAME: ClassVar[str] = ""
    tag: str

    @property
    def name(self) -> str:
        """The registry key: ``NAME``, prefixed with ``UID `` for the UID forms."""
        return ("UID " + self.NAME) if getattr(self, "uid", False) else self.NAME


# ---------------------------------------------------------------------------------------------
# any state (RFC 9051 §6.1)


@dataclass(frozen=True, slots=True)
class Capability(Command):
    NAME: ClassVar[str] = "CAPABILITY"


@dataclass(frozen=True, slots=True)
class Noop(Command):
    NAME: ClassVar[str] = "NOOP"


@dataclass(frozen=True, slots=True)
class Logout(Command):
    NAME: ClassVar[str] = "LOGOUT"


@dataclass(frozen=True, slots=True)
class Id(Command):
    """RFC 2971; ``params`` is None for ``ID NIL``; keys as sent (compare case-insensitively)."""

    NAME: ClassVar[str] = "ID"
    params: tuple[tuple[str, str | None], ...] | None = None


# ---------------------------------------------------------------------------------------------
# not authenticated (RFC 9051 §6.2)


@dataclass(frozen=True, slots=True)
class StartTls(Command):
    NAME: ClassVar[str] = "STARTTLS"


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    """``initial_response`` is decoded base64 (SASL-IR, RFC 4959); ``b""`` for ``=``."""

    NAME: ClassVar[str] = "AUTHENTICATE"
    mechanism: str = ""
    initial_response: bytes | None = None


@dataclass(frozen=True, slots=True)
class Login(Command):
    NAME: ClassVar[str] = "LOGIN"
    username: str = ""
    password: str = ""

    def __repr__(self) -> str:  # never let a password reach a log line
        return f"Login(tag={self.tag!r}, username={self.username!r}, password=<hidden>)"


# ---------------------------------------------------------------------------------------------
# authenticated (RFC 9051 §6.3)


@dataclass(frozen=True, slots=True)
class Enable(Command):
    """RFC 5161; capability names upper-cased."""

    NAME: ClassVar[str] = "ENABLE"
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QResyncParams:
    """RFC 7162 §3.2.5.1: ``(QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]]))``."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class Select(Command):
    """SELECT, or EXAMINE when ``readonly``; CONDSTORE/QRESYNC select parameters (RFC 7162)."""

    NAME: ClassVar[str] = "SELECT"
    mailbox: str = ""
    readonly: bool = False
    condstore: bool = False
    qresync: QResyncParams | None = None

    @property
    def name(self) -> str:
        return "EXAMINE" if self.readonly else "SELECT"


@dataclass(frozen=True, slots=True)
class Create(Command):
    """``special_use`` from ``(USE (\\Sent ...))`` (RFC 6154 §3)."""

    NAME: ClassVar[str] = "CREATE"
    mailbox: str = ""
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete(Command):
    NAME: ClassVar[str] = "DELETE"
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class Rename(Command):
    NAME: ClassVar[str] = "RENAME"
    mailbox: str = ""
    new_name: str = ""


@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    NAME: ClassVar[str] = "SUBSCRIBE"
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class Unsubscribe(Command):
    NAME: ClassVar[str] = "UNSUBSCRIBE"
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class List(Command):
    """LIST with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154).

    ``selection`` and ``return_opts`` are upper-cased option names (STATUS excluded; its items
    are ``status_items``, and ``return_status`` says whether STATUS was requested at all).
    ``extended`` is True if the client used any extended syntax (then replies may carry
    CHILDINFO etc.). Patterns and reference are decoded names, wildcards kept.
    """

    NAME: ClassVar[str] = "LIST"
    reference: str = ""
    patterns: tuple[str, ...] = ()
    selection: tuple[str, ...] = ()
    return_opts: tuple[str, ...] = ()
    status_items: tuple[str, ...] = ()
    return_status: bool = False
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Lsub(Command):
    NAME: ClassVar[str] = "LSUB"
    reference: str = ""
    pattern: str = ""


@dataclass(frozen=True, slots=True)
class XList(Command):
    """Outlook's pre-SPECIAL-USE listing (Gmail XLIST); answered with ``* XLIST``."""

    NAME: ClassVar[str] = "XLIST"
    reference: str = ""
    pattern: str = ""


@dataclass(frozen=True, slots=True)
class Namespace(Command):
    NAME: ClassVar[str] = "NAMESPACE"


@dataclass(frozen=True, slots=True)
class Status(Command):
    """``items`` upper-cased: MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT
    HIGHESTMODSEQ APPENDLIMIT."""

    NAME: ClassVar[str] = "STATUS"
    mailbox: str = ""
    items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND (MULTIAPPEND, RFC 3502, sends several).

    ``binary`` is set for a ``~{n}`` literal8 (RFC 3516), ``utf8`` for ``UTF8 (~{n})`` (RFC 6855).
    """

    data: bytes
    flags: tuple[str, ...] = ()
    date: datetime.datetime | None = None
    binary: bool = False
    utf8: bool = False

    def __repr__(self) -> str:  # never log a message body
        return (
            f"AppendMessage(<{len(self.data)} bytes>, flags={self.flags!r}, date={self.date!r}, "
            f"binary={self.binary}, utf8={self.utf8})"
        )


@dataclass(frozen=True, slots=True)
class Append(Command):
    NAME: ClassVar[str] = "APPEND"
    mailbox: str = ""
    messages: tuple[AppendMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class Idle(Command):
    """RFC 2177. After it, the parser pauses; call ``start_idle()`` to wait for DONE."""

    NAME: ClassVar[str] = "IDLE"


@dataclass(frozen=True, slots=True)
class GetQuota(Command):
    NAME: ClassVar[str] = "GETQUOTA"
    root: str = ""


@dataclass(frozen=True, slots=True)
class GetQuotaRoot(Command):
    NAME: ClassVar[str] = "GETQUOTAROOT"
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class SetQuota(Command):
    """``limits`` are (upper-cased resource name, limit) pairs (RFC 9208 §4.1.3)."""

    NAME: ClassVar[str] = "SETQUOTA"
    root: str = ""
    limits: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Compress(Command):
    """RFC 4978; ``mechanism`` upper-cased (only DEFLATE exists)."""

    NAME: ClassVar[str] = "COMPRESS"
    mechanism: str = "DEFLATE"


# ---------------------------------------------------------------------------------------------
# selected (RFC 9051 §6.4)


@dataclass(frozen=True, slots=True)
class Check(Command):
    NAME: ClassVar[str] = "CHECK"


@dataclass(frozen=True, slots=True)
class Close(Command):
    NAME: ClassVar[str] = "CLOSE"


@dataclass(frozen=True, slots=True)
class Unselect(Command):
    NAME: ClassVar[str] = "UNSELECT"


@dataclass(frozen=True, slots=True)
class Expunge(Command):
    """EXPUNGE, or UID EXPUNGE (UIDPLUS, RFC 4315 §2.1) with ``uid`` and ``uids``."""

    NAME: ClassVar[str] = "EXPUNGE"
    uid: bool = False
    uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Search(Command):
    """SEARCH / UID SEARCH. ``return_opts`` is None for the classic ``* SEARCH`` form; a tuple
    (possibly empty, meaning ALL) asks for ESEARCH (RFC 4731, RFC 9051 §6.4.4).
    ``charset`` is the upper-cased CHARSET or None; string keys are already decoded with it."""

    NAME: ClassVar[str] = "SEARCH"
    uid: bool = False
    criteria: SearchKey | None = None
    charset: str | None = None
    return_opts: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    """FETCH / UID FETCH, with CHANGEDSINCE and VANISHED modifiers (RFC 7162 §3.1.4, §3.2.6).

    ``atts`` has macros expanded, in request order. For UID FETCH the UID attribute is not
    added here; RFC 9051 §6.4.9 makes the handler include UID in every response anyway.
    """

    NAME: ClassVar[str] = "FETCH"
    uid: bool = False
    seqset: SequenceSet = _NO_SET
    atts: tuple[FetchAtt, ...] = ()
    changedsince: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True)
class Store(Command):
    """STORE / UID STORE: ``mode`` replace (FLAGS), add (+FLAGS), remove (-FLAGS)."""

    NAME: ClassVar[str] = "STORE"
    uid: bool = False
    seqset: SequenceSet = _NO_SET
    mode: Literal["replace", "add", "remove"] = "replace"
    silent: bool = False
    flags: tuple[str, ...] = ()
    unchangedsince: int | None = None


@dataclass(frozen=True, slots=True)
class Copy(Command):
    NAME: ClassVar[str] = "COPY"
    uid: bool = False
    seqset: SequenceSet = _NO_SET
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class Move(Command):
    """RFC 6851."""

    NAME: ClassVar[str] = "MOVE"
    uid: bool = False
    seqset: SequenceSet = _NO_SET
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class SortKey:
    """One sort criterion (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO)."""

    key: str
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class Sort(Command):
    """SORT / UID SORT; ``return_opts`` not None means ESORT (RFC 5267 §3)."""

    NAME: ClassVar[str] = "SORT"
    uid: bool = False
    keys: tuple[SortKey, ...] = ()
    charset: str = "UTF-8"
    criteria: SearchKey | None = None
    return_opts: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Thread(Command):
    """THREAD / UID THREAD (RFC 5256 §3); ``algorithm`` REFERENCES or ORDEREDSUBJECT."""

    NAME: ClassVar[str] = "THREAD"
    uid: bool = False
    algorithm: str = "REFERENCES"
    charset: str = "UTF-8"
    criteria: SearchKey | None = None


# ---------------------------------------------------------------------------------------------
# the registry


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One row of the command table; see the module docstring for the flags' meaning."""

    name: str
    type: type[Command]
    states: frozenset[State]
    uses_seqs: bool = False
    breaks_seqs: bool = False
    capability: str | None = None


def _r(*specs: CommandSpec) -> dict[str, CommandSpec]:
    return {s.name: s for s in specs}


S = CommandSpec
# Flags follow Dovecot's imap-commands.c: non-UID commands that take message numbers
# "use" them; UID forms and the mailbox-changing commands may "break" them.
REGISTRY: dict[str, CommandSpec] = _r(
    S("CAPABILITY", Capability, ANY),
    S("NOOP", Noop, ANY, breaks_seqs=True),
    S("LOGOUT", Logout, ANY),
    S("ID", Id, ANY, capability="ID"),
    S("STARTTLS", StartTls, NOAUTH, capability="STARTTLS"),
    S("AUTHENTICATE", Authenticate, NOAUTH),
    S("LOGIN", Login, NOAUTH),
    S("ENABLE", Enable, AUTH_ONLY, capability="ENABLE"),
    S("SELECT", Select, AUTH),
    S("EXAMINE", Select, AUTH),
    S("CREATE", Create, AUTH),
    S("DELETE", Delete, AUTH),
    S("RENAME", Rename, AUTH),
    S("SUBSCRIBE", Subscribe, AUTH),
    S("UNSUBSCRIBE", Unsubscribe, AUTH),
    S("LIST", List, AUTH),
    S("LSUB", Lsub, AUTH),
    S("XLIST", XList, AUTH, capability="XLIST"),
    S("NAMESPACE", Namespace, AUTH, capability="NAMESPACE"),
    S("STATUS", Status, AUTH),
    S("APPEND", Append, AUTH, breaks_seqs=True),
    S("IDLE", Idle, AUTH, breaks_seqs=True, capability="IDLE"),
    S("GETQUOTA", GetQuota, AUTH, capability="QUOTA"),
    S("GETQUOTAROOT", GetQuotaRoot, AUTH, capability="QUOTA"),
    S("SETQUOTA", SetQuota, AUTH, capability="QUOTA"),
    S("COMPRESS", Compress, AUTH, capability="COMPRESS=DEFLATE"),
    S("CHECK", Check, SELECTED, breaks_seqs=True),
    S("CLOSE", Close, SELECTED, breaks_seqs=True),
    S("UNSELECT", Unselect, SELECTED, capability="UNSELECT"),
    S("EXPUNGE", Expunge, SELECTED, breaks_seqs=True),
    S("UID EXPUNGE", Expunge, SELECTED, breaks_seqs=True, capability="UIDPLUS"),
    S("SEARCH", Search, SELECTED, uses_seqs=True),
    S("UID SEARCH", Search, SELECTED, breaks_seqs=True),
    S("FETCH", Fetch, SELECTED, uses_seqs=True),
    S("UID FETCH", Fetch, SELECTED, breaks_seqs=True),
    S("STORE", Store, SELECTED, uses_seqs=True),
    S("UID STORE", Store, SELECTED, breaks_seqs=True),
    S("COPY", Copy, SELECTED, uses_seqs=True),
    S("UID COPY", Copy, SELECTED, breaks_seqs=True),
    S("MOVE", Move, SELECTED, uses_seqs=True, breaks_seqs=True, capability="MOVE"),
    S("UID MOVE", Move, SELECTED, breaks_seqs=True, capability="MOVE"),
    S("SORT", Sort, SELECTED, uses_seqs=True, capability="SORT"),
    S("UID SORT", Sort, SELECTED, breaks_seqs=True, capability="SORT"),
    S("THREAD", Thread, SELECTED, uses_seqs=True, capability="THREAD=REFERENCES"),
    S("UID THREAD", Thread, SELECTED, breaks_seqs=True, capability="THREAD=REFERENCES"),
)
del S


def spec_for(cmd: Command) -> CommandSpec:
    """The registry row for a parsed command (``UID FETCH`` vs ``FETCH``, EXAMINE vs SELECT)."""
    return REGISTRY[cmd.name]
