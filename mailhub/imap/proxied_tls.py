"""An implicit-TLS listener behind a PROXY-protocol proxy.

The PROXY header comes before the TLS ClientHello. An asyncio stream server reads eagerly, so
after the header the ClientHello would already sit in the StreamReader's buffer, out of reach
of ``start_tls``. Here the accepted socket is read byte-exactly (``sock_recv`` of exactly the
header's length) before asyncio gets it, then ``loop.connect_accepted_socket`` does the TLS
handshake (asyncio and uvloop both have it). Untrusted peers skip the header step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from mailhub.net.proxy import V1_MAX, ProxyError, ProxyHeader, is_trusted, parse

log = logging.getLogger("mailhub.imap")

Handler = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter, ProxyHeader | None], Awaitable[None]
]


async def _recv_exact(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = await loop.sock_recv(sock, n - len(data))
        if not more:
            raise ProxyError("connection closed inside the PROXY header")
        data += more
    return data


async def read_header(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> ProxyHeader:
    """Read one PROXY v1/v2 header without consuming a byte after it."""
    data = await _recv_exact(loop, sock, 1)
    while True:
        result = parse(data)
        if result is not None:
            return result[0]
        if data.startswith(b"\r") and len(data) >= 16:
            need = 16 + int.from_bytes(data[14:16], "big") - len(data)
        elif data.startswith(b"\r"):
            need = 16 - len(data)
        else:
            need = 1
            if len(data) > V1_MAX:
                raise ProxyError("PROXY v1 header too long")
        data += await _recv_exact(loop, sock, max(1, need))


class ProxiedTlsServer(asyncio.AbstractServer):
    """Accept loop with the ``AbstractServer`` surface ``mailhub.app`` uses."""

    def __init__(
        self,
        sock: socket.socket,
        handler: Handler,
        tls: Callable[[], ssl.SSLContext | None],
        trusted: list[str],
        timeout: float,
    ) -> None:
        self._sock = sock
        self._handler = handler
        self._tls = tls
        self._trusted = trusted
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = asyncio.ensure_future(self._accept_loop())
        self._conns: set[asyncio.Task[Any]] = set()
        self._closed = asyncio.Event()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._sock,) if self._task is not None else ()

    def is_serving(self) -> bool:
        return self._task is not None

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self._sock.close()
            self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def start_serving(self) -> None:
        return None

    async def serve_forever(self) -> None:
        await self._closed.wait()

    async def __aenter__(self) -> ProxiedTlsServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = await self._loop.sock_accept(self._sock)
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            task = asyncio.ensure_future(self._one(conn))
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)

    async def _one(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        peer = conn.getpeername()
        header: ProxyHeader | None = None
        try:
            if is_trusted(str(peer[0]), self._trusted):
                header = await asyncio.wait_for(read_header(self._loop, conn), self._timeout)
            tls = self._tls()
            if tls is None:
                raise ConnectionError("no TLS certificate")
            reader = asyncio.StreamReader(limit=65536)
            protocol = asyncio.StreamReaderProtocol(reader)
            transport, _ = await self._loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=tls, ssl_handshake_timeout=self._timeout
            )
        except (ProxyError, OSError, TimeoutError, ssl.SSLError, ConnectionError) as exc:
            log.warning("imaps %s: connection dropped before the session: %s", peer[0], exc)
            with contextlib.suppress(OSError):
                conn.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, self._loop)
        await self._handler(reader, writer, header)


async def start_proxied_tls(
    host: str,
    port: int,
    handler: Handler,
    tls: Callable[[], ssl.SSLContext | None],
    trusted: list[str],
    timeout: float,
) -> ProxiedTlsServer:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, *_rest, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return ProxiedTlsServer(sock, handler, tls, trusted, timeout)
