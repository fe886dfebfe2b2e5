"""IMAP listeners: asyncio streams glue around :class:`~mailhub.imap.session.Session`.

Two listeners on ``settings.host``: ``imap.port`` (cleartext, offering STARTTLS, RFC 9051
§6.2.1) and ``imap.tls_port`` (implicit TLS, the 993 role, RFC 8314). This module owns every
socket concern, so the session and handlers never touch one:

* PROXY protocol v1/v2 (``settings.trusted_proxies``): read before anything else (before the
  TLS handshake on the implicit port, so that listener then does the handshake itself), and
  only from trusted peers; the real client address is used for limits, logs and the
  cleartext-auth rule.
* ``ctx.limiter`` per client address (``* BYE [UNAVAILABLE]`` when over).
* Timeouts: the pre-login timeout before authentication, the autologout after it (RFC 9051
  §5.4: at least 30 minutes); an IDLE counts as activity.
* Bounded reading: 64 KiB reads fed to the sans-I/O parser, which enforces line and literal
  limits; a synchronising literal gets its ``+`` here; under COMPRESS the input is inflated
  at most 64 KiB at a time, so a deflate bomb cannot fill memory.
* Output: responses are queued and written when a command completes, or every 256 KiB while
  a big FETCH streams (a BodyRef's chunks are copied from the store to the socket without
  ever being held whole). Under COMPRESS=DEFLATE (RFC 4978) each of those writes ends with a
  ``Z_SYNC_FLUSH`` so the client can decode every response as soon as it arrives.
* ``* BYE`` after too many protocol errors, at the autologout, and at server shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
import zlib
from functools import partial

from mailhub.app import ServerContext
from mailhub.imap.proto import (
    NEED_DATA,
    PAUSED,
    BodyRef,
    CommandParser,
    Event,
    Limits,
    NeedContinuation,
    ParseError,
    error_response,
    to_bytes,
)
from mailhub.imap.proto.commands import Command
from mailhub.imap.proto.responses import Continuation, Untagged
from mailhub.imap.proto.values import Piece
from mailhub.imap.proxied_tls import start_proxied_tls
from mailhub.imap.session import Session, note_server_bug
from mailhub.net.proxy import ProxyError, ProxyHeader, is_trusted
from mailhub.net.read_deadline import ReadDeadline
from mailhub.net.stream import read_proxy_header

log = logging.getLogger("mailhub.imap")

_READ_SIZE = 65536
_INFLATE_STEP = 65536
_FLUSH_AT = 256 * 1024
_DRAIN_ABOVE = 64 * 1024
_SEND_TIMEOUT = 300.0  # a client that reads nothing for this long is gone


def _listener_context(ctx: ServerContext) -> ssl.SSLContext | None:
    """The implicit-TLS context; its SNI callback swaps in the current (reloaded) one."""
    first = ctx.tls.server_context()
    if first is None:
        return None

    def use_current(sslobj: ssl.SSLObject, name: str | None, current: ssl.SSLContext) -> None:
        latest = ctx.tls.server_context()
        if latest is not None and latest is not current:
            sslobj.context = latest

    first.sni_callback = use_current
    return first


async def start(ctx: ServerContext) -> list[asyncio.AbstractServer]:
    """Bind the IMAP listeners whose port is not 0 (the TLS one only with a certificate)."""
    settings = ctx.settings
    servers: list[asyncio.AbstractServer] = []
    have_tls = ctx.tls.server_context() is not None
    listeners = [(settings.imap.port, False)]
    if have_tls:
        listeners.append((settings.imap.tls_port, True))
    elif settings.imap.tls_port:
        log.warning("IMAPS port %d not opened: no TLS certificate", settings.imap.tls_port)
    proxied = bool(settings.trusted_proxies)
    for port, implicit in listeners:
        if not port:
            continue
        if implicit and proxied:
            # Behind trusted proxies the PROXY header precedes the TLS handshake.
            servers.append(
                await start_proxied_tls(
                    settings.host,
                    port,
                    partial(_handle_proxied, ctx),
                    ctx.tls.server_context,
                    settings.trusted_proxies,
                    settings.limits.prelogin_timeout,
                )
            )
            continue
        tls = _listener_context(ctx) if implicit else None
        server = await asyncio.start_server(
            partial(_handle, ctx, implicit),
            settings.host,
            port,
            limit=_READ_SIZE,
            ssl=tls,
            ssl_handshake_timeout=settings.limits.prelogin_timeout if tls else None,
        )
        servers.append(server)
    return servers


async def _handle_proxied(
    ctx: ServerContext,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    header: ProxyHeader | None,
) -> None:
    await _handle(ctx, True, reader, writer, header=header, header_read=True)


async def _handle(
    ctx: ServerContext,
    implicit_tls: bool,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    header: ProxyHeader | None = None,
    header_read: bool = False,
) -> None:
    peername = writer.get_extra_info("peername")
    ip = str(peername[0]) if peername else "?"
    port = peername[1] if peername else 0
    settings = ctx.settings
    if header_read:
        if header is not None and header.source is not None:
            ip, port = header.source
    elif is_trusted(ip, settings.trusted_proxies):
        try:
            header = await read_proxy_header(reader, settings.limits.prelogin_timeout)
        except (ProxyError, TimeoutError, ConnectionError) as exc:
            log.warning("imap %s: bad PROXY header from trusted proxy: %s", ip, exc)
            writer.close()
            return
        if header.source is not None:
            ip, port = header.source
    peer = f"{ip}:{port}"
    if not ctx.limiter.try_acquire(ip):
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            writer.write(b"* BYE [UNAVAILABLE] Too many connections from your address\r\n")
            await asyncio.wait_for(writer.drain(), 5)
        writer.close()
        return
    conn = ImapConnection(ctx, reader, writer, ip)
    session = Session(ctx, conn, peer)
    try:
        with ctx.track_connection():
            if implicit_tls:
                conn.secure = True  # the listener did the handshake
            watcher = asyncio.ensure_future(conn.watch_shutdown())
            try:
                await _serve(ctx, session, conn)
            finally:
                watcher.cancel()
    except (ConnectionError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError) as exc:
        log.debug("imap %s: connection ended: %s", peer, exc)
    except Exception:
        note_server_bug()
        log.exception("imap %s: unexpected error, closing connection", peer)
    finally:
        conn.deadline.close()
        await session.close()
        ctx.limiter.release(ip)
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 5)


async def _serve(ctx: ServerContext, session: Session, conn: ImapConnection) -> None:
    """The command loop: read an event, execute it, until LOGOUT, EOF, timeout or BYE."""
    limits = ctx.settings.limits
    await session.greeting()
    while not session.closing:
        if ctx.shutting_down.is_set():
            await _bye(conn, "Server shutting down")
            return
        timeout = limits.prelogin_timeout if session.account is None else limits.imap_autologout
        try:
            ev = await conn.next_event(timeout)
        except TimeoutError:
            await _bye(conn, "Autologout; idle for too long")
            return
        if ev is None:
            if ctx.shutting_down.is_set():
                await _bye(conn, "Server shutting down")
            return
        if isinstance(ev, Command):
            try:
                await session.execute(ev)
            except TimeoutError:  # an IDLE (or a read inside a command) hit the autologout
                await _bye(conn, "Autologout; idle for too long")
                return
            except ConnectionError:
                if ctx.shutting_down.is_set():  # input was cut short by the shutdown
                    await _bye(conn, "Server shutting down")
                    return
                raise
            if session.after_reply is not None:
                action, session.after_reply = session.after_reply, None
                await action()
        elif isinstance(ev, ParseError):
            await conn.write([to_bytes(error_response(ev), utf8=session.utf8)])
            await conn.flush()
            if ev.status == "BAD":
                session.protocol_errors += 1
            if ev.fatal:
                await _bye(conn, "Input too large")
                return
        elif ev is PAUSED:
            conn.parser.resume()
        # IdleDone / AuthResponse outside their command cannot happen; ignore.
        if session.protocol_errors >= limits.max_protocol_errors:
            session.log.warning("too many protocol errors, disconnecting")
            await _bye(conn, "Too many protocol errors")
            return


async def _bye(conn: ImapConnection, text: str) -> None:
    with contextlib.suppress(OSError, TimeoutError, ssl.SSLError, ConnectionError):
        await conn.write([to_bytes(Untagged("BYE", text))])
        await conn.flush()


class ImapConnection:
    """The :class:`~mailhub.imap.session.Connection` over asyncio streams."""

    def __init__(
        self,
        ctx: ServerContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer_ip: str,
    ) -> None:
        limits = ctx.settings.limits
        self.ctx = ctx
        self.reader = reader
        self.writer = writer
        self.peer_ip = peer_ip
        self.secure = writer.get_extra_info("ssl_object") is not None
        self.compressed = False
        self.parser = CommandParser(
            Limits(
                max_line_length=limits.max_line_length,
                max_literal_size=limits.max_literal_size,
                # Workaround: the parser counts an APPEND's literal bytes against
                # max_command_size when the line after the literal arrives; until that is
                # fixed in proto/parser.py (compare only non-literal bytes), allow a whole
                # APPENDLIMIT-sized command. Non-APPEND literals stay bounded by
                # max_arg_literal_size each.
                max_command_size=max(1 << 20, limits.max_literal_size + 2 * limits.max_line_length),
            )
        )
        self._out: list[bytes] = []
        self._pending = 0
        self._deflate: zlib._Compress | None = None
        self._inflate: zlib._Decompress | None = None
        self._ztail = b""
        self._zdirty = False  # deflate input not yet sync-flushed
        self.last_read = time.monotonic()
        self.deadline = ReadDeadline()

    # -- output ----------------------------------------------------------------------------
    def queue(self, data: bytes) -> bool:
        self._out.append(data)
        self._pending += len(data)
        return self._pending >= _FLUSH_AT

    async def write(self, pieces: list[Piece]) -> None:
        for piece in pieces:
            if isinstance(piece, BodyRef):
                await self._stream(piece)
            else:
                self._out.append(piece)
                self._pending += len(piece)
                if self._pending >= _FLUSH_AT:
                    await self._push(sync=False)
        if self._pending >= _FLUSH_AT:
            await self._push(sync=False)

    async def _stream(self, ref: BodyRef) -> None:
        left = ref.size
        async for chunk in ref.chunks():
            if len(chunk) > left:
                chunk = chunk[:left]
            left -= len(chunk)
            self._out.append(chunk)
            self._pending += len(chunk)
            if self._pending >= _FLUSH_AT:
                await self._push(sync=False)
            if left == 0:
                break
        if left:
            # The message changed under us: the literal cannot be completed correctly.
            raise ConnectionError(f"body source ended {left} bytes early")

    async def flush(self) -> None:
        await self._push(sync=True)

    async def _push(self, *, sync: bool) -> None:
        if not self._out and not (sync and self._zdirty):
            return  # nothing new since the last push (which already checked the buffer)
        data = b"".join(self._out)
        self._out = []
        self._pending = 0
        if self._deflate is not None:
            if data:
                data = self._deflate.compress(data)
                self._zdirty = True
            if sync and self._zdirty:
                # Only after real output: a lone empty sync block makes isync's reader see
                # an empty response line.
                data += self._deflate.flush(zlib.Z_SYNC_FLUSH)
                self._zdirty = False
        if data:
            self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() >= _DRAIN_ABOVE:
            async with asyncio.timeout(_SEND_TIMEOUT):
                await self.writer.drain()

    # -- input -----------------------------------------------------------------------------
    async def next_event(self, timeout: float | None = None) -> Event | None:
        """The parser's next event; sends ``+`` for synchronising literals. None at EOF."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ev = self.parser.next_event()
            if ev is NEED_DATA:
                if self._ztail:
                    self._feed_compressed(b"")
                    continue
                if self._out or self._zdirty:
                    await self.flush()
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                data = await self.deadline.run(self.reader.read(_READ_SIZE), left)
                self.last_read = time.monotonic()
                if not data:
                    return None
                if self._inflate is not None:
                    self._feed_compressed(data)
                else:
                    self.parser.feed(data)
                continue
            if isinstance(ev, NeedContinuation):
                await self.write([to_bytes(Continuation("Ready for literal data"))])
                await self.flush()
                continue
            return ev

    async def watch_shutdown(self) -> None:
        """At server shutdown, end a wait for input at once (the current command finishes)."""
        await self.ctx.shutting_down.wait()
        self.reader.feed_eof()

    def _feed_compressed(self, data: bytes) -> None:
        assert self._inflate is not None
        try:
            out = self._inflate.decompress(self._ztail + data, _INFLATE_STEP)
        except zlib.error as exc:
            raise ConnectionError(f"bad DEFLATE stream from client: {exc}") from None
        self._ztail = self._inflate.unconsumed_tail
        self.parser.feed(out)

    # -- upgrades --------------------------------------------------------------------------
    def pause_reading(self) -> None:
        """Stop reading before STARTTLS's OK goes out, so the ClientHello reaches TLS."""
        pause = getattr(self.writer.transport, "pause_reading", None)
        if pause is not None:
            pause()

    async def start_tls(self) -> None:
        self.parser.take_buffered()  # bytes before the handshake must not run (RFC 9051 §11.1)
        tls = self.ctx.tls.server_context()
        if tls is None:
            raise ConnectionError("TLS no longer available")
        await asyncio.wait_for(
            self.writer.start_tls(tls), self.ctx.settings.limits.prelogin_timeout
        )
        self.secure = True

    async def start_compress(self) -> None:
        """RFC 4978 §3: both directions are deflated from the byte after the tagged OK."""
        pending = self.parser.take_buffered()
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)
        self.compressed = True
        if pending:
            self._feed_compressed(pending)
