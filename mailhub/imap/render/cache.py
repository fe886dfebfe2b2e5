"""ENVELOPE, BODY and BODYSTRUCTURE rendered once per message and kept in the store index.

Rendering needs the whole message parsed; a FETCH ENVELOPE over 10,000 messages must not
re-read 10,000 files. So the three values are rendered together (one parse), with the part
tree's offsets for BODY[section] (streamed with ``read_range``), and stored as one compact
blob under :data:`CACHE_KEY` with ``Mailbox.set_cached``; later FETCHes unpack it and send
the bytes as they are. The blob starts with a format tag; bumping :data:`_MAGIC` when the
rendering changes makes old entries miss and be rebuilt.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from mailhub.imap.render.bodystructure import body, bodystructure
from mailhub.imap.render.envelope import envelope
from mailhub.mime.structure import Part, dumps, loads, parse

CACHE_KEY = "imap.structure"
_MAGIC = b"MHS2"
# An entry holding only the ENVELOPE, written by a FETCH that asked for nothing else (the
# header alone is parsed); :func:`unpack` treats it as a miss, so BODYSTRUCTURE replaces it.
_ENVELOPE_MAGIC = b"MHE1"
_LEN = struct.Struct(">IIII")


@dataclass(frozen=True, slots=True)
class StructureValues:
    """The wire bytes of FETCH ENVELOPE, BODY and BODYSTRUCTURE for one message, and the
    serialised part tree (:func:`mailhub.mime.structure.dumps`) for BODY[section]/BINARY."""

    envelope: bytes
    body: bytes
    bodystructure: bytes
    tree: bytes = b""

    def part_tree(self) -> Part | None:
        """The part tree with offsets, without re-reading the message (None if unusable)."""
        return loads(self.tree) if self.tree else None


class CacheStore(Protocol):
    """The part of ``mailhub.store.api.Mailbox`` this module uses."""

    async def get_cached(self, uid: int, key: str) -> bytes | None: ...

    async def set_cached(self, uid: int, key: str, value: bytes) -> None: ...

    async def get_cached_many(self, uids: Iterable[int], key: str) -> dict[int, bytes]: ...

    async def set_cached_many(self, key: str, values: Mapping[int, bytes]) -> None: ...


def render_all(data: bytes) -> StructureValues:
    """Parse ``data`` once and render all three values."""
    root = parse(data)
    return StructureValues(envelope(root.fields), body(root), bodystructure(root), dumps(root))


def pack(values: StructureValues) -> bytes:
    """Serialise for the index: magic, four lengths, then the four values."""
    parts = (values.envelope, values.body, values.bodystructure, values.tree)
    return _MAGIC + _LEN.pack(*(len(x) for x in parts)) + b"".join(parts)


def unpack(blob: bytes | None) -> StructureValues | None:
    """Inverse of :func:`pack`; None for a missing, foreign-version or damaged blob."""
    if not blob or not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _LEN.size:
        return None
    lengths = _LEN.unpack_from(blob, len(_MAGIC))
    pos = len(_MAGIC) + _LEN.size
    if pos + sum(lengths) != len(blob):
        return None
    out: list[bytes] = []
    for n in lengths:
        out.append(blob[pos : pos + n])
        pos += n
    return StructureValues(out[0], out[1], out[2], out[3])


def pack_envelope(envelope_bytes: bytes) -> bytes:
    """An envelope-only cache entry (see :func:`envelope_of`)."""
    return _ENVELOPE_MAGIC + envelope_bytes


def envelope_of(blob: bytes | None) -> bytes | None:
    """The ENVELOPE of a full or an envelope-only entry; None for a miss."""
    if not blob:
        return None
    if blob.startswith(_ENVELOPE_MAGIC):
        return blob[len(_ENVELOPE_MAGIC) :]
    values = unpack(blob)
    return None if values is None else values.envelope


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
