"""Composition root: builds the store, accounts, TLS and listeners, and runs them.

This is the only module (with the CLI) that names the concrete store backend. Each frontend
package exposes ``async def start(ctx: ServerContext) -> list[asyncio.AbstractServer]`` in its
``server`` module; ``serve`` starts every frontend whose port is not 0.

Shutdown (SIGTERM/SIGINT): stop accepting, set ``ctx.shutting_down`` so sessions can say
goodbye (IMAP ``* BYE``, POP3 without UPDATE), wait up to ``shutdown_timeout`` for the
connections frontends registered with :meth:`ServerContext.track_connection`, cancel what is
left, then close the store (its indexes are closed last, after every write finished).
SIGHUP re-reads the TLS files and the accounts file.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailhub import __version__
from mailhub.config import Settings
from mailhub.store.api import Mailstore

if TYPE_CHECKING:
    from mailhub.auth.directory import AccountDirectory
    from mailhub.net.limits import ConnectionLimiter
    from mailhub.net.tls import TlsProvider

log = logging.getLogger("mailhub")

# (label, module): each module's start(ctx) binds that frontend's listeners.
FRONTENDS: tuple[tuple[str, str], ...] = (
    ("imap", "mailhub.imap.server"),
    ("pop3", "mailhub.pop3.server"),
    ("ingest", "mailhub.ingest.server"),
    ("metrics", "mailhub.ops.metrics_http"),  # Prometheus endpoint, off unless [metrics] enabled
)


@dataclass
class ServerContext:
    """What every listener shares: settings, the one store (and its change bus), accounts."""

    settings: Settings
    store: Mailstore
    directory: AccountDirectory
    tls: TlsProvider
    limiter: ConnectionLimiter
    # Set when the server starts shutting down: sessions should finish the current command,
    # say goodbye and close.
    shutting_down: asyncio.Event = field(default_factory=asyncio.Event)
    # Connection tasks registered through track_connection(); shutdown waits for them.
    connections: set[asyncio.Task[Any]] = field(default_factory=set)

    @contextlib.contextmanager
    def track_connection(self) -> Iterator[None]:
        """Wrap a connection handler's body so shutdown waits for it (in-flight writes)."""
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        try:
            yield
        finally:
            if task is not None:
                self.connections.discard(task)


def build_context(settings: Settings) -> ServerContext:
    """Create the shared objects; raises ``TlsError`` when the configured TLS files are bad."""
    from mailhub.auth.directory import AccountDirectory
    from mailhub.net.limits import ConnectionLimiter
    from mailhub.net.tls import TlsProvider
    from mailhub.store.maildir import MaildirMailstore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tls = TlsProvider(settings.tls, settings.data_dir, settings.host, settings.hostname)
    return ServerContext(
        settings=settings,
        store=MaildirMailstore(settings.data_dir / "mail"),
        directory=AccountDirectory(settings.data_dir),
        tls=tls,
        limiter=ConnectionLimiter(settings.limits.max_connections_per_ip),
    )


def listener_names(settings: Settings) -> dict[int, str]:
    """Port -> protocol label used in the ``<label> listening on host:port`` lines."""
    names = {
        settings.imap.port: "imap",
        settings.imap.tls_port: "imaps",
        settings.pop3.port: "pop3",
        settings.pop3.tls_port: "pop3s",
        settings.lmtp.port: "lmtp",
        settings.smtp.port: "smtp",
    }
    names.pop(0, None)
    return names


def _enabled(label: str, settings: Settings) -> bool:
    if label == "imap":
        return bool(settings.imap.port or settings.imap.tls_port)
    if label == "pop3":
        return bool(settings.pop3.port or settings.pop3.tls_port)
    if label == "metrics":
        return settings.metrics.enabled
    return bool(settings.lmtp.port or settings.smtp.port or settings.lmtp.unix_socket)


def _describe_socket(sock: socket.socket, names: dict[int, str], fallback: str) -> str:
    addr = sock.getsockname()
    if isinstance(addr, (str, bytes)):
        path = addr.decode() if isinstance(addr, bytes) else addr
        return f"{'lmtp' if fallback == 'ingest' else fallback} listening on unix:{path}"
    host, port = addr[0], addr[1]
    shown = f"[{host}]" if ":" in host else host
    return f"{names.get(port, fallback)} listening on {shown}:{port}"


async def start_frontends(ctx: ServerContext) -> list[asyncio.AbstractServer]:
    """Start every enabled frontend, logging one line per listening socket.

    A frontend whose module is missing is reported and skipped (the others still serve);
    a port that cannot be bound raises OSError after closing what was already started.
    """
    names = listener_names(ctx.settings)
    servers: list[asyncio.AbstractServer] = []
    for label, module_name in FRONTENDS:
        if not _enabled(label, ctx.settings):
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                log.warning("%s frontend not available (no %s module)", label, module_name)
            else:
                log.error("%s frontend not available: %s", label, exc)
            continue
        except ImportError as exc:
            log.error("%s frontend not available: %s", label, exc)
            continue
        try:
            started: list[asyncio.AbstractServer] = await module.start(ctx)
        except OSError:
            for srv in servers:
                srv.close()
            raise
        except Exception:
            log.exception("%s frontend failed to start", label)
            continue
        for srv in started:
            for sock in getattr(srv, "sockets", None) or ():
                log.info("%s", _describe_socket(sock, names, label))
        servers.extend(started)
    return servers


def reload(ctx: ServerContext) -> None:
    """SIGHUP: re-read TLS files and accounts; keep the old ones when the new are broken."""
    from mailhub.auth.directory import AccountsFileError
    from mailhub.net.tls import TlsError

    try:
        ctx.tls.reload()
        log.info("reloaded TLS certificate (%s)", "on" if ctx.tls.enabled else "off")
    except TlsError as exc:
        log.error("TLS reload failed, keeping the previous certificate: %s", exc)
    try:
        ctx.directory.reload()
        log.info("reloaded accounts (%d)", len(ctx.directory))
    except AccountsFileError as exc:
        log.error("accounts reload failed, keeping the previous accounts: %s", exc)


async def _shutdown(ctx: ServerContext, servers: list[asyncio.AbstractServer]) -> None:
    for srv in servers:
        srv.close()
    ctx.shutting_down.set()
    timeout = ctx.settings.shutdown_timeout
    pending = {t for t in ctx.connections if not t.done()}
    if pending:
        log.info("waiting up to %.0fs for %d connection(s) to finish", timeout, len(pending))
        _, pending = await asyncio.wait(pending, timeout=timeout)
    others = {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}
    for task in others | pending:
        task.cancel()
    if others | pending:
        await asyncio.wait(others | pending, timeout=5.0)
    for srv in servers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(srv.wait_closed(), 1.0)
    await ctx.store.close()


def _exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Drop the CancelledError Python 3.11's StreamReaderProtocol reports for a connection
    task cancelled at shutdown (it calls ``task.exception()`` on a cancelled task; fixed in
    3.12); everything else goes to the default handler, which logs it."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


async def serve(settings: Settings, ctx: ServerContext | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit status.

    Logs ``<proto> listening on <host>:<port>`` per socket, then ``mailhub <version> ready``.
    """
    if ctx is None:
        ctx = build_context(settings)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_exception_handler)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload, ctx)
    try:
        try:
            servers = await start_frontends(ctx)
        except OSError as exc:
            log.error("cannot listen: %s", exc)
            await ctx.store.close()
            return 71  # EX_OSERR
        if not servers:
            log.warning("no listener is running (every frontend is disabled or missing)")
        # Started as root with `user` set: bound and TLS loaded, now become that user for good.
        from mailhub.privileges import drop

        drop(settings)
        log.info(
            "mailhub %s ready (data in %s, TLS %s)",
            __version__,
            settings.data_dir,
            "on" if ctx.tls.enabled else "off",
        )
        await stop.wait()
        log.info("shutting down")
        await _shutdown(ctx, servers)
        log.info("stopped")
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
