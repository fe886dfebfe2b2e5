"""ENVELOPE, BODY and BODYSTRUCTURE rendered once per message and kept in the store index.

Rendering needs the whole message parsed; a FETCH ENVELOPE over 10,000 messages must not
re-read 10,000 files. So the three values are rendered together (one parse) and stored as one
compact blob under :data:`CACHE_KEY` with ``Mailbox.set_cached``; later FETCHes unpack it
and send the bytes as they are. The blob starts with a format tag; bumping :data:`_MAGIC`
when the rendering changes makes old entries miss and be rebuilt.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from mailhub.imap.render.bodystructure import body, bodystructure
from mailhub.imap.render.envelope import envelope
from mailhub.mime.structure import parse

CACHE_KEY = "imap.structure"
_MAGIC = b"MHS1"
_LEN = struct.Struct(">III")


@dataclass(frozen=True, slots=True)
class StructureValues:
    """The wire bytes of FETCH ENVELOPE, BODY and BODYSTRUCTURE for one message."""

    envelope: bytes
    body: bytes
    bodystructure: bytes


class CacheStore(Protocol):
    """The part of ``mailhub.store.api.Mailbox`` this module uses."""

    async def get_cached(self, uid: int, key: str) -> bytes | None: ...

    async def set_cached(self, uid: int, key: str, value: bytes) -> None: ...


def render_all(data: bytes) -> StructureValues:
    """Parse ``data`` once and render all three values."""
    root = parse(data)
    return StructureValues(envelope(root.fields), body(root), bodystructure(root))


def pack(values: StructureValues) -> bytes:
    """Serialise for the index: magic, three lengths, then the three values."""
    e, b, s = values.envelope, values.body, values.bodystructure
    return _MAGIC + _LEN.pack(len(e), len(b), len(s)) + e + b + s


def unpack(blob: bytes | None) -> StructureValues | None:
    """Inverse of :func:`pack`; None for a missing, foreign-version or damaged blob."""
    if not blob or not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _LEN.size:
        return None
    le, lb, ls = _LEN.unpack_from(blob, len(_MAGIC))
    start = len(_MAGIC) + _LEN.size
    if start + le + lb + ls != len(blob):
        return None
    e = blob[start : start + le]
    b = blob[start + le : start + le + lb]
    return StructureValues(e, b, blob[start + le + lb :])


async def structure_values(
    store: CacheStore, uid: int, load: Callable[[], Awaitable[bytes]]
) -> StructureValues:
    """Cached values for ``uid``, rendering (and caching) them from ``load()`` on a miss.

    Typical use in FETCH::

        vals = await structure_values(mailbox, uid, lambda: source.read())
    """
    cached = unpack(await store.get_cached(uid, CACHE_KEY))
    if cached is not None:
        return cached
    values = render_all(await load())
    await store.set_cached(uid, CACHE_KEY, pack(values))
    return values
