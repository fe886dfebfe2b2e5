"""Message bytes for FETCH: lazy per-message access and streamed byte ranges.

A FETCH names many items for one message; some need nothing but the index
(FLAGS, UID, RFC822.SIZE), some the cached structure (ENVELOPE, BODYSTRUCTURE), some the
bytes. :class:`MessageAccess` opens, reads, parses and looks up the cache at most once per
message and only when an item asks, so ``FETCH 1:* (FLAGS)`` over 100,000 messages never
touches a message file, and a 50 MB ``BODY[]`` is never read whole: big sections become
:class:`~mailhub.imap.proto.values.BodyRef` pieces streamed from ``MessageSource.chunks``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from mailhub.imap.render.cache import (
    CACHE_KEY,
    CacheStore,
    StructureValues,
    pack,
    render_all,
    unpack,
)
from mailhub.mime.structure import Part, parse
from mailhub.store.api import MessageSource

__all__ = ["STREAM_THRESHOLD", "MessageAccess", "range_chunks", "read_prefix", "read_span"]

# Messages up to this size are read whole once and sliced (one read beats many range
# reads); larger ones are streamed and answered from the cached part tree.
STREAM_THRESHOLD = 256 * 1024
# HEADER.FIELDS and header-only SEARCH keys read at most this much looking for the header end.
MAX_HEADER_READ = 4 * 1024 * 1024


class MessageOpener(CacheStore, Protocol):
    """The part of ``store.api.Mailbox`` FETCH and SEARCH read messages through."""

    async def open_message(self, uid: int) -> MessageSource: ...


async def range_chunks(
    source: MessageSource, start: int, end: int, *, nul_safe: bool = False
) -> AsyncIterator[bytes]:
    """Exactly ``end - start`` bytes of ``source`` from ``start``, in pieces.

    ``nul_safe`` turns NUL into 0x80 (BODY[] is a plain literal, where NUL is illegal;
    Dovecot does the same), keeping the length. Short sources are padded with spaces so the
    announced literal size always holds: a file changed under us must not desynchronise
    the connection.
    """
    pos = 0
    want = end - start
    sent = 0
    if want <= 0:
        return
    async for chunk in source.chunks():
        clen = len(chunk)
        if pos + clen <= start:
            pos += clen
            continue
        lo = max(start - pos, 0)
        hi = min(end - pos, clen)
        piece = chunk[lo:hi]
        pos += clen
        if piece:
            if nul_safe and b"\x00" in piece:
                piece = piece.replace(b"\x00", b"\x80")
            sent += len(piece)
            yield piece
        if pos >= end:
            break
    if sent < want:
        yield b" " * (want - sent)


async def read_span(source: MessageSource, start: int, end: int) -> bytes:
    """Bytes ``start..end`` collected from the stream (bounded by the span, not the file)."""
    out = bytearray()
    pos = 0
    if end <= start:
        return b""
    async for chunk in source.chunks():
        clen = len(chunk)
        if pos + clen > start:
            out += chunk[max(start - pos, 0) : min(end - pos, clen)]
        pos += clen
        if pos >= end:
            break
    return bytes(out)


async def read_prefix(source: MessageSource, limit: int = MAX_HEADER_READ) -> bytes:
    """The message's header block (up to and including the blank line), read in chunks
    and stopped as soon as it ends: SEARCH SUBJECT must not read a 50 MB attachment."""
    buf = bytearray()
    async for chunk in source.chunks():
        buf += chunk
        if buf.startswith(b"\r\n"):
            return b"\r\n"
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            return bytes(buf[: end + 4])
        if len(buf) >= limit:
            break
    return bytes(buf)


class MessageAccess:
    """Lazy access to one message's bytes, part tree and cached structure values."""

    __slots__ = (
        "_cache_checked",
        "_data",
        "_root",
        "_source",
        "_values",
        "deferred",
        "mailbox",
        "size",
        "uid",
    )

    def __init__(
        self,
        mailbox: MessageOpener,
        uid: int,
        size: int,
        prefetched: StructureValues | None = None,
        cache_checked: bool = False,
        deferred: dict[int, bytes] | None = None,
    ) -> None:
        """``prefetched``: the cache entry if the caller already looked it up
        (``cache_checked``: it did, so a None means a miss - do not ask again).
        ``deferred``: where to put cache fills for the caller to write in one transaction."""
        self.mailbox = mailbox
        self.uid = uid
        self.size = size
        self._source: MessageSource | None = None
        self._data: bytes | None = None
        self._root: Part | None = None
        self._values: StructureValues | None = prefetched
        self._cache_checked = cache_checked or prefetched is not None
        self.deferred = deferred

    @property
    def small(self) -> bool:
        """Whether the message is read whole rather than streamed."""
        return self.size <= STREAM_THRESHOLD

    async def source(self) -> MessageSource:
        """The open message (raises ``MailError(EXPUNGED)`` when it is gone)."""
        if self._source is None:
            self._source = await self.mailbox.open_message(self.uid)
        return self._source

    async def data(self) -> bytes:
        """The whole message (only for small messages, or when a value needs it all)."""
        if self._data is None:
            self._data = await (await self.source()).read()
        return self._data

    async def values(self) -> StructureValues:
        """ENVELOPE / BODY / BODYSTRUCTURE wire bytes and the part tree, from the index cache."""
        if self._values is None:
            if not self._cache_checked:
                self._cache_checked = True
                self._values = unpack(await self.mailbox.get_cached(self.uid, CACHE_KEY))
            if self._values is None:
                self._values = render_all(await self.data())
                if self.deferred is not None:
                    self.deferred[self.uid] = pack(self._values)
                else:
                    await self.mailbox.set_cached(self.uid, CACHE_KEY, pack(self._values))
        return self._values

    async def root(self) -> Part:
        """The part tree with offsets: parsed from the bytes of a small message already read,
        else taken from the cache (rendered once on a miss)."""
        if self._root is None:
            if self._values is None and (self._data is not None or self.small):
                self._root = parse(await self.data())
            else:
                tree = (await self.values()).part_tree()
                self._root = tree if tree is not None else parse(await self.data())
        return self._root

    async def span(self, start: int, end: int) -> bytes:
        """Bytes ``start..end`` without reading a big message whole."""
        if self._data is not None or self.small:
            return (await self.data())[start:end]
        return await read_span(await self.source(), start, end)
