"""Bind the LMTP (TCP and Unix socket) and inbound SMTP listeners in the server's own loop.

Why not aiosmtpd's ``Controller``: it runs its own event loop on a thread, so a delivery would
publish its change records on a different loop from the IMAP IDLE and POP3 sessions waiting
for them. ``loop.create_server(lambda: ...)`` in the running loop keeps one store, one change
bus and one loop for every protocol (ARCHITECTURE.md, aiosmtpd trap 2).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailhub.app import ServerContext
from mailhub.ingest.delivery import DeliveryAgent
from mailhub.ingest.handler import IngestHandler
from mailhub.ingest.lmtp import IngestLMTP
from mailhub.ingest.smtp import INFLIGHT, InboundSMTP

log = logging.getLogger("mailhub.ingest")

# The Unix socket is for the local MTA (Postfix runs as its own user), as with Dovecot's
# default lmtp unix_listener mode: anyone on the host may hand mail in, as with sendmail.
UNIX_SOCKET_MODE = 0o666


def _quiet_aiosmtpd() -> None:
    """aiosmtpd logs every command line at INFO on "mail.log"; mailhub logs deliveries itself."""
    logger = logging.getLogger("mail.log")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


async def start(ctx: ServerContext) -> list[asyncio.AbstractServer]:
    """Start every ingest listener whose port (or socket path) is configured."""
    loop = asyncio.get_running_loop()
    settings = ctx.settings
    agent = DeliveryAgent(ctx.store, ctx.directory, settings)
    servers: list[asyncio.AbstractServer] = []
    _quiet_aiosmtpd()
    inflight: set[asyncio.Task[Any]] | None = getattr(ctx, "connections", None)
    limit, hostname, timeout = (
        settings.smtp.max_message_size,
        settings.hostname,
        settings.smtp.timeout,
    )

    if settings.lmtp.port or settings.lmtp.unix_socket:
        lmtp_handler = IngestHandler(agent, settings, relay_check=False)

        def lmtp_factory() -> IngestLMTP:
            return IngestLMTP(
                lmtp_handler,
                inflight=inflight,
                data_size_limit=limit,
                hostname=hostname,
                timeout=timeout,
                loop=loop,
            )

        if settings.lmtp.port:
            tcp = await loop.create_server(lmtp_factory, settings.host, settings.lmtp.port)
            servers.append(tcp)
            log.debug("LMTP listening on %s", _where(tcp))
        if settings.lmtp.unix_socket:
            servers.append(await _unix_server(lmtp_factory, Path(settings.lmtp.unix_socket)))
            log.debug("LMTP listening on unix:%s", settings.lmtp.unix_socket)

    if settings.smtp.port:
        smtp_handler = IngestHandler(agent, settings, relay_check=True)

        def smtp_factory() -> InboundSMTP:
            return InboundSMTP(
                smtp_handler,
                tls_context=ctx.tls.server_context(),  # per connection: follows SIGHUP reloads
                acquire=ctx.limiter.try_acquire,
                release=ctx.limiter.release,
                inflight=inflight,
                data_size_limit=limit,
                hostname=hostname,
                timeout=timeout,
                loop=loop,
            )

        smtp = await loop.create_server(smtp_factory, settings.host, settings.smtp.port)
        servers.append(smtp)
        tls = "available" if ctx.tls.server_context() is not None else "off (no certificate)"
        log.info("smtp on %s: STARTTLS %s", _where(smtp), tls)
    return servers


async def _unix_server(factory: Callable[[], IngestLMTP], path: Path) -> asyncio.AbstractServer:
    """Bind the socket, replacing a stale one left by a crash (but never a regular file)."""
    loop = asyncio.get_running_loop()
    try:
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    server = await loop.create_unix_server(factory, str(path))
    os.chmod(path, UNIX_SOCKET_MODE)
    return server


def _where(server: asyncio.AbstractServer) -> str:
    socks = getattr(server, "sockets", ()) or ()
    return ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in socks) or "?"


async def drain(timeout: float = 30.0) -> None:
    """Wait for deliveries still being written (server shutdown: finish in-flight writes)."""
    pending = list(INFLIGHT)
    if pending:
        await asyncio.wait(pending, timeout=timeout)
