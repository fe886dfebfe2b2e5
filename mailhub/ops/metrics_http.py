"""The optional metrics endpoint: ``GET /metrics`` in Prometheus text format.

Started by ``mailhub.app`` like a frontend when ``[metrics] enabled = true``, on
``metrics.host`` (loopback by default: it has no authentication) and ``metrics.port``.
A deliberately tiny HTTP/1.0 responder: one request per connection, GET or HEAD, a few
hundred bytes of request at most. Prometheus, curl and node-exporter's textfile collector
need nothing more, and it adds no dependency.

The store size gauges walk ``<data>/mail`` in a thread once every :data:`STORE_SCAN_INTERVAL`
seconds (so a scrape every 15 s costs one directory walk a minute), and at the next scrape
after this server delivered mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

from mailhub import metrics
from mailhub.app import ServerContext

log = logging.getLogger(__name__)

STORE_SCAN_INTERVAL = 60.0
MAX_REQUEST = 8192
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreSize:
    """Bytes and message files under the mail root, rescanned at most once a minute."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scanned_at = float("-inf")
        self.bytes = 0
        self.messages = 0
        self.accounts = 0
        self.delivered = 0.0

    def scan(self) -> None:
        total = count = accounts = 0
        for dirpath, dirnames, filenames in os.walk(self.root):
            base = os.path.basename(dirpath)
            if base == "tmp":
                dirnames[:] = []
                continue
            if base in ("cur", "new"):
                for name in filenames:
                    with contextlib.suppress(OSError):
                        total += os.stat(os.path.join(dirpath, name)).st_size
                        count += 1
            elif os.path.isdir(os.path.join(dirpath, "cur")) and not base.startswith("."):
                accounts += 1
        self.bytes, self.messages, self.accounts = total, count, accounts
        self.scanned_at = time.monotonic()

    async def refresh(self) -> None:
        # Rescan when the interval passed, or at once when this server delivered mail since.
        delivered = metrics.DELIVERIES.total()
        if time.monotonic() - self.scanned_at >= STORE_SCAN_INTERVAL or delivered != self.delivered:
            self.delivered = delivered
            await asyncio.to_thread(self.scan)


_STORE_BYTES = metrics.REGISTRY.gauge(
    "mailhub_store_bytes", "Bytes of message files in the store (rescanned once a minute)."
)
_STORE_MESSAGES = metrics.REGISTRY.gauge(
    "mailhub_store_messages", "Message files in the store (rescanned once a minute)."
)
_STORE_ACCOUNTS = metrics.REGISTRY.gauge("mailhub_store_accounts", "Accounts with a Maildir.")
_UP_SINCE = metrics.REGISTRY.gauge(
    "mailhub_start_time_seconds", "When this server process started (POSIX time)."
)


def _response(status: str, body: bytes, head_only: bool = False) -> bytes:
    headers = (
        f"HTTP/1.0 {status}\r\nContent-Type: {CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return headers + (b"" if head_only else body)


async def _handle(
    size: StoreSize, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        async with asyncio.timeout(10):
            request = await _read_head(reader)
        method, _, rest = request.partition(b" ")
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            writer.write(_response("405 Method Not Allowed", b"GET only\n"))
        elif path not in (b"/metrics", b"/"):
            writer.write(_response("404 Not Found", b"try /metrics\n"))
        else:
            await size.refresh()
            _STORE_BYTES.set(size.bytes)
            _STORE_MESSAGES.set(size.messages)
            _STORE_ACCOUNTS.set(size.accounts)
            body = metrics.REGISTRY.render().encode()
            writer.write(_response("200 OK", body, head_only=method == b"HEAD"))
        await writer.drain()
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 2)


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The request line (the headers are read and ignored, up to MAX_REQUEST bytes)."""
    first = await reader.readline()
    seen = len(first)
    while True:
        line = await reader.readline()
        seen += len(line)
        if line in (b"\r\n", b"\n", b"") or seen > MAX_REQUEST:
            break
    if seen > MAX_REQUEST:
        raise ValueError("request too large")
    return first.strip()


async def start(ctx: ServerContext) -> list[asyncio.AbstractServer]:
    """Bind the endpoint (the app logs ``metrics listening on host:port``)."""
    cfg = ctx.settings.metrics
    size = StoreSize(ctx.settings.data_dir / "mail")
    _UP_SINCE.set(time.time())

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _handle(size, reader, writer)

    server = await asyncio.start_server(handler, cfg.host, cfg.port, limit=MAX_REQUEST)
    return [server]
