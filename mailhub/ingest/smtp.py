"""aiosmtpd protocol subclasses: the shared ingest base and the inbound SMTP listener.

Why subclass rather than only pass a handler: aiosmtpd's ``smtp_DATA`` answers DATA with one
line from one hook, cancels delivery when the client vanishes, and never resets the idle
timer while a big message streams in. mailhub owns the DATA phase instead
(:meth:`IngestProtocol.smtp_DATA`): it reads the message itself (dot-unstuffing, size and line
limits, CRLF.CRLF only as terminator, RFC 5321 §4.1.1.4 and §4.5.2), runs the delivery in a
task shielded from the connection (a client that drops after the final dot cannot interrupt a
half-done store write), and lets the subclass decide how many replies to send: one for SMTP,
one per accepted recipient for LMTP (RFC 2033 §4.2).

Connection limits per IP (``ctx.limiter``) are applied here too, before the greeting.

Two per-command costs of aiosmtpd are avoided here, because a pipelining MTA pays them on every
message (measured with ``bench/ingest.py``; see docs/ingest.md, Performance):

- replies to MAIL and RCPT are held while the client's next command is already buffered, and
  go out with the following reply in one write (RFC 2920 §3.1 lets the server batch replies;
  any other reply - 354, the DATA replies, QUIT, errors - flushes what is held, so nothing is
  held while the server waits for the client). One socket write instead of three for
  MAIL, RCPT, DATA: each loopback write costs a syscall and wakes the client;
- ``<local@domain>`` in plain dot-atom form is parsed with one regular expression; anything
  else (quoted local parts, address literals, comments, encoded words, the null sender) still
  goes through aiosmtpd's RFC 5322 parser, which costs ~0.3 ms per address (it builds a
  ``typing.Protocol`` class on every call).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope

from mailhub.errors import MailError, MailErrorKind
from mailhub.ingest.delivery import RecipientResult, reply_for
from mailhub.ingest.handler import IngestEnvelope, IngestHandler

log = logging.getLogger("mailhub.ingest")

_SIZE_PARAM = re.compile(r"(?i)(?:^|\s)SIZE=(\d{1,20})(?:\s|$)")
# RFC 5322 dot-atom@dot-atom in angle brackets, ASCII atext only (what nearly every MTA sends).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(rf"<((?:{_ATOM}\.)*{_ATOM}@(?:{_ATOM}\.)*{_ATOM})>")
_mail_log = logging.getLogger("mail.log")  # aiosmtpd's logger, for its "<<" debug lines
# Reset the idle timer after this much DATA, so a large message on a slow link is not cut off
# by a timeout meant for silent clients.
_TIMER_RESET_BYTES = 256 * 1024

# Deliveries being written (kept referenced even after their client went away). The server
# also registers them in ``ServerContext.connections`` so shutdown waits for them, while idle
# MTA connections (Postfix caches them) do not hold shutdown up.
INFLIGHT: set[asyncio.Task[list[RecipientResult]]] = set()


class IngestProtocol(SMTP):
    """What LMTP and inbound SMTP share: limits, enhanced codes, and the owned DATA phase."""

    # The StreamReader's buffer limit (aiosmtpd names it after lines). Command lines are still
    # capped at 512 octets by aiosmtpd; DATA is read in chunks of up to this size, and message
    # lines may exceed RFC 5321's 1000 octets (real mail does; refusing it would bounce it).
    line_length_limit = 65536
    protocol_name = "ESMTP"

    def __init__(
        self,
        handler: IngestHandler,
        *,
        acquire: Callable[[str], bool] | None = None,
        release: Callable[[str], None] | None = None,
        inflight: set[asyncio.Task[Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            handler,
            enable_SMTPUTF8=True,
            decode_data=False,
            ident="mailhub",
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            **kwargs,
        )
        self.ingest = handler
        self._acquire = acquire
        self._inflight = inflight
        self._release = release
        self._limited_ip: str | None = None
        self._refused = False
        self._may_hold = False  # inside MAIL/RCPT: the reply may wait for the next one
        self._held: list[bytes] = []

    # -- connection life cycle ----------------------------------------------------------------

    def _create_envelope(self) -> Envelope:
        return IngestEnvelope()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None and self.transport is None
        if first and self._acquire is not None:
            peer = transport.get_extra_info("peername")
            ip = peer[0] if isinstance(peer, tuple) and peer else None
            if ip is not None:
                if self._acquire(ip):
                    self._limited_ip = ip
                else:
                    self._refused = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._limited_ip is not None and self._release is not None:
            self._release(self._limited_ip)
            self._limited_ip = None
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._refused:
            assert self.session is not None and self.transport is not None
            log.warning("refusing %r: too many connections from this address", self.session.peer)
            await self.push("421 4.7.0 Too many connections from your address, try again later")
            self.transport.close()
            return
        await super()._handle_client()

    # -- replies ------------------------------------------------------------------------------

    async def push(self, status: str | bytes) -> None:
        """Send one reply, or hold a MAIL/RCPT reply while the next command is already here.

        Held replies go out in front of the next reply that is not held, in one write.
        """
        if isinstance(status, str):
            status = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
        data = status + b"\r\n"
        if _mail_log.isEnabledFor(logging.DEBUG) and self.session is not None:
            _mail_log.debug("%r << %r", self.session.peer, status)
        if self._may_hold and self._command_waiting():
            self._held.append(data)
            return
        if self._held:
            self._held.append(data)
            data = b"".join(self._held)
            self._held.clear()
        self._writer.write(data)
        await self._writer.drain()

    def _command_waiting(self) -> bool:
        """Whether a whole command line is already buffered (so reading it cannot block)."""
        buffered = getattr(self._reader, "_buffer", None)  # asyncio.StreamReader's buffer
        return isinstance(buffered, bytearray) and b"\n" in buffered

    # -- commands -----------------------------------------------------------------------------

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parser, with a fast path for a plain ``<dot-atom@dot-atom>``.

        Same results as aiosmtpd's (a property test compares them); "=?" is left to the full
        parser, which decodes RFC 2047 encoded words even here.
        """
        match = _SIMPLE_PATH.match(arg)
        rest = "" if match is None else arg[match.end() :].lstrip(" \t")  # the parser's CFWS
        if match is None or "=?" in match.group(1) or rest.startswith("("):
            parsed: tuple[str | None, str | None] = super()._getaddr(arg)
            return parsed
        address = match.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    async def smtp_MAIL(self, arg: str | None) -> None:
        """RFC 1870 §6: refuse a declared SIZE above the limit with 552 5.3.4 before any data."""
        if arg and self.data_size_limit:
            match = _SIZE_PARAM.search(arg)
            if match and int(match.group(1)) > self.data_size_limit:
                await self.push("552 5.3.4 Message size exceeds fixed maximum message size")
                return
        self._may_hold = True
        try:
            await super().smtp_MAIL(arg)
        finally:
            self._may_hold = False

    async def smtp_RCPT(self, arg: str | None) -> None:
        """RFC 5321 §4.1.1.3 (aiosmtpd's), with the reply held while more commands wait."""
        self._may_hold = True
        try:
            await super().smtp_RCPT(arg)
        finally:
            self._may_hold = False

    async def smtp_DATA(self, arg: str) -> None:
        """RFC 5321 §4.1.1.4 DATA, with delivery through the shared agent."""
        if await self.check_helo_needed():
            return
        envelope, session = self.envelope, self.session
        assert isinstance(envelope, IngestEnvelope) and session is not None
        if not envelope.mail_from:
            await self.push("503 5.5.1 Error: need MAIL command")
            return
        if not envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content, error = await self._read_data()
        rcpts = list(envelope.rcpt_tos)
        if content is None:
            self.envelope = self._create_envelope()  # aiosmtpd's post-DATA reset
            await self._reply_data_error(error, rcpts)
            return
        task = asyncio.get_running_loop().create_task(
            self.ingest.deliver(session, envelope, content, self.protocol_name)
        )
        for tracker in (INFLIGHT, self._inflight):
            if tracker is not None:
                tracker.add(task)
                task.add_done_callback(tracker.discard)
        # shield: if the client disconnects now, the store write still completes (the MTA
        # will retry and may duplicate, but nothing is half-written or lost).
        try:
            results = await asyncio.shield(task)
        except Exception:  # a bug below: still one (temporary) reply per recipient
            log.exception("delivery of %s failed", envelope.queue_id)
            failure = MailError(MailErrorKind.TEMP, "internal error")
            results = [RecipientResult(r, False, failure, None, None) for r in rcpts]
        self.envelope = self._create_envelope()  # aiosmtpd's post-DATA reset
        await self._reply_data(results, envelope)

    async def _read_data(self) -> tuple[bytes | None, str]:
        return await read_data(self._reader, self.data_size_limit, self._reset_timeout)

    async def _reply_data_error(self, error: str, rcpts: list[str]) -> None:
        await self.push(error)

    async def _reply_data(self, results: list[RecipientResult], envelope: IngestEnvelope) -> None:
        """SMTP has one reply for all recipients (RFC 5321 §4.2).

        When only some copies were stored, the reply is 451: the sender retries, and the copies
        already stored may arrive twice. Answering 250 would lose the failed copies.
        """
        settings = self.ingest.settings
        failed = [r for r in results if not r.ok and r.error is not None]
        if not failed:
            await self.push(f"250 2.0.0 Ok: queued as {envelope.queue_id}")
        elif len(failed) < len(results):
            await self.push("451 4.3.0 Not every recipient could be served, please try again")
        else:
            replies = [reply_for(r.error, settings) for r in failed if r.error is not None]
            temp = [rep for rep in replies if rep.startswith("4")]
            await self.push((temp or replies)[0])


class InboundSMTP(IngestProtocol):
    """The inbound SMTP listener (RFC 5321) for the household's own domains; never a relay."""

    protocol_name = "ESMTP"

    def received_protocol(self) -> str:
        """RFC 3848 / RFC 6531 §3.7.3 "with" keyword for the Received header."""
        envelope = self.envelope
        utf8 = bool(getattr(envelope, "smtp_utf8", False))
        tls = self._tls_protocol is not None
        return ("UTF8SMTP" if utf8 else "ESMTP") + ("S" if tls else "")

    async def smtp_DATA(self, arg: str) -> None:
        """RFC 5321 §4.1.1.4, with the Received "with" keyword of this session."""
        self.protocol_name = self.received_protocol()
        await super().smtp_DATA(arg)


_TERMINATOR = b"\r\n.\r\n"


def _partial_terminator(tail: bytes) -> int:
    """How many bytes at the end of ``tail`` could begin the CRLF "." CRLF terminator."""
    for k in (4, 3, 2, 1):
        if tail.endswith(_TERMINATOR[:k]):
            return k
    return 0


async def read_data(
    reader: asyncio.StreamReader,
    limit: int | None,
    keepalive: Callable[[], None] | None = None,
) -> tuple[bytes | None, str]:
    """Read DATA up to CRLF.CRLF (RFC 5321 §4.1.1.4), undoing dot-stuffing (§4.5.2).

    Returns ``(message, "")`` or ``(None, error reply)``. Only CRLF "." CRLF ends the data (a
    bare LF is data: no SMTP smuggling). After an error the rest of the data is still read and
    discarded, so the reply comes at the end (§4.2.5) and the connection stays usable.
    ``keepalive`` is called every 256 KiB so the idle timer does not cut off a slow upload.

    Why not line by line: one ``readuntil`` per line costs ~0.5 ms per 10 KB message. Here the
    reader searches for the whole terminator, so a typical message is one search. The only
    catch is a terminator whose CRLF was already consumed (the empty message, whose CRLF ends
    the DATA command line, or after a buffer-sized chunk): while the consumed data ends with a
    possible start of the terminator, exactly the bytes that would complete it are read - never
    more than the stream must still hold, so pipelined commands after the dot stay unread.
    Lines may be of any length (Dovecot's LMTP accepts them too); the size limit bounds memory.
    """
    buf = bytearray()
    tail = b"\r\n"  # the last bytes consumed; starts as the DATA command line's CRLF
    size = 0
    since_reset = 0
    too_big = False
    while True:
        try:
            partial = _partial_terminator(tail)
            if partial:
                piece = await reader.readexactly(len(_TERMINATOR) - partial)
            else:
                try:
                    piece = await reader.readuntil(_TERMINATOR)
                except asyncio.LimitOverrunError as exc:
                    piece = await reader.read(exc.consumed)
        except asyncio.IncompleteReadError as exc:
            raise ConnectionResetError("connection closed during DATA") from exc
        size += len(piece)
        since_reset += len(piece)
        if since_reset >= _TIMER_RESET_BYTES and keepalive is not None:
            keepalive()
            since_reset = 0
        tail = (tail + piece)[-5:] if len(piece) < 5 else piece[-5:]
        done = tail == _TERMINATOR
        if not too_big:
            buf += piece
            if limit and size - (3 if done else 0) > limit:
                too_big = True
                buf.clear()
        if done:
            break
    if too_big:
        return None, "552 5.3.4 Message too big for system"
    # With the virtual leading CRLF, the data ends in CRLF "." CRLF: drop the final ".\r\n"
    # (its CRLF ends the last line), then remove the first dot of every line (§4.5.2).
    del buf[-3:]
    content = (b"\r\n" + bytes(buf)).replace(b"\r\n.", b"\r\n")[2:]
    return content, ""
