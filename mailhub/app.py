"""Composition root: builds the store, accounts, TLS and listeners, and runs them.

This is the only module (with the CLI) that names the concrete store backend. Each frontend
package exposes ``async def start(ctx: ServerContext) -> list[asyncio.AbstractServer]`` in its
``server`` module; ``serve`` starts every frontend whose port is not 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailhub.config import Settings
from mailhub.store.api import Mailstore

if TYPE_CHECKING:
    from mailhub.auth.directory import AccountDirectory
    from mailhub.net.limits import ConnectionLimiter
    from mailhub.net.tls import TlsProvider


@dataclass
class ServerContext:
    """What every listener shares: settings, the one store (and its change bus), accounts."""

    settings: Settings
    store: Mailstore
    directory: AccountDirectory
    tls: TlsProvider
    limiter: ConnectionLimiter
