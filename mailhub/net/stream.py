"""Small asyncio stream helpers the frontends share (the only I/O in ``mailhub.net``)."""

from __future__ import annotations

import asyncio

from mailhub.net.proxy import ProxyError, ProxyHeader, parse


class LineTooLong(Exception):
    """A line exceeded the configured limit; the rest of it was discarded."""


async def read_line(reader: asyncio.StreamReader, limit: int) -> bytes:
    """One line including its LF, at most ``limit`` bytes; b"" at EOF.

    On overflow the remainder of the line is read and thrown away (so the connection stays in
    sync) and :class:`LineTooLong` is raised for the frontend to answer with an error.
    """
    buf = bytearray()
    while True:
        try:
            chunk = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return bytes(buf + exc.partial) if len(buf) + len(exc.partial) <= limit else b""
        except asyncio.LimitOverrunError as exc:
            chunk = await reader.readexactly(exc.consumed)
            if len(buf) + len(chunk) > limit:
                await _discard_line(reader)
                raise LineTooLong(f"line longer than {limit} bytes") from None
            buf += chunk
            continue
        if len(buf) + len(chunk) > limit:
            raise LineTooLong(f"line longer than {limit} bytes")
        return bytes(buf + chunk)


async def _discard_line(reader: asyncio.StreamReader) -> None:
    while True:
        try:
            await reader.readuntil(b"\n")
            return
        except asyncio.LimitOverrunError as exc:
            await reader.readexactly(exc.consumed)
        except asyncio.IncompleteReadError:
            return


async def read_proxy_header(reader: asyncio.StreamReader, timeout: float = 10.0) -> ProxyHeader:
    """Read a PROXY v1/v2 header from a trusted proxy; raises ProxyError or TimeoutError.

    Reads byte-exactly (never past the header), so the protocol's first line is untouched.
    """

    async def run() -> ProxyHeader:
        data = b""
        while True:
            result = parse(data)
            if result is not None:
                return result[0]
            more = await reader.read(1) if len(data) < 16 else await reader.read(_wanted(data))
            if not more:
                raise ProxyError("connection closed inside the PROXY header")
            data += more

    return await asyncio.wait_for(run(), timeout)


def _wanted(data: bytes) -> int:
    """How many bytes can be read without going past the header."""
    if data.startswith(b"\r\n\r\n") and len(data) >= 16:
        return max(1, 16 + int.from_bytes(data[14:16], "big") - len(data))
    return 1
