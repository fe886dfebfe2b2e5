"""Sans-I/O parser for the PROXY protocol header, versions 1 and 2 (HAProxy's proxy-protocol.txt).

Behind a load balancer or a TLS-terminating proxy, every connection comes from the proxy's
address; per-IP limits, failed-login logs (fail2ban) and ``Received:`` headers then name the
wrong client. A proxy configured with ``send-proxy``/``send-proxy-v2`` prefixes each connection
with a header carrying the real addresses. Anyone can send such a header, so it is accepted
only from peers in ``settings.trusted_proxies`` (:func:`is_trusted`), and from them it is
required: a trusted peer that sends no header is a configuration error, not a client.

No sockets here: :func:`parse` takes the bytes received so far and returns ``None`` (need more),
or the header and how many bytes it used. Anything malformed raises :class:`ProxyError`.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (spec section 2.1)
V2_MAX_PAYLOAD = 4096  # addresses plus TLVs; real proxies send well under 300 bytes

_FAMILIES = {0x1: ("ipv4", 4), 0x2: ("ipv6", 16)}


class ProxyError(ValueError):
    """The bytes are not a valid PROXY header (the connection must be closed)."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What the proxy says. ``source``/``dest`` are None for LOCAL (health checks) and
    UNKNOWN/unsupported families: keep the socket's own addresses then."""

    version: int
    source: tuple[str, int] | None
    dest: tuple[str, int] | None


def is_trusted(peer_ip: str, trusted: Iterable[str]) -> bool:
    """Whether ``peer_ip`` is one of the configured proxies (addresses or networks)."""
    try:
        ip = ipaddress.ip_address(peer_ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for entry in trusted:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def parse(data: bytes) -> tuple[ProxyHeader, int] | None:
    """Parse a header at the start of ``data``: ``(header, bytes used)`` or None for more."""
    if not data:
        return None
    if data[:12] == V2_SIGNATURE[: len(data[:12])] and data[:1] == b"\r":
        if len(data) < 16:
            return None
        return _parse_v2(data)
    if data[:6] == V1_PREFIX[: len(data[:6])] and data:
        if len(data) < 6:
            return None
        return _parse_v1(data)
    raise ProxyError("no PROXY protocol header from a trusted proxy")


def _port(text: bytes) -> int:
    if not text.isdigit() or (len(text) > 1 and text.startswith(b"0")) or len(text) > 5:
        raise ProxyError("bad port in PROXY v1 header")
    port = int(text)
    if port > 65535:
        raise ProxyError("bad port in PROXY v1 header")
    return port


def _parse_v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX or b"\n" in data[:V1_MAX]:
            raise ProxyError("PROXY v1 header too long or without CRLF")
        return None
    parts = data[:end].split(b" ")
    used = end + 2
    if len(parts) >= 2 and parts[1] == b"UNKNOWN":
        return ProxyHeader(1, None, None), used
    if len(parts) != 6 or parts[1] not in (b"TCP4", b"TCP6"):
        raise ProxyError("malformed PROXY v1 header")
    try:
        src = ipaddress.ip_address(parts[2].decode("ascii"))
        dst = ipaddress.ip_address(parts[3].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise ProxyError("bad address in PROXY v1 header") from None
    want = 4 if parts[1] == b"TCP4" else 6
    if src.version != want or dst.version != want:
        raise ProxyError("address family mismatch in PROXY v1 header")
    return ProxyHeader(1, (str(src), _port(parts[4])), (str(dst), _port(parts[5]))), used


def _parse_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    if data[:12] != V2_SIGNATURE:
        raise ProxyError("bad PROXY v2 signature")
    ver_cmd, fam, length = data[12], data[13], struct.unpack("!H", data[14:16])[0]
    if ver_cmd >> 4 != 2:
        raise ProxyError("unsupported PROXY protocol version")
    command = ver_cmd & 0x0F
    if command not in (0, 1):
        raise ProxyError("unknown PROXY v2 command")
    if length > V2_MAX_PAYLOAD:
        raise ProxyError("PROXY v2 header too long")
    if len(data) < 16 + length:
        return None
    used = 16 + length
    payload = data[16:used]
    if command == 0:  # LOCAL: the proxy's own connection (health check)
        return ProxyHeader(2, None, None), used
    family, transport = fam >> 4, fam & 0x0F
    if transport not in (0, 1, 2):
        raise ProxyError("unknown PROXY v2 transport")
    if family not in _FAMILIES or transport != 1:
        # UNSPEC, AF_UNIX or UDP: nothing useful, keep the socket's addresses (spec 2.2).
        if family > 3:
            raise ProxyError("unknown PROXY v2 address family")
        return ProxyHeader(2, None, None), used
    _, size = _FAMILIES[family]
    if length < 2 * size + 4:
        raise ProxyError("PROXY v2 address block too short")
    src_ip = ipaddress.ip_address(payload[:size])
    dst_ip = ipaddress.ip_address(payload[size : 2 * size])
    sport, dport = struct.unpack("!HH", payload[2 * size : 2 * size + 4])
    return ProxyHeader(2, (str(src_ip), sport), (str(dst_ip), dport)), used


def encode_v1(source: tuple[str, int], dest: tuple[str, int]) -> bytes:
    """A v1 header (what ``send-proxy`` writes); used by tests and health checkers."""
    ip = ipaddress.ip_address(source[0])
    proto = "TCP4" if ip.version == 4 else "TCP6"
    return f"PROXY {proto} {source[0]} {dest[0]} {source[1]} {dest[1]}\r\n".encode("ascii")


def encode_v2(
    source: tuple[str, int] | None, dest: tuple[str, int] | None, tlvs: bytes = b""
) -> bytes:
    """A v2 header (``send-proxy-v2``); LOCAL when ``source`` is None."""
    if source is None or dest is None:
        return V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", len(tlvs)) + tlvs
    src = ipaddress.ip_address(source[0])
    dst = ipaddress.ip_address(dest[0])
    fam = 0x11 if src.version == 4 else 0x21
    body = src.packed + dst.packed + struct.pack("!HH", source[1], dest[1]) + tlvs
    return V2_SIGNATURE + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body
