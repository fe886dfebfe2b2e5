"""PROXY protocol v1/v2 header parser (sans-I/O) and its stream reader."""

from __future__ import annotations

import asyncio
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhub.net.proxy import (
    V2_SIGNATURE,
    ProxyError,
    ProxyHeader,
    encode_v1,
    encode_v2,
    is_trusted,
    parse,
)
from mailhub.net.stream import LineTooLong, read_line, read_proxy_header

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
port = st.integers(0, 65535)


def test_v1_examples() -> None:
    line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 143\r\nA1 CAPABILITY\r\n"
    header, used = parse(line)  # type: ignore[misc]
    assert header == ProxyHeader(1, ("192.0.2.1", 56324), ("198.51.100.2", 143))
    assert line[used:] == b"A1 CAPABILITY\r\n"
    header, _ = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n")  # type: ignore[misc]
    assert header.source == ("2001:db8::1", 1)
    assert parse(b"PROXY UNKNOWN\r\n") == (ProxyHeader(1, None, None), 15)
    assert parse(b"PROXY TCP4 1.2.3.4") is None


@pytest.mark.parametrize(
    "bad",
    [
        b"USER bob\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        b"PROXY TCP4 ::1 ::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        b"PROXY " + b"x" * 200,
        V2_SIGNATURE + bytes([0x11, 0x11, 0, 12]) + bytes(12),  # version 1 in a v2 header
        V2_SIGNATURE + bytes([0x2F, 0x11, 0, 12]) + bytes(12),  # unknown command
        V2_SIGNATURE + bytes([0x21, 0x11, 0, 4]) + bytes(4),  # address block too short
        V2_SIGNATURE + bytes([0x21, 0x11, 0xFF, 0xFF]),  # absurd length
        b"\r\n\r\n\x00\r\nQUIZ\n" + bytes(8),
    ],
)
def test_rejects(bad: bytes) -> None:
    with pytest.raises(ProxyError):
        parse(bad)


def test_v2_local_and_unspec() -> None:
    assert parse(encode_v2(None, None)) == (ProxyHeader(2, None, None), 16)
    unix = V2_SIGNATURE + bytes([0x21, 0x31]) + struct.pack("!H", 216) + bytes(216)
    assert parse(unix) == (ProxyHeader(2, None, None), 232)


@given(st.one_of(st.tuples(ipv4, ipv4), st.tuples(ipv6, ipv6)), port, port, st.binary(max_size=40))
def test_roundtrip_and_incremental(
    addrs: tuple[str, str], sport: int, dport: int, rest: bytes
) -> None:
    src, dst = (addrs[0], sport), (addrs[1], dport)
    for version, wire in ((1, encode_v1(src, dst)), (2, encode_v2(src, dst, b"\x04\x00\x01x"))):
        header, used = parse(wire + rest)  # type: ignore[misc]
        assert header == ProxyHeader(version, src, dst)
        assert used == len(wire)
        for cut in range(len(wire)):
            assert parse(wire[:cut]) is None


@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_proxy_error(data: bytes) -> None:
    try:
        result = parse(data)
    except ProxyError:
        return
    if result is not None:
        _header, used = result
        assert 0 < used <= len(data)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_after_v2_signature(data: bytes) -> None:
    wire = V2_SIGNATURE + data
    try:
        result = parse(wire)
    except ProxyError:
        return
    if result is None:
        assert len(wire) < 16 + int.from_bytes(wire[14:16], "big") or len(wire) < 16
    else:
        header, used = result
        assert used == 16 + int.from_bytes(wire[14:16], "big")
        assert header.version == 2


def test_trusted() -> None:
    trusted = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "not an address"]
    assert is_trusted("10.1.2.3", trusted)
    assert is_trusted("::ffff:10.1.2.3", trusted)
    assert is_trusted("192.0.2.7", trusted) and not is_trusted("192.0.2.8", trusted)
    assert is_trusted("2001:db8::5", trusted)
    assert not is_trusted("127.0.0.1", []) and not is_trusted("garbage", trusted)


# -- stream helpers, over a real loopback socket ------------------------------------------------


async def _pair(payload: bytes) -> asyncio.StreamReader:
    got: asyncio.Future[asyncio.StreamReader] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.set_result(reader)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=64)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    writer.close()
    reader = await got
    server.close()
    return reader


def test_read_proxy_header_stops_at_the_header() -> None:
    async def run() -> None:
        for wire in (
            encode_v1(("192.0.2.1", 5), ("192.0.2.2", 143)),
            encode_v2(("192.0.2.1", 5), ("192.0.2.2", 143), b"\x01\x00\x02h2"),
        ):
            reader = await _pair(wire + b"A1 NOOP\r\n")
            header = await read_proxy_header(reader, 5)
            assert header.source == ("192.0.2.1", 5)
            assert await reader.readline() == b"A1 NOOP\r\n"
        reader = await _pair(b"A1 NOOP\r\n")
        with pytest.raises(ProxyError):
            await read_proxy_header(reader, 5)
        reader = await _pair(b"PROXY TCP4 1.2")
        with pytest.raises(ProxyError):
            await read_proxy_header(reader, 5)

    asyncio.run(run())


def test_read_line_limit_keeps_stream_in_sync() -> None:
    async def run() -> None:
        reader = await _pair(b"short\r\n" + b"x" * 500 + b"\r\nnext\r\npartial")
        assert await read_line(reader, 100) == b"short\r\n"
        with pytest.raises(LineTooLong):
            await read_line(reader, 100)
        assert await read_line(reader, 100) == b"next\r\n"
        assert await read_line(reader, 100) == b"partial"
        assert await read_line(reader, 100) == b""

    asyncio.run(run())
