"""Ingest test harness: the real listeners, real Maildir store, real sockets.

Imported by the ingest tests as ``ingest_harness`` (pytest puts this directory on sys.path).

The server runs ``mailhub.ingest.server.start`` (and POP3/IMAP when asked) in its own event
loop on a background thread, built by ``mailhub.app.build_context`` exactly as ``serve`` does,
so blocking stdlib clients (smtplib, poplib, imaplib, raw sockets, swaks) can talk to it from
the test thread. Checks on stored mail go through the same store, on the server's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import smtplib
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mailhub.app import ServerContext, build_context
from mailhub.config import Settings

T = TypeVar("T")
DOMAIN = "example.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class IngestServer:
    """A running server: its settings, context, loop, and helpers to inspect the store."""

    settings: Settings
    loop: asyncio.AbstractEventLoop
    ctx: ServerContext
    servers: list[asyncio.AbstractServer]
    thread: threading.Thread
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lmtp_port(self) -> int:
        return self.settings.lmtp.port

    @property
    def smtp_port(self) -> int:
        return self.settings.smtp.port

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def add_account(self, local: str, **fields: Any) -> str:
        address = f"{local}@{DOMAIN}" if "@" not in local else local
        self.ctx.directory.add(address, fields.pop("password", "secret"), **fields)
        return address

    async def _open(self, address: str, folder: str) -> Any:
        rec = self.ctx.directory.lookup(address)
        assert rec is not None
        account = await self.ctx.store.open_account(rec.address)
        return await account.open_mailbox(folder)

    def create_folder(self, address: str, name: str) -> None:
        async def go() -> None:
            account = await self.ctx.store.open_account(address)
            await account.create_mailbox(name)

        self.run(go())

    def uids(self, address: str, folder: str = "INBOX") -> list[int]:
        async def go() -> list[int]:
            box = await self._open(address, folder)
            return [m.uid for m in (await box.snapshot()).messages]

        return self.run(go())

    def messages(self, address: str, folder: str = "INBOX") -> list[bytes]:
        async def go() -> list[bytes]:
            box = await self._open(address, folder)
            snap = await box.snapshot()
            return [await (await box.open_message(m.uid)).read() for m in snap.messages]

        return self.run(go())

    def lmtp(self) -> smtplib.LMTP:
        client = smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=30)
        return client

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)


def settings_for(data_dir: Path, overrides: dict[str, Any]) -> Settings:
    base: dict[str, Any] = {
        "data_dir": str(data_dir),
        "host": "127.0.0.1",
        "hostname": "mx.example.test",
        "imap": {"port": 0, "tls_port": 0},
        "pop3": {"port": 0, "tls_port": 0},
        "lmtp": {"port": free_port(), "unix_socket": str(data_dir / "lmtp.sock")},
        "smtp": {"port": free_port(), "local_domains": ["local.test"]},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Settings.model_validate(base)


def start_server(settings: Settings, frontends: tuple[str, ...]) -> IngestServer:
    loop = asyncio.new_event_loop()
    box: dict[str, Any] = {}
    ready = threading.Event()

    async def boot() -> None:
        ctx = build_context(settings)
        servers: list[asyncio.AbstractServer] = []
        for name in frontends:
            module = importlib.import_module(f"mailhub.{name}.server")
            servers.extend(await module.start(ctx))
        box["ctx"], box["servers"] = ctx, servers

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(boot())
        except BaseException as exc:  # reported to the test thread
            box["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        # Stopped: let every connection task finish its cancellation, then close the loop.
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=main, name="mailhub-test-server", daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in box:
        raise box["error"]
    return IngestServer(settings, loop, box["ctx"], box["servers"], thread)


def stop_server(server: IngestServer) -> None:
    async def shutdown() -> None:
        for srv in server.servers:
            srv.close()
        from mailhub.ingest.server import drain

        await drain(10)
        # Like serve's shutdown: end the sessions, then close the store under them.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await server.ctx.store.close()

    with contextlib.suppress(Exception):
        server.run(shutdown(), timeout=30)

    server.loop.call_soon_threadsafe(server.loop.stop)
    server.thread.join(10)


class RawClient:
    """A line-level SMTP/LMTP client on a raw socket, to count replies exactly."""

    def __init__(self, port: int | str) -> None:
        if isinstance(port, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(port)
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.settimeout(30)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line: str) -> list[str]:
        self.send(line + "\r\n")
        return self.reply()

    def reply(self) -> list[str]:
        """One (possibly multi-line) reply; each element is one line without CRLF."""
        lines = []
        while True:
            raw = self.file.readline()
            if not raw:
                raise ConnectionError("server closed the connection")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return lines

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
            self.sock.close()


def message(subject: str = "hello", body: str = "Hello there.\r\n", **headers: str) -> bytes:
    head = {"From": "sender@remote.test", "To": f"alice@{DOMAIN}", "Subject": subject}
    head.update({k.replace("_", "-"): v for k, v in headers.items()})
    text = "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n" + body
    return text.encode("utf-8")
