"""POP3 listeners: asyncio streams glue around :class:`~mailhub.pop3.session.Pop3Session`.

Two listeners on ``settings.host``: ``pop3.port`` (cleartext, offering STLS per RFC 2595) and
``pop3.tls_port`` (implicit TLS, the 995 role). Both use ``ctx.tls`` (the provider IMAP uses):
STLS asks it for the current context per upgrade, and the implicit-TLS listener switches to the
current context in its SNI callback, so a certificate reload applies to the next connection.
This module owns every socket concern: the per-IP limit, TLS, timeouts (pre-login, then
idle), output batching for pipelined commands (RFC 2449 §6.6), and the rule that a dropped
connection changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
from functools import partial

from mailhub import __version__, metrics
from mailhub.app import ServerContext
from mailhub.errors import MailError
from mailhub.pop3 import proto
from mailhub.pop3.session import (
    MaildropLocks,
    Pop3Session,
    Reply,
    SessionConfig,
    note_server_bug,
)

log = logging.getLogger(__name__)

_READ_SIZE = 65536
# Hand output to the transport once this much is queued (bounds memory on a big RETR).
_FLUSH_AT = 256 * 1024
# Only wait for the client when this much is still unsent (asyncio's default high-water mark).
_DRAIN_ABOVE = 64 * 1024


def _is_loopback(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def _listener_context(ctx: ServerContext) -> ssl.SSLContext | None:
    """The implicit-TLS listener's context, switching each handshake to the current one.

    The listener must do the handshake itself (a client's ClientHello arrives with the
    connection, before a handler could call ``start_tls``); the SNI callback, which OpenSSL
    runs for every ClientHello, swaps in ``ctx.tls.server_context()`` so a reloaded
    certificate applies to the next connection.
    """
    first = ctx.tls.server_context()
    if first is None:
        return None

    def use_current(sslobj: ssl.SSLObject, name: str | None, current: ssl.SSLContext) -> None:
        latest = ctx.tls.server_context()
        if latest is not None and latest is not current:
            sslobj.context = latest

    first.sni_callback = use_current
    return first


def _no_delay(writer: asyncio.StreamWriter) -> None:
    """Send replies at once (TCP_NODELAY).

    Without it, the last small segment of a reply waits for the client's delayed ACK
    (Nagle's algorithm): 40 ms stalls on LIST and pipelined RETR. asyncio's own transports
    set this, uvloop's do not.
    """
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def start(ctx: ServerContext) -> list[asyncio.AbstractServer]:
    """Bind the POP3 listeners whose port is not 0 (the TLS one only with a certificate)."""
    settings = ctx.settings
    locks = MaildropLocks()
    servers: list[asyncio.AbstractServer] = []
    have_tls = ctx.tls.server_context() is not None
    listeners = [(settings.pop3.port, False)]
    if have_tls:
        listeners.append((settings.pop3.tls_port, True))
    elif settings.pop3.tls_port:
        log.warning("POP3S port %d not opened: no TLS certificate", settings.pop3.tls_port)
    for port, implicit in listeners:
        if not port:
            continue
        handler = partial(_handle, ctx, locks, implicit)
        tls = _listener_context(ctx) if implicit else None
        server = await asyncio.start_server(
            handler,
            settings.host,
            port,
            limit=_READ_SIZE,
            ssl=tls,
            ssl_handshake_timeout=settings.limits.prelogin_timeout if tls else None,
        )
        bound = server.sockets[0].getsockname()[1] if server.sockets else port
        log.info(
            "POP3%s listening on %s:%d%s",
            "S" if implicit else "",
            settings.host,
            bound,
            "" if implicit or not have_tls else " (STLS offered)",
        )
        servers.append(server)
    return servers


async def _handle(
    ctx: ServerContext,
    locks: MaildropLocks,
    implicit_tls: bool,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    _no_delay(writer)
    peername = writer.get_extra_info("peername")
    ip = str(peername[0]) if peername else "?"
    peer = f"{ip}:{peername[1]}" if peername else "?"
    if not ctx.limiter.try_acquire(ip):
        try:
            writer.write(proto.err("Too many connections from your address", proto.CODE_SYS_TEMP))
            await asyncio.wait_for(writer.drain(), 5)
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()
        return
    limits = ctx.settings.limits
    config = SessionConfig(
        secure=False,
        tls_available=False,
        cleartext_auth_ok=_is_loopback(ip) or ctx.settings.allow_cleartext_auth,
        failed_login_delay=limits.failed_login_delay,
        login_delay=ctx.settings.pop3.login_delay,
        max_errors=limits.max_protocol_errors,
        implementation=f"mailhub {__version__}",
        peer=peer,
    )
    session = Pop3Session(ctx.store, ctx.directory, locks, config)
    metrics.connection("pop3s" if implicit_tls else "pop3")
    try:
        with ctx.track_connection():
            await _serve(ctx, session, implicit_tls, reader, writer)
    except (ConnectionError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError) as exc:
        log.debug("pop3 %s: connection ended: %s", peer, exc)
    except MailError as exc:
        # Only possible mid-RETR (the file vanished after +OK): the body cannot be finished.
        log.warning("pop3 %s: closing mid-response: %s", peer, exc)
    except Exception:
        note_server_bug()
        log.exception("pop3 %s: unexpected error, closing connection", peer)
    finally:
        metrics.connection("pop3s" if implicit_tls else "pop3", -1)
        await session.close()
        ctx.limiter.release(ip)
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 5)


async def _serve(
    ctx: ServerContext,
    session: Pop3Session,
    implicit_tls: bool,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """Mark implicit-TLS connections secure, offer STLS on cleartext ones, run the loop."""
    if implicit_tls:
        session.config.secure = True  # the listener already did the handshake
    else:
        session.config.tls_available = ctx.tls.server_context() is not None
    conn = _Connection(ctx, session, reader, writer)
    watcher = asyncio.ensure_future(conn.watch_shutdown())
    try:
        await conn.run()
    finally:
        watcher.cancel()


class _Connection:
    """The read-dispatch-write loop of one connection."""

    def __init__(
        self,
        ctx: ServerContext,
        session: Pop3Session,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.ctx = ctx
        self.session = session
        self.reader = reader
        self.writer = writer
        self.lines = proto.LineBuffer(ctx.settings.limits.max_line_length)
        # Output waiting to be written: replies to pipelined commands go out together, one
        # write call (often one segment) for many small replies or several small messages.
        self._out: list[bytes | memoryview] = []
        self._pending = 0

    def _timeout(self) -> float:
        limits = self.ctx.settings.limits
        if self.session.idle_timeout_applies():
            return limits.pop3_idle_timeout
        return limits.prelogin_timeout

    async def _drain(self) -> None:
        """Wait while the client is slow to read (the transport is above its high-water mark).

        ``asyncio.timeout`` rather than ``wait_for``: no extra task per call, which matters
        when a pipelining client has thousands of RETRs in flight.
        """
        if self.writer.transport.get_write_buffer_size() < _DRAIN_ABOVE:
            return
        async with asyncio.timeout(self._timeout()):
            await self.writer.drain()

    async def watch_shutdown(self) -> None:
        """At server shutdown, end a wait for input at once (the current command finishes)."""
        await self.ctx.shutting_down.wait()
        self.reader.feed_eof()

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self._pending += len(data)

    async def _flush(self) -> None:
        """Hand queued output to the transport and wait while the client is slow to read."""
        if self._out:
            self.writer.writelines(self._out)
            self._out = []
            self._pending = 0
        await self._drain()

    async def _goodbye(self) -> None:
        # Shutdown ends the session without UPDATE: nothing marked is deleted (RFC 1939 §6).
        self._queue(proto.err("Server shutting down, nothing was changed", proto.CODE_SYS_TEMP))
        await self._flush()

    async def run(self) -> None:
        host = self.ctx.settings.hostname
        self._queue(proto.ok(f"{host} mailhub POP3 ready"))
        await self._flush()
        while True:
            if self.ctx.shutting_down.is_set():
                await self._goodbye()
                return
            line = self.lines.next_line()
            if line is None:
                # Nothing left to answer: send what is queued before waiting for more input.
                await self._flush()
                try:
                    async with asyncio.timeout(self._timeout()):
                        data = await self.reader.read(_READ_SIZE)
                except TimeoutError:
                    self._queue(proto.err("Disconnected for inactivity"))
                    await self._flush()
                    return
                if not data:
                    if self.ctx.shutting_down.is_set():
                        await self._goodbye()
                    return  # dropped connection: nothing is applied (RFC 1939 §6)
                self.lines.feed(data)
                continue
            if isinstance(line, proto.LineTooLong):
                reply = self.session.line_too_long()
            else:
                reply = await self.session.handle_line(line)
            if reply.starttls:
                # Stop reading before the +OK goes out: the client's ClientHello must reach the
                # TLS layer, not the plaintext stream buffer (RFC 2595 §4).
                pause = getattr(self.writer.transport, "pause_reading", None)
                if pause is not None:  # every TCP transport (asyncio, uvloop) has it
                    pause()
            await self._send(reply)
            if reply.close:
                await self._flush()
                return
            if reply.starttls:
                await self._flush()
                self.lines.clear()  # nothing pipelined before the handshake counts after it
                tls = self.ctx.tls.server_context()
                if tls is None:
                    return
                await asyncio.wait_for(
                    self.writer.start_tls(tls), self.ctx.settings.limits.prelogin_timeout
                )
                self.session.tls_started()

    async def _send(self, reply: Reply) -> None:
        self._queue(reply.head)
        if reply.body is None:
            return
        if isinstance(reply.body, list):
            self._out += reply.body
            self._pending += sum(map(len, reply.body))
            if self._pending >= _FLUSH_AT:
                await self._flush()
            return
        async for chunk in reply.body:
            self._queue(chunk)
            if self._pending >= _FLUSH_AT:
                await self._flush()
