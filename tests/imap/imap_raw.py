"""A byte-exact IMAP test client over a raw socket, for what imaplib hides: pipelining,
exact response syntax, IDLE timing, COMPRESS=DEFLATE, PROXY headers."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
import zlib

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class RawImap:
    """``send`` raw bytes; ``line()`` reads one response line with its literals inlined;
    ``cmd("a1 NOOP")`` sends and returns every line up to the tagged one."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        prefix: bytes = b"",
        tls: ssl.SSLContext | None = None,
        timeout: float = 10.0,
    ) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        if prefix:
            sock.sendall(prefix)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname="localhost")
        self.sock: socket.socket = sock
        self.buf = b""
        self.inflate: zlib._Decompress | None = None
        self.deflate: zlib._Compress | None = None
        self.greeting = self.line()

    # -- low level -------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        if self.inflate is not None:
            data = self.inflate.decompress(data)
        self.buf += data

    def _read_raw_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def line(self, timeout: float | None = None) -> bytes:
        """One response line, literals inlined, without the final CRLF."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            out = b""
            while True:
                part = self._read_raw_line()
                out += part
                m = _LITERAL.search(part)
                if not m:
                    return out[:-2]
                n = int(m.group(1))
                while len(self.buf) < n:
                    self._fill()
                out += self.buf[:n]
                self.buf = self.buf[n:]
        finally:
            if timeout is not None:
                self.sock.settimeout(10.0)

    def until_tagged(self, tag: str) -> list[bytes]:
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if ln.startswith(tag.encode() + b" "):
                return lines

    def cmd(self, line: str | bytes, tag: str | None = None) -> list[bytes]:
        data = line.encode() if isinstance(line, str) else line
        tag = tag or data.split(b" ", 1)[0].decode()
        self.send(data + b"\r\n")
        return self.until_tagged(tag)

    def login(self, user: str, password: str) -> None:
        out = self.cmd(f'L1 LOGIN "{user}" "{password}"')
        assert out[-1].startswith(b"L1 OK"), out

    def start_compress(self) -> None:
        self.inflate = zlib.decompressobj(-15)
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        # Whatever was already buffered after the OK is compressed: re-run it through.
        pending, self.buf = self.buf, b""
        if pending:
            self.buf = self.inflate.decompress(pending)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def tagged(lines: list[bytes]) -> bytes:
    return lines[-1]


def wait_line(c: RawImap, pattern: bytes, timeout: float) -> tuple[bytes, float]:
    """Read lines until one matches ``pattern``; returns it and the seconds it took."""
    start = time.monotonic()
    rx = re.compile(pattern)
    while True:
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            raise AssertionError(f"no line matching {pattern!r} within {timeout}s")
        ln = c.line(timeout=left)
        if rx.search(ln):
            return ln, time.monotonic() - start
