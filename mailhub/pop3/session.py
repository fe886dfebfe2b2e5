"""One POP3 session: the AUTHORIZATION / TRANSACTION / UPDATE state machine (RFC 1939 §3).

Socket-free: ``handle_line`` takes a received line and returns a :class:`Reply` whose body (a
RETR or TOP) is an async iterator of already dot-stuffed chunks, so ``server.py`` streams large
messages without holding them. Which command is legal in which state lives in one table
(``_TABLE``); handlers never re-check the state. Store failures become replies through one
table (``ERROR_REPLIES``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mailhub import metrics
from mailhub.auth import sasl
from mailhub.auth.directory import AccountDirectory
from mailhub.auth.model import AccountRecord, Pop3DeleteAction, Pop3Scope
from mailhub.errors import MailError, MailErrorKind
from mailhub.pop3 import proto
from mailhub.pop3.maildrop import Maildrop, select_messages, uidl_of
from mailhub.store.api import Mailstore, MessageSource
from mailhub.store.model import INBOX, QuotaLimits

log = logging.getLogger(__name__)

# Messages up to this size are read in one call (one thread hop); larger ones are streamed.
_WHOLE_READ_LIMIT = 1 << 20
_STREAM_CHUNK = 1 << 18
MAX_FAILED_LOGINS = 3
RECENT_PREFIX = "recent:"

# Server bugs seen (an exception a handler did not expect); tests assert it stays 0.
SERVER_BUGS = 0


def note_server_bug() -> None:
    """Count an unexpected exception (architecture rule 7: tests require zero)."""
    global SERVER_BUGS
    SERVER_BUGS += 1


class State(enum.Enum):
    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    UPDATE = "update"


# The one MailErrorKind -> POP3 reply table (RFC 2449 §8, RFC 3206 codes).
ERROR_REPLIES: dict[MailErrorKind, tuple[str | None, str]] = {
    MailErrorKind.TEMP: (proto.CODE_SYS_TEMP, "Temporary server failure, try again later"),
    MailErrorKind.NOTPOSSIBLE: (proto.CODE_SYS_PERM, "Not possible"),
    MailErrorKind.PERM: (proto.CODE_SYS_PERM, "Not allowed"),
    MailErrorKind.NOQUOTA: (proto.CODE_SYS_TEMP, "Quota exceeded"),
    MailErrorKind.NOTFOUND: (None, "No such message"),
    MailErrorKind.EXISTS: (proto.CODE_SYS_PERM, "Already exists"),
    MailErrorKind.EXPUNGED: (None, "Message was deleted by another session"),
    MailErrorKind.INUSE: (proto.CODE_IN_USE, "Mailbox is in use"),
    MailErrorKind.LIMIT: (proto.CODE_SYS_TEMP, "Limit reached"),
    MailErrorKind.TOOBIG: (proto.CODE_SYS_PERM, "Message too big"),
    MailErrorKind.BADNAME: (proto.CODE_SYS_PERM, "Invalid name"),
}


def error_reply(exc: MailError, prefix: str = "") -> bytes:
    code, text = ERROR_REPLIES[exc.kind]
    return proto.err(f"{prefix}{text}", code)


# A multi-line body: the pieces of a small message, or a stream of a large one.
Body = list[bytes | memoryview] | AsyncIterator[bytes]


@dataclass(slots=True)
class Reply:
    """What to send: a status line, maybe a body, and what the connection does next."""

    head: bytes
    body: Body | None = None
    close: bool = False
    starttls: bool = False


class MaildropLocks:
    """RFC 1939 §8 exclusive maildrop access between POP3 sessions of one server process.

    In-process is enough: one server process serves every POP3 connection. IMAP and delivery
    never take this lock (they are not locked out). It also remembers each account's last login
    for LOGIN-DELAY (RFC 2449 §6.5).
    """

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._last_login: dict[str, float] = {}

    def acquire(self, address: str) -> bool:
        key = address.casefold()
        if key in self._held:
            return False
        self._held.add(key)
        return True

    def release(self, address: str) -> None:
        self._held.discard(address.casefold())

    def too_soon(self, address: str, delay: int, now: float) -> bool:
        last = self._last_login.get(address.casefold())
        return delay > 0 and last is not None and now - last < delay

    def logged_in(self, address: str, now: float) -> None:
        self._last_login[address.casefold()] = now


@dataclass
class SessionConfig:
    """Per-connection facts and settings the session needs (filled in by ``server.py``)."""

    secure: bool  # the connection is TLS (implicit, or after STLS)
    tls_available: bool  # STLS can be offered (cleartext listener with a certificate)
    cleartext_auth_ok: bool  # loopback peer or settings.allow_cleartext_auth
    failed_login_delay: float = 2.0
    login_delay: int = 0  # seconds between logins of one account; 0 = not enforced
    max_errors: int = 20
    implementation: str = "mailhub"
    peer: str = "?"


Handler = Callable[["Pop3Session", Any], Awaitable[Reply]]
_AUTH = frozenset({State.AUTHORIZATION})
_TRANS = frozenset({State.TRANSACTION})
_BOTH = _AUTH | _TRANS


class Pop3Session:
    """The protocol state of one connection. ``close`` must be called when it ends."""

    def __init__(
        self,
        store: Mailstore,
        directory: AccountDirectory,
        locks: MaildropLocks,
        config: SessionConfig,
    ) -> None:
        self.store = store
        self.directory = directory
        self.locks = locks
        self.config = config
        self.state = State.AUTHORIZATION
        self.user: str | None = None  # from USER, waiting for PASS
        self.account: AccountRecord | None = None
        self.maildrop: Maildrop | None = None
        self.utf8 = False
        self._sasl_pending: sasl.Mechanism | None = None
        self._errors = 0
        self._failed_logins = 0
        self._locked: str | None = None

    # -- entry points -------------------------------------------------------------------------

    async def handle_line(self, line: bytes) -> Reply:
        """Answer one received line (a command, or a SASL response after ``+``)."""
        if self._sasl_pending is not None:
            mech, self._sasl_pending = self._sasl_pending, None
            return await self._sasl_response(mech, proto.strip_eol(line))
        parsed = proto.parse_command(line)
        if isinstance(parsed, proto.ParseError):
            return self._bad(parsed.text, parsed.code)
        return await self.execute(parsed)

    async def execute(self, cmd: proto.Command) -> Reply:
        """Dispatch a typed command through the state table."""
        states, handler = _TABLE[type(cmd)]
        if self.state not in states:
            return self._bad("Command not valid in this state")
        started = time.monotonic()
        try:
            return await handler(self, cmd)
        except MailError as exc:
            log.warning("pop3 %s: %s failed: %s", self.config.peer, type(cmd).__name__, exc)
            return Reply(error_reply(exc))
        except Exception:
            note_server_bug()
            log.exception("pop3 %s: internal error in %s", self.config.peer, type(cmd).__name__)
            return Reply(proto.err("Internal server error", proto.CODE_SYS_TEMP))
        finally:
            # Until the reply is ready (a RETR body then streams): the server's own latency.
            metrics.command("pop3", type(cmd).__name__, time.monotonic() - started)

    def tls_started(self) -> None:
        """After STLS (RFC 2595 §4): the connection is secure; forget pre-TLS state."""
        self.config.secure = True
        self.config.tls_available = False
        self.user = None

    async def close(self) -> None:
        """The connection ended (QUIT or not): release the maildrop lock, change nothing else."""
        if self._locked is not None:
            self.locks.release(self._locked)
            self._locked = None

    def line_too_long(self) -> Reply:
        """The answer to a line over the length limit (counts as a protocol error)."""
        self._sasl_pending = None  # an over-long SASL response ends the exchange
        return self._bad("Line too long")

    def idle_timeout_applies(self) -> bool:
        """True once logged in (the idle timeout), False before (the pre-login timeout)."""
        return self.state is State.TRANSACTION

    # -- helpers ------------------------------------------------------------------------------

    def _bad(self, text: str, code: str | None = None) -> Reply:
        self._errors += 1
        if self._errors >= self.config.max_errors:
            return Reply(proto.err("Too many invalid commands, closing connection"), close=True)
        return Reply(proto.err(text, code))

    def _auth_allowed(self) -> bool:
        return self.config.secure or self.config.cleartext_auth_ok

    def _plaintext_refused(self) -> Reply:
        return Reply(
            proto.err(
                "Plaintext authentication disallowed on non-secure connections; use STLS",
                proto.CODE_AUTH,
            )
        )

    def _stat_text(self) -> str:
        assert self.maildrop is not None
        count, size = self.maildrop.stat()
        return f"{count} messages ({size} octets)"

    def capabilities(self) -> list[str]:
        """RFC 2449 §5 capability list for the current state."""
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.account is not None:
            expire = "0" if self.account.pop3.scope is Pop3Scope.NOT_RETRIEVED else "NEVER"
            caps.append(f"EXPIRE {expire}")
        else:
            # RFC 2449 §6.7: before login, the lowest value any user has, tagged USER.
            strict = any(r.pop3.scope is Pop3Scope.NOT_RETRIEVED for r in self.directory.list())
            caps.append("EXPIRE 0 USER" if strict else "EXPIRE NEVER")
        if self.config.login_delay > 0:
            caps.append(f"LOGIN-DELAY {self.config.login_delay}")
        caps.append(f"IMPLEMENTATION {self.config.implementation}")
        caps.append("UTF8 USER")
        if self.state is State.AUTHORIZATION:
            if self._auth_allowed():
                caps += ["USER", "SASL " + " ".join(sasl.MECHANISMS)]
            if self.config.tls_available and not self.config.secure:
                caps.append("STLS")
        return caps

    # -- AUTHORIZATION (RFC 1939 §4 and §7, RFC 5034, RFC 2595, RFC 6856) ----------------------

    async def _capa(self, cmd: proto.Capa) -> Reply:
        """CAPA (RFC 2449 §5): allowed in every state."""
        lines = [c.encode() for c in self.capabilities()]
        return Reply(proto.ok("Capability list follows") + proto.multiline(lines))

    async def _user(self, cmd: proto.User) -> Reply:
        """USER name (RFC 1939 §7); refused on cleartext unless allowed (RFC 2595 §2)."""
        if not self._auth_allowed():
            return self._plaintext_refused()
        self.user = cmd.name
        return Reply(proto.ok("Send your password"))

    async def _pass(self, cmd: proto.Pass) -> Reply:
        """PASS string (RFC 1939 §7): only right after USER."""
        if self.user is None:
            return self._bad("No user name given (send USER first)")
        user, self.user = self.user, None
        return await self._login(user, cmd.password)

    async def _auth(self, cmd: proto.Auth) -> Reply:
        """AUTH mechanism [initial-response] (RFC 5034 §4): PLAIN (RFC 4616) and LOGIN.

        A bare AUTH lists the mechanisms, as some pre-CAPA clients expect.
        """
        if cmd.mechanism is None:
            names = [m.encode() for m in sasl.MECHANISMS]
            return Reply(proto.ok("Mechanisms follow") + proto.multiline(names))
        if not self._auth_allowed():
            return self._plaintext_refused()
        initial = None if cmd.initial_response is None else cmd.initial_response.encode()
        try:
            mech = sasl.new_mechanism(cmd.mechanism)
            step = mech.start(initial)
        except sasl.SaslError as exc:
            return await self._sasl_failed(exc)
        return await self._sasl_step(mech, step)

    async def _sasl_step(
        self, mech: sasl.Mechanism, step: sasl.Challenge | sasl.Credentials
    ) -> Reply:
        if isinstance(step, sasl.Challenge):
            self._sasl_pending = mech
            return Reply(b"+ " + step.data + proto.CRLF)
        return await self._login(step.username, step.password)

    async def _sasl_response(self, mech: sasl.Mechanism, line: bytes) -> Reply:
        """A client line inside an AUTH exchange (RFC 5034 §4): base64, or ``*`` to cancel."""
        try:
            step = mech.respond(line)
        except sasl.SaslError as exc:
            return await self._sasl_failed(exc)
        return await self._sasl_step(mech, step)

    async def _sasl_failed(self, exc: sasl.SaslError) -> Reply:
        kind = exc.kind
        if kind is sasl.SaslErrorKind.CANCELLED:
            return Reply(proto.err("Authentication aborted"))
        if kind is sasl.SaslErrorKind.UNSUPPORTED:
            return Reply(proto.err("Unsupported authentication mechanism"))
        if kind is sasl.SaslErrorKind.AUTHZID:
            return await self._failed("?", str(exc))
        return self._bad(f"Invalid SASL response: {exc}", proto.CODE_AUTH)

    async def _stls(self, cmd: proto.Stls) -> Reply:
        """STLS (RFC 2595 §4): only on a cleartext connection that has a certificate."""
        if self.config.secure:
            return self._bad("Already using TLS")
        if not self.config.tls_available:
            return self._bad("TLS is not available")
        return Reply(proto.ok("Begin TLS negotiation now"), starttls=True)

    async def _utf8(self, cmd: proto.Utf8) -> Reply:
        """UTF8 (RFC 6856 §2): user names, passwords and messages in UTF-8 from now on.

        Messages are served unchanged either way (we do not downgrade 8-bit headers).
        """
        self.utf8 = True
        return Reply(proto.ok("UTF8 enabled"))

    async def _failed(self, user: str, why: str) -> Reply:
        log.info("pop3 %s: login failed for %r: %s", self.config.peer, user, why)
        metrics.login("pop3", False)
        self._failed_logins += 1
        if self.config.failed_login_delay > 0:
            await asyncio.sleep(self.config.failed_login_delay)
        reply = proto.err("Authentication failed", proto.CODE_AUTH)
        return Reply(reply, close=self._failed_logins >= MAX_FAILED_LOGINS)

    async def _login(self, username: str, password: str) -> Reply:
        """Check credentials, take the maildrop lock and the snapshot (RFC 1939 §4)."""
        recent_mode = username.lower().startswith(RECENT_PREFIX)
        if recent_mode:
            username = username[len(RECENT_PREFIX) :]
        rec = await self.directory.authenticate(username, password)
        if rec is None:
            return await self._failed(username, "bad credentials")
        if not rec.pop3.enabled:
            log.info("pop3 %s: %s has POP3 disabled", self.config.peer, rec.address)
            return Reply(proto.err("POP3 is disabled for this account", proto.CODE_SYS_PERM))
        now = time.time()
        if self.locks.too_soon(rec.address, self.config.login_delay, now):
            return Reply(
                proto.err("Logins are too frequent, wait and retry", proto.CODE_LOGIN_DELAY),
                close=True,
            )
        if not self.locks.acquire(rec.address):
            log.info("pop3 %s: %s maildrop is locked", self.config.peer, rec.address)
            return Reply(proto.err("Mailbox is locked by another POP3 session", proto.CODE_IN_USE))
        self._locked = rec.address
        try:
            account = await self.store.open_account(
                rec.address, QuotaLimits(rec.quota_bytes, rec.quota_messages)
            )
            mailbox = await account.open_mailbox(INBOX)
            snapshot = await mailbox.snapshot()
            needs_retrieved = rec.pop3.scope is Pop3Scope.NOT_RETRIEVED and not recent_mode
            retrieved = await mailbox.retrieved_uids() if needs_retrieved else frozenset()
        except BaseException:
            await self.close()
            raise
        messages = select_messages(snapshot, rec.pop3, retrieved, recent_mode=recent_mode)
        self.maildrop = Maildrop(account, mailbox, snapshot.uidvalidity, messages, rec.pop3)
        self.account = rec
        self.state = State.TRANSACTION
        self.locks.logged_in(rec.address, now)
        metrics.login("pop3", True)
        log.info(
            "pop3 %s: %s logged in%s, %d messages",
            self.config.peer,
            rec.address,
            " (recent mode)" if recent_mode else "",
            len(messages),
        )
        return Reply(proto.ok(f"Logged in, {self._stat_text()}"))

    # -- TRANSACTION (RFC 1939 §5 and §7) -----------------------------------------------------

    def _drop(self) -> Maildrop:
        assert self.maildrop is not None
        return self.maildrop

    async def _stat(self, cmd: proto.Stat) -> Reply:
        """STAT (RFC 1939 §5): ``+OK count octets``."""
        count, size = self._drop().stat()
        return Reply(proto.ok(f"{count} {size}"))

    async def _list(self, cmd: proto.List) -> Reply:
        """LIST [msg] (RFC 1939 §5): CRLF sizes of messages not marked deleted."""
        drop = self._drop()
        if cmd.msg is not None:
            found = drop.lookup(cmd.msg)
            if isinstance(found, str):
                return Reply(proto.err(found))
            return Reply(proto.ok(f"{cmd.msg} {found.size}"))
        # Lines start with a digit: nothing to byte-stuff.
        body: Body = [drop.list_body(), proto.TERMINATOR]
        return Reply(proto.ok(self._stat_text()), body)

    async def _uidl(self, cmd: proto.Uidl) -> Reply:
        """UIDL [msg] (RFC 1939 §7): unique ids derived from (UID, UIDVALIDITY)."""
        drop = self._drop()
        v = drop.uidvalidity
        if cmd.msg is not None:
            found = drop.lookup(cmd.msg)
            if isinstance(found, str):
                return Reply(proto.err(found))
            return Reply(proto.ok(f"{cmd.msg} {uidl_of(found.uid, v)}"))
        body: Body = [drop.uidl_body(), proto.TERMINATOR]
        return Reply(proto.ok("Unique-ID listing follows"), body)

    async def _retr(self, cmd: proto.Retr) -> Reply:
        """RETR msg (RFC 1939 §5): the whole message, dot-stuffed and streamed.

        A message IMAP expunged meanwhile gets ``-ERR`` and the session goes on. It counts as
        retrieved (for ``\\Seen`` and "downloaded") only at a clean QUIT.
        """
        drop = self._drop()
        found = drop.lookup(cmd.msg)
        if isinstance(found, str):
            return Reply(proto.err(found))
        try:
            source = await drop.mailbox.open_message(found.uid)
        except MailError as exc:
            return Reply(error_reply(exc, f"Message {cmd.msg}: "))
        body = await _body(source, None)
        drop.retrieved.add(found.uid)
        return Reply(proto.ok(f"{found.size} octets"), body)

    async def _top(self, cmd: proto.Top) -> Reply:
        """TOP msg n (RFC 1939 §7): header, blank line and the first n body lines."""
        drop = self._drop()
        found = drop.lookup(cmd.msg)
        if isinstance(found, str):
            return Reply(proto.err(found))
        try:
            source = await drop.mailbox.open_message(found.uid)
        except MailError as exc:
            return Reply(error_reply(exc, f"Message {cmd.msg}: "))
        body = await _body(source, proto.TopFilter(cmd.lines))
        return Reply(proto.ok("Top of message follows"), body)

    async def _dele(self, cmd: proto.Dele) -> Reply:
        """DELE msg (RFC 1939 §5): only a mark; the store changes at QUIT."""
        drop = self._drop()
        found = drop.lookup(cmd.msg)
        if isinstance(found, str):
            return Reply(proto.err(found))
        drop.mark_deleted(cmd.msg)
        return Reply(proto.ok(f"Message {cmd.msg} deleted"))

    async def _noop(self, cmd: proto.Noop) -> Reply:
        """NOOP (RFC 1939 §5)."""
        return Reply(proto.ok())

    async def _rset(self, cmd: proto.Rset) -> Reply:
        """RSET (RFC 1939 §5): unmark every message marked as deleted."""
        self._drop().reset()
        return Reply(proto.ok(f"Maildrop has {self._stat_text()}"))

    async def _quit(self, cmd: proto.Quit) -> Reply:
        """QUIT (RFC 1939 §5 and §6): in TRANSACTION, enter UPDATE and apply the policy."""
        if self.state is State.AUTHORIZATION:
            return Reply(proto.ok("Bye"), close=True)
        drop = self._drop()
        self.state = State.UPDATE
        address = self.account.address if self.account else "?"
        try:
            await drop.commit()
        except MailError as exc:
            log.warning("pop3 %s: UPDATE for %s failed: %s", self.config.peer, address, exc)
            return Reply(error_reply(exc, "Some deleted messages not removed: "), close=True)
        finally:
            await self.close()
        count, _ = drop.stat()
        if drop.policy.on_delete is Pop3DeleteAction.KEEP:
            count += len(drop.deleted)  # "deleted" for this client, still in INBOX
        log.info(
            "pop3 %s: %s quit: %d retrieved, %d deleted (%s), %d left",
            self.config.peer,
            address,
            len(drop.retrieved),
            len(drop.deleted),
            drop.policy.on_delete.value,
            count,
        )
        return Reply(proto.ok(f"Logging out, {count} messages left"), close=True)


async def _body(source: MessageSource, top: proto.TopFilter | None) -> Body:
    """The message, stuffed and terminated: in memory when small, else streamed."""
    if source.size > _WHOLE_READ_LIMIT:
        return _stream(source, top)
    data = await source.read()
    if top is not None:
        data = top.feed(data)
    stuffer = proto.DotStuffer()
    parts = stuffer.feed_parts(data)
    parts.append(stuffer.finish())
    return parts


async def _stream(source: MessageSource, top: proto.TopFilter | None) -> AsyncIterator[bytes]:
    """A large message in pieces, so it is never held whole in memory."""
    stuffer = proto.DotStuffer()
    async for chunk in source.chunks(_STREAM_CHUNK):
        if top is not None:
            chunk = top.feed(chunk)
        yield stuffer.feed(chunk)
        if top is not None and top.done:
            break
    yield stuffer.finish()


_TABLE: dict[type, tuple[frozenset[State], Handler]] = {
    proto.Capa: (_BOTH, Pop3Session._capa),
    proto.Quit: (_BOTH, Pop3Session._quit),
    proto.User: (_AUTH, Pop3Session._user),
    proto.Pass: (_AUTH, Pop3Session._pass),
    proto.Auth: (_AUTH, Pop3Session._auth),
    proto.Stls: (_AUTH, Pop3Session._stls),
    proto.Utf8: (_BOTH, Pop3Session._utf8),
    proto.Stat: (_TRANS, Pop3Session._stat),
    proto.List: (_TRANS, Pop3Session._list),
    proto.Uidl: (_TRANS, Pop3Session._uidl),
    proto.Retr: (_TRANS, Pop3Session._retr),
    proto.Top: (_TRANS, Pop3Session._top),
    proto.Dele: (_TRANS, Pop3Session._dele),
    proto.Noop: (_TRANS, Pop3Session._noop),
    proto.Rset: (_TRANS, Pop3Session._rset),
}
