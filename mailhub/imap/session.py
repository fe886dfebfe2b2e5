"""One IMAP session: the state machine, the one dispatcher and the one error table.

This module is the contract between the connection layer (``server.py``), the command
handlers of ``mailhub/imap/handlers/`` and the selected-mailbox view (``selected.py``).

Handler interface (what every handler, including FETCH/SEARCH/SORT/THREAD, codes against)::

    async def handle_fetch(session: Session, cmd: proto.commands.Fetch) -> Tagged

* A handler receives the typed command (``mailhub.imap.proto.commands``); the state was
  already checked against ``REGISTRY`` here, in :meth:`Session.execute` - handlers never
  re-check it (a SELECTED-only handler may rely on ``session.selected`` being set).
* Untagged responses go out with ``await session.send(resp, ...)`` (any
  :mod:`mailhub.imap.proto.responses` object; a :class:`~mailhub.imap.proto.BodyRef` inside a
  ``FetchResponse`` is streamed by the connection, never held whole). Sending is cheap: output
  is buffered and flushed after the tagged reply (and when the buffer grows large).
* The handler returns the tagged completion: ``session.ok(cmd, "FETCH completed")``
  (or ``session.no`` / ``session.bad``, or any ``Tagged``). Failures may instead be raised:
  :class:`CommandError` (``raise CommandError("BAD", "Invalid message number")``), or a
  :class:`~mailhub.errors.MailError` from the store, which :data:`MAIL_ERROR_CODES` maps to
  ``NO [code]``. Any other exception is a server bug: logged with its traceback, counted in
  :data:`SERVER_BUGS`, answered ``NO [SERVERBUG]`` - never a traceback to the client.
* After the handler, the dispatcher sends pending mailbox updates (EXISTS, FETCH FLAGS,
  EXPUNGE/VANISHED) where RFC 9051 §7.5.1 allows (``CommandSpec.uses_seqs/breaks_seqs``),
  then the tagged reply.

Session attributes handlers use:

* ``session.state``: :class:`~mailhub.imap.proto.State`.
* ``session.account``: the store :class:`~mailhub.store.api.Account` (authenticated states),
  ``session.address`` its address.
* ``session.selected``: :class:`~mailhub.imap.selected.SelectedView` or None. See that module:
  ``.mailbox`` (store Mailbox), ``.readonly``, ``.exists``, ``.info(seq)``, ``.uid(seq)``,
  ``.seq_of(uid)``, ``.messages`` (MessageInfo by seq-1), ``.resolve(seqset, uid=...)``
  (sequence numbers, ``$`` and ``*`` handled, BAD for out-of-range message numbers),
  ``.is_recent(uid)``, ``.note_flags(infos)`` (record flags this session changed itself, e.g.
  the implicit ``\\Seen`` of ``BODY[]``, so they are not reported again as foreign changes).
* ``session.enabled``: set of enabled extensions (``"CONDSTORE"``, ``"QRESYNC"``,
  ``"IMAP4REV2"``, ``"UTF8=ACCEPT"``); ``session.condstore`` (CONDSTORE or QRESYNC enabled,
  or a CONDSTORE-enabling command was used: then FETCH responses carry MODSEQ),
  ``session.qresync``, ``session.rev2``, ``session.utf8``.
* ``session.searchres``: the saved search result as UIDs (SEARCHRES ``$``, RFC 5182); set it
  with ``session.save_result(uids)``; ``SelectedView.resolve`` substitutes it.
* ``session.settings`` (``mailhub.config.Settings``), ``session.log`` (a logger adapter
  prefixed with the peer).
"""

from __future__ import annotations

import importlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from mailhub import __version__
from mailhub.errors import MailError, MailErrorKind
from mailhub.imap.proto import Code, Command, CommandParser, Event, ResponseCode, State, spec_for
from mailhub.imap.proto.responses import CapabilityResponse, Response, Tagged, Untagged
from mailhub.imap.proto.values import Builder, Piece

if TYPE_CHECKING:
    from mailhub.app import ServerContext
    from mailhub.imap.selected import SelectedView
    from mailhub.store.api import Account

log = logging.getLogger("mailhub.imap")

# Unexpected exceptions answered NO [SERVERBUG]; tests require it to stay 0.
SERVER_BUGS = 0


def note_server_bug() -> None:
    """Count an unexpected exception (a handler bug)."""
    global SERVER_BUGS
    SERVER_BUGS += 1


# The ONE MailErrorKind -> IMAP response code table (RFC 5530 codes).
MAIL_ERROR_CODES: dict[MailErrorKind, Code] = {
    MailErrorKind.TEMP: Code.UNAVAILABLE,
    MailErrorKind.NOTPOSSIBLE: Code.CANNOT,
    MailErrorKind.PERM: Code.NOPERM,
    MailErrorKind.NOQUOTA: Code.OVERQUOTA,
    MailErrorKind.NOTFOUND: Code.NONEXISTENT,
    MailErrorKind.EXISTS: Code.ALREADYEXISTS,
    MailErrorKind.EXPUNGED: Code.EXPUNGEISSUED,
    MailErrorKind.INUSE: Code.INUSE,
    MailErrorKind.LIMIT: Code.LIMIT,
    MailErrorKind.TOOBIG: Code.TOOBIG,
    MailErrorKind.BADNAME: Code.CANNOT,
}

# Extensions advertised after login (and, minus the auth ones, before). RFC 9051 §6.1.1.
BASE_CAPABILITIES: tuple[str, ...] = (
    "IMAP4rev1",
    "IMAP4rev2",
    "LITERAL+",
    "SASL-IR",
    "ID",
    "ENABLE",
    "IDLE",
)
POST_LOGIN_CAPABILITIES: tuple[str, ...] = (
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "CHILDREN",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "XLIST",
    "ESEARCH",
    "SEARCHRES",
    "STATUS=SIZE",
    "MULTIAPPEND",
    "BINARY",
    "UTF8=ACCEPT",
    "QUOTA",
    "QUOTA=RES-STORAGE",
    "QUOTA=RES-MESSAGE",
    "CONDSTORE",
    "QRESYNC",
    "SORT",
    "SORT=DISPLAY",
    "ESORT",
    "THREAD=REFERENCES",
    "THREAD=ORDEREDSUBJECT",
    "WITHIN",
)


class CommandError(Exception):
    """Raised by a handler to answer ``NO``/``BAD`` with an optional response code."""

    def __init__(
        self,
        status: Literal["NO", "BAD"],
        text: str,
        code: Code | ResponseCode | None = None,
    ) -> None:
        super().__init__(text)
        self.status: Literal["NO", "BAD"] = status
        self.text = text
        self.code = ResponseCode.of(code) if isinstance(code, Code) else code


class Connection(Protocol):
    """What the connection layer (``server.py``) offers the session and its handlers."""

    peer_ip: str
    secure: bool
    compressed: bool
    parser: CommandParser

    async def write(self, pieces: list[Piece]) -> None:
        """Queue encoded output (BodyRef pieces are streamed)."""

    def queue(self, data: bytes) -> bool:
        """Queue bytes without awaiting; True when ``write`` should be awaited to push."""

    async def flush(self) -> None:
        """Send everything queued (a sync flush under COMPRESS)."""

    async def next_event(self, timeout: float | None = None) -> Event | None:
        """The parser's next event, reading as needed; None at EOF or timeout."""

    async def start_tls(self) -> None:
        """Upgrade the socket (after STARTTLS's OK was flushed)."""

    async def start_compress(self) -> None:
        """Switch both directions to DEFLATE (after COMPRESS's OK was flushed)."""

    def pause_reading(self) -> None:
        """Stop reading from the socket (before STARTTLS's OK, RFC 9051 §6.2.1)."""


Handler = Callable[["Session", Any], Awaitable[Tagged]]

# command name (REGISTRY key) -> (module, function). Imported lazily, once.
_HANDLER_TABLE: dict[str, tuple[str, str]] = {
    "CAPABILITY": ("auth", "handle_capability"),
    "NOOP": ("auth", "handle_noop"),
    "LOGOUT": ("auth", "handle_logout"),
    "ID": ("auth", "handle_id"),
    "STARTTLS": ("auth", "handle_starttls"),
    "AUTHENTICATE": ("auth", "handle_authenticate"),
    "LOGIN": ("auth", "handle_login"),
    "ENABLE": ("auth", "handle_enable"),
    "COMPRESS": ("auth", "handle_compress"),
    "NAMESPACE": ("auth", "handle_namespace"),
    "SELECT": ("select", "handle_select"),
    "EXAMINE": ("select", "handle_select"),
    "CHECK": ("select", "handle_check"),
    "CLOSE": ("select", "handle_close"),
    "UNSELECT": ("select", "handle_unselect"),
    "EXPUNGE": ("select", "handle_expunge"),
    "UID EXPUNGE": ("select", "handle_expunge"),
    "CREATE": ("mailbox", "handle_create"),
    "DELETE": ("mailbox", "handle_delete"),
    "RENAME": ("mailbox", "handle_rename"),
    "SUBSCRIBE": ("mailbox", "handle_subscribe"),
    "UNSUBSCRIBE": ("mailbox", "handle_subscribe"),
    "LIST": ("mailbox", "handle_list"),
    "LSUB": ("mailbox", "handle_lsub"),
    "XLIST": ("mailbox", "handle_xlist"),
    "STATUS": ("mailbox", "handle_status"),
    "GETQUOTA": ("mailbox", "handle_getquota"),
    "GETQUOTAROOT": ("mailbox", "handle_getquotaroot"),
    "SETQUOTA": ("mailbox", "handle_setquota"),
    "APPEND": ("append", "handle_append"),
    "IDLE": ("idle", "handle_idle"),
    "STORE": ("store", "handle_store"),
    "UID STORE": ("store", "handle_store"),
    "COPY": ("copymove", "handle_copy"),
    "UID COPY": ("copymove", "handle_copy"),
    "MOVE": ("copymove", "handle_move"),
    "UID MOVE": ("copymove", "handle_move"),
    "FETCH": ("fetch", "handle_fetch"),
    "UID FETCH": ("fetch", "handle_fetch"),
    "SEARCH": ("search", "handle_search"),
    "UID SEARCH": ("search", "handle_search"),
    "SORT": ("sort", "handle_sort"),
    "UID SORT": ("sort", "handle_sort"),
    "THREAD": ("thread", "handle_thread"),
    "UID THREAD": ("thread", "handle_thread"),
}
_handlers: dict[str, Handler | None] = {}


def _handler(name: str) -> Handler | None:
    """The handler function for a REGISTRY name; None if its module cannot be imported."""
    if name in _handlers:
        return _handlers[name]
    module_name, func = _HANDLER_TABLE[name]
    try:
        module = importlib.import_module(f"mailhub.imap.handlers.{module_name}")
        fn: Handler | None = getattr(module, func)
    except (ImportError, AttributeError) as exc:
        log.error("IMAP %s not available: %s", name, exc)
        fn = None
    _handlers[name] = fn
    return fn


class _PeerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"imap {self.extra['peer'] if self.extra else '?'}: {msg}", kwargs


class Session:
    """Per-connection IMAP state; see the module docstring for the handler contract."""

    def __init__(self, ctx: ServerContext, conn: Connection, peer: str) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.conn = conn
        self.peer = peer
        self.log = _PeerLog(log, {"peer": peer})
        self.state = State.NOT_AUTHENTICATED
        self.account: Account | None = None
        self.address: str | None = None
        self.selected: SelectedView | None = None
        self.enabled: set[str] = set()
        self.condstore_used = False
        self.searchres: tuple[int, ...] = ()
        self.protocol_errors = 0
        self.failed_logins = 0
        self.closing = False  # set by LOGOUT / fatal conditions: the driver closes after
        self.last_activity = time.monotonic()
        self.client_id: str | None = None
        # Run by the driver after the tagged reply was flushed (STARTTLS, COMPRESS).
        self.after_reply: Callable[[], Awaitable[None]] | None = None

    # -- derived flags ---------------------------------------------------------------------
    @property
    def utf8(self) -> bool:
        """Mailbox names and quoted strings in UTF-8 (RFC 6855, RFC 9051)."""
        return "UTF8=ACCEPT" in self.enabled or "IMAP4REV2" in self.enabled

    @property
    def rev2(self) -> bool:
        return "IMAP4REV2" in self.enabled

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    @property
    def condstore(self) -> bool:
        """MODSEQ goes into FETCH responses (RFC 7162 §3.1: once CONDSTORE is in use)."""
        return self.condstore_used or "CONDSTORE" in self.enabled or "QRESYNC" in self.enabled

    def save_result(self, uids: tuple[int, ...] | list[int]) -> None:
        """Remember a SEARCH result for ``$`` (RFC 5182 §2.1)."""
        self.searchres = tuple(uids)

    # -- capabilities ----------------------------------------------------------------------
    def cleartext_auth_allowed(self) -> bool:
        from mailhub.net.tls import is_loopback

        return (
            self.conn.secure or self.settings.allow_cleartext_auth or is_loopback(self.conn.peer_ip)
        )

    def capabilities(self) -> tuple[str, ...]:
        caps = list(BASE_CAPABILITIES)
        if self.state is State.NOT_AUTHENTICATED:
            if not self.conn.secure and self.ctx.tls.server_context() is not None:
                caps.append("STARTTLS")
            if self.cleartext_auth_allowed():
                caps += ["AUTH=PLAIN", "AUTH=LOGIN"]
            else:
                caps.append("LOGINDISABLED")
        else:
            caps += POST_LOGIN_CAPABILITIES
            if not self.conn.compressed:
                caps.append("COMPRESS=DEFLATE")
            caps.append(f"APPENDLIMIT={self.settings.limits.max_literal_size}")
        return tuple(caps)

    def capability_response(self) -> CapabilityResponse:
        return CapabilityResponse(self.capabilities())

    # -- output ----------------------------------------------------------------------------
    async def send(self, *responses: Response) -> None:
        """Write untagged responses (streamed; see module docstring).

        The common case (no BodyRef) is one encode into one bytes object queued without an
        await: a FETCH over 100,000 messages calls this 100,000 times.
        """
        b = Builder(self.utf8)
        for resp in responses:
            resp.write(b)
        if b.pieces:  # a BodyRef was met: stream the pieces
            await self.conn.write(b.finish())
        elif self.conn.queue(bytes(b.buf)):
            await self.conn.write([])

    async def send_raw(self, data: bytes) -> None:
        """Write pre-encoded untagged responses (the index-only FETCH fast path)."""
        if self.conn.queue(data):
            await self.conn.write([])

    @staticmethod
    def ok(cmd: Command, text: str, code: Code | ResponseCode | None = None) -> Tagged:
        return Tagged(
            cmd.tag, "OK", text, ResponseCode.of(code) if isinstance(code, Code) else code
        )

    @staticmethod
    def no(cmd: Command, text: str, code: Code | ResponseCode | None = None) -> Tagged:
        return Tagged(
            cmd.tag, "NO", text, ResponseCode.of(code) if isinstance(code, Code) else code
        )

    @staticmethod
    def bad(cmd: Command, text: str, code: Code | ResponseCode | None = None) -> Tagged:
        return Tagged(
            cmd.tag, "BAD", text, ResponseCode.of(code) if isinstance(code, Code) else code
        )

    def mail_error(self, tag: str, err: MailError) -> Tagged:
        """The tagged NO for a store failure (the ONE table, :data:`MAIL_ERROR_CODES`)."""
        code = MAIL_ERROR_CODES.get(err.kind, Code.SERVERBUG)
        return Tagged(tag, "NO", err.message or err.kind.value, ResponseCode.of(code))

    def server_bug(self, tag: str, what: str) -> Tagged:
        note_server_bug()
        self.log.error("server bug in %s:\n%s", what, traceback.format_exc())
        return Tagged(tag, "NO", "Internal server error, logged", ResponseCode.of(Code.SERVERBUG))

    # -- dispatch --------------------------------------------------------------------------
    async def execute(self, cmd: Command) -> None:
        """Run one command: state check, handler, pending updates, tagged reply."""
        self.last_activity = time.monotonic()
        spec = spec_for(cmd)
        if self.state not in spec.states:
            result: Tagged = Tagged(
                cmd.tag, "BAD", f"{spec.name} not allowed {_state_text(self.state)}"
            )
        else:
            handler = _handler(spec.name)
            if handler is None:
                result = Tagged(
                    cmd.tag, "NO", f"{spec.name} not available", ResponseCode.of(Code.SERVERBUG)
                )
            else:
                try:
                    result = await handler(self, cmd)
                except CommandError as exc:
                    result = Tagged(cmd.tag, exc.status, exc.text, exc.code)
                except MailError as exc:
                    if exc.kind is MailErrorKind.TEMP:
                        self.log.warning("%s failed: %s", spec.name, exc.message)
                    result = self.mail_error(cmd.tag, exc)
                except (ConnectionError, TimeoutError):
                    raise
                except Exception:
                    result = self.server_bug(cmd.tag, spec.name)
        if result.status == "BAD":
            self.protocol_errors += 1
        view = self.selected
        if view is not None and self.state is State.SELECTED and not self.closing:
            try:
                if view.has_updates():  # checked first: most commands find nothing new
                    allow = spec.breaks_seqs or not spec.uses_seqs
                    pending = await view.updates(allow_expunge=allow)
                    if pending:
                        await self.send(*pending)
            except Exception:
                self.server_bug(cmd.tag, "mailbox updates")
            if view.gone:
                # The folder was deleted (or its UIDs were reset) by someone else.
                view.close()
                self.selected = None
                self.state = State.AUTHENTICATED
                await self.send(
                    Untagged("OK", "Mailbox no longer exists", ResponseCode.of(Code.CLOSED))
                )
        self.conn.queue(result.line(self.utf8))  # a tagged reply streams no body
        await self.conn.flush()

    async def greeting(self) -> None:
        caps = ResponseCode.capability(self.capabilities())
        await self.send(Untagged("OK", f"{self.settings.hostname} mailhub IMAP ready", caps))
        await self.conn.flush()

    async def close(self) -> None:
        """Release the selected mailbox's subscription (connection ended)."""
        if self.selected is not None:
            self.selected.close()
            self.selected = None

    @property
    def implementation(self) -> str:
        return f"mailhub {__version__}"


def _state_text(state: State) -> str:
    return {
        State.NOT_AUTHENTICATED: "before login",
        State.AUTHENTICATED: "without a selected mailbox",
        State.SELECTED: "while a mailbox is selected",
        State.LOGOUT: "after LOGOUT",
    }[state]
