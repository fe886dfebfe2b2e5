"""POP3 test helpers: a real POP3 server over the real Maildir store on loopback sockets.

The server runs on its own event loop in a background thread (the shape of aiosmtpd's
``Controller``), so tests use the blocking stdlib ``poplib`` and real Debian clients unchanged,
and reach into the same store through ``env.call(...)`` (run on the server's loop), which is
how IMAP or delivery would change the mailbox under a POP3 session.
"""

from __future__ import annotations

import asyncio
import contextlib
import poplib
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trustme

from mailhub.app import ServerContext
from mailhub.auth.directory import AccountDirectory
from mailhub.auth.model import Pop3Policy
from mailhub.config import LimitSettings, Pop3Settings, Settings, TlsSettings
from mailhub.net.limits import ConnectionLimiter
from mailhub.net.tls import TlsProvider
from mailhub.pop3 import server as pop3_server
from mailhub.store.api import Mailbox
from mailhub.store.bus import ChangeBus
from mailhub.store.model import NewMessage

T = TypeVar("T")
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_message(subject: str, body: str = "Hello.\n", sender: str = "alice@example.org") -> bytes:
    """A small message with LF line endings (the store must serve it with CRLF)."""
    return (
        f"From: {sender}\nTo: bob@example.org\nSubject: {subject}\n"
        f"Message-ID: <{subject.replace(' ', '.')}@test>\n\n{body}"
    ).encode()


@dataclass
class Pop3Env:
    """A running server plus handles on its store and accounts."""

    data_dir: Path
    ca: trustme.CA
    limits: LimitSettings
    pop3_extra: dict[str, Any]
    allow_cleartext_auth: bool = False
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    port: int = 0
    tls_port: int = 0
    ctx: ServerContext | None = None
    servers: list[asyncio.AbstractServer] = field(default_factory=list)
    _thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
            self._thread.start()
        self.port, self.tls_port = free_port(), free_port()
        cert = self.data_dir / "cert.pem"
        key = self.data_dir / "key.pem"
        if not cert.exists():
            server_cert = self.ca.issue_cert("localhost", "127.0.0.1")
            server_cert.cert_chain_pems[0].write_to_path(str(cert))
            server_cert.private_key_pem.write_to_path(str(key))
        settings = Settings(
            data_dir=self.data_dir,
            host="127.0.0.1",
            allow_cleartext_auth=self.allow_cleartext_auth,
            tls=TlsSettings(cert_file=cert, key_file=key),
            limits=self.limits,
            pop3=Pop3Settings(port=self.port, tls_port=self.tls_port, **self.pop3_extra),
        )
        self.call(self._start_async(settings))

    async def _start_async(self, settings: Settings) -> None:
        from mailhub.store.maildir import MaildirMailstore

        store = MaildirMailstore(settings.data_dir / "mail", ChangeBus())
        self.ctx = ServerContext(
            settings=settings,
            store=store,
            directory=AccountDirectory(settings.data_dir),
            tls=TlsProvider(settings.tls, settings.data_dir),
            limiter=ConnectionLimiter(settings.limits.max_connections_per_ip),
        )
        self.servers = await pop3_server.start(self.ctx)

    def stop(self) -> None:
        """Stop the listeners and close the store (a server shutdown)."""
        if self.ctx is not None:
            self.call(self._stop_async())
            self.ctx = None

    async def _stop_async(self) -> None:
        """What ``mailhub serve`` does on SIGTERM: stop accepting, let sessions say goodbye,
        wait for them, then close the store."""
        assert self.ctx is not None
        for s in self.servers:
            s.close()
        self.ctx.shutting_down.set()
        pending = {t for t in self.ctx.connections if not t.done()}
        if pending:
            await asyncio.wait(pending, timeout=10)
        for s in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.wait_closed(), 5)
        self.servers = []
        await self.ctx.store.close()

    async def _cancel_leftovers(self) -> None:
        """Cancel what is still scheduled (store background syncs), as ``serve`` does."""
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def shutdown(self) -> None:
        self.stop()
        self.call(self._cancel_leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self.loop.close()

    # -- helpers ------------------------------------------------------------------------------

    def call(self, coro: Awaitable[T], timeout: float = 60) -> T:
        """Run a coroutine on the server's loop and wait for its result."""

        async def wrap() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(timeout)

    @property
    def directory(self) -> AccountDirectory:
        assert self.ctx is not None
        return self.ctx.directory

    def add_user(self, address: str = "bob@example.org", **policy: Any) -> str:
        self.directory.add(address, PASSWORD, pop3=Pop3Policy(**policy))
        return address

    def set_policy(self, address: str, **policy: Any) -> None:
        self.directory.update(address, pop3=policy)

    def mailbox(self, address: str, name: str = "INBOX") -> Mailbox:
        async def get() -> Mailbox:
            assert self.ctx is not None
            account = await self.ctx.store.open_account(address)
            return await account.open_mailbox(name)

        return self.call(get())

    def deliver(
        self,
        address: str,
        data: bytes,
        folder: str = "INBOX",
        flags: frozenset[str] = frozenset(),
        internal_date: float | None = None,
    ) -> int:
        """Append a message as delivery or IMAP APPEND would; returns its UID."""
        box = self.mailbox(address, folder)
        infos = self.call(box.append([NewMessage(data, flags, internal_date)]))
        return infos[0].uid

    def with_mailbox(
        self, address: str, fn: Callable[[Mailbox], Awaitable[T]], name: str = "INBOX"
    ) -> T:
        return self.call(fn(self.mailbox(address, name)))

    def client_tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx

    def connect(self) -> poplib.POP3:
        return poplib.POP3("127.0.0.1", self.port, timeout=30)

    def login(self, user: str = "bob@example.org", password: str = PASSWORD) -> poplib.POP3:
        client = self.connect()
        client.user(user)
        client.pass_(password)
        return client
