"""Per-IP connection limits, so one client (or one attacker) cannot use up the server.

A frontend calls ``try_acquire(ip)`` when it accepts a connection and refuses it (IMAP
``* BYE``, POP3 ``-ERR [SYS/TEMP]``, SMTP 421) when that returns False; it calls ``release(ip)``
exactly once when the connection ends, whatever the reason (use :meth:`hold` to get that
right). Everything runs on the event loop thread, so plain dicts suffice.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


def client_key(ip: str) -> str:
    """The key an address is counted under: IPv6 clients by /64 (one household or phone
    usually holds a whole /64 and can pick any address in it), IPv4 per address."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        if addr.is_loopback:
            return str(addr)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


class ConnectionLimiter:
    """Counts open connections per client and caps them at ``max_per_ip``."""

    def __init__(self, max_per_ip: int, max_total: int | None = None) -> None:
        self.max_per_ip = max_per_ip
        self.max_total = max_total
        self._counts: dict[str, int] = {}
        self._total = 0

    def try_acquire(self, ip: str) -> bool:
        """Count a new connection from ``ip``; False (and nothing counted) when over a limit."""
        key = client_key(ip)
        current = self._counts.get(key, 0)
        if current >= self.max_per_ip:
            log.warning("refusing connection from %s: %d connections open", ip, current)
            return False
        if self.max_total is not None and self._total >= self.max_total:
            log.warning("refusing connection from %s: server full (%d)", ip, self._total)
            return False
        self._counts[key] = current + 1
        self._total += 1
        return True

    def release(self, ip: str) -> None:
        """Forget one connection from ``ip`` (extra releases are ignored, never negative)."""
        key = client_key(ip)
        current = self._counts.get(key, 0)
        if current <= 0:
            return
        if current == 1:
            del self._counts[key]
        else:
            self._counts[key] = current - 1
        self._total -= 1

    @contextmanager
    def hold(self, ip: str) -> Iterator[bool]:
        """``with limiter.hold(ip) as ok:`` acquires, and releases on exit if it acquired."""
        ok = self.try_acquire(ip)
        try:
            yield ok
        finally:
            if ok:
                self.release(ip)

    def count(self, ip: str) -> int:
        return self._counts.get(client_key(ip), 0)

    @property
    def total(self) -> int:
        return self._total
