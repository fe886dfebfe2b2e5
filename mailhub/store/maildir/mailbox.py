"""The async face of an open Maildir folder (implements ``store.api.Mailbox``).

Blocking work runs on worker threads (``asyncio.to_thread``; the two delivery steps on the
store's own lean pool, see ``_threads``): never a whole protocol
command, only the folder's own file and index calls. After each mutation the change records
are published on the bus from the event loop thread (the bus is not thread-safe by design).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from mailhub.errors import MailError, MailErrorKind
from mailhub.store import flags as flagmod
from mailhub.store.api import PreparedMessage
from mailhub.store.changes import Change, FlagsChanged, MessagesAdded, MessagesExpunged
from mailhub.store.maildir import _fs, filename
from mailhub.store.maildir._threads import ThreadRunner
from mailhub.store.maildir.cache_memo import MEMO
from mailhub.store.maildir.folder import FolderCore, Prepared, crlf_size_of, to_lf
from mailhub.store.maildir.state import base_of
from mailhub.store.model import (
    ChangesSince,
    MailboxStatus,
    MessageInfo,
    NewMessage,
    Snapshot,
)

if TYPE_CHECKING:
    from mailhub.store.maildir.account import MaildirAccount

log = logging.getLogger(__name__)

# Writes the files of a batch (MULTIAPPEND, a delivery to many recipients) in parallel.
_WRITERS = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="maildir-write")
# The two steps of a pipelined delivery (``prepare``/``commit``): lean threads, see _threads.
_PREPARERS = ThreadRunner(8, "maildir-prepare")
_COMMITTERS = ThreadRunner(4, "maildir-commit")

# Below this size a message is read on the event loop: a thread hop costs more than the read
# (measured by bench/store.py's "read" figures).
INLINE_READ_LIMIT = 128 * 1024
# Cache lookups of up to this many messages run on the event loop (see get_cached_many).
INLINE_CACHE_ROWS = 256
# Cache fills of up to this many messages are committed on the event loop when possible.
INLINE_CACHE_WRITE_ROWS = 256
# STOREs of up to this many messages run on the event loop when no lock is in the way.
INLINE_STORE_UIDS = 16


def to_crlf(data: bytes) -> bytes:
    """Every line ending as CRLF, whatever the file holds (LF, CRLF or a mix)."""
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    return data.replace(b"\n", b"\r\n")


class MaildirMessage:
    """A message's bytes in CRLF form, read from the file each time (files can be renamed)."""

    def __init__(self, mailbox: MaildirMailbox, uid: int, size: int) -> None:
        self._mailbox = mailbox
        self._uid = uid
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    async def _raw(self) -> bytes:
        core = self._mailbox.core
        try:
            path = core.path_of(self._uid)
            if self._size <= INLINE_READ_LIMIT:
                return _fs.read_small(path, self._size)
            return await asyncio.to_thread(_fs.read_file, path)
        except FileNotFoundError:
            path = await asyncio.to_thread(core.relocate, self._uid)
            try:
                return await asyncio.to_thread(_fs.read_file, path)
            except FileNotFoundError:
                raise MailError(
                    MailErrorKind.EXPUNGED, f"message UID {self._uid} was expunged"
                ) from None

    async def read(self) -> bytes:
        return to_crlf(await self._raw())

    async def read_range(self, offset: int, length: int | None = None) -> bytes:
        data = await self.read()
        end = len(data) if length is None else offset + length
        return data[offset:end]

    async def chunks(self, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        if self._size <= INLINE_READ_LIMIT:
            data = await self.read()
            for start in range(0, len(data), chunk_size):
                yield data[start : start + chunk_size]
            return
        path = self._mailbox.core.path_of(self._uid)
        handle = await asyncio.to_thread(open, path, "rb")
        try:
            carry = b""
            while True:
                block = await asyncio.to_thread(handle.read, chunk_size)
                if not block:
                    break
                block = carry + block
                # Keep a trailing CR back: its LF may start the next block.
                carry = b"\r" if block.endswith(b"\r") else b""
                if carry:
                    block = block[:-1]
                yield to_crlf(block)
            if carry:
                yield carry
        finally:
            handle.close()


_READY, _COMMITTING, _COMMITTED, _DISCARDED = "ready", "committing", "committed", "discarded"


class PreparedFile:
    """A delivery written and fsynced in the folder's ``tmp/``, waiting for ``commit``
    (implements ``store.api.PreparedMessage``)."""

    __slots__ = ("item", "mailbox", "state")

    def __init__(self, mailbox: MaildirMailbox, item: Prepared) -> None:
        self.mailbox = mailbox
        self.item = item
        self.state = _READY

    @property
    def size(self) -> int:
        return self.item.size


def _write_error(exc: OSError) -> MailError:
    if _fs.is_disk_full(exc):
        return MailError(MailErrorKind.TEMP, "the mail disk is full")
    return MailError(MailErrorKind.TEMP, f"could not store the message: {exc}")


def _remove(item: Prepared) -> None:
    """A file prepared for a caller that went away: nobody will commit it."""
    with contextlib.suppress(OSError):
        os.unlink(item.tmp_path)


class MaildirMailbox:
    """One open folder of an account, shared by every session of this process."""

    def __init__(self, account: MaildirAccount, name: str, path: Path) -> None:
        self._account = account
        self._name = name
        self.core = FolderCore(path, name)
        self.dirty = False  # the watcher saw names change; sync before the next snapshot
        self._pending: set[str] = set()
        self._sync_lock = asyncio.Lock()
        self._scheduled: asyncio.TimerHandle | None = None
        self._sync_task: asyncio.Task[Sequence[Change]] | None = None
        self.watches: list[int] = []
        self._closed = False
        self._commits: set[asyncio.Task[list[MessageInfo]]] = set()  # strong references

    @property
    def name(self) -> str:
        return self._name

    @property
    def uidvalidity(self) -> int:
        return self.core.uidvalidity

    def _renamed(self, new_name: str, new_path: Path) -> None:
        self._name = new_name
        self.core.mailbox = new_name
        self.core.path = new_path

    def _publish(self, changes: Sequence[Change]) -> None:
        if changes:
            self._account.bus.publish(self._account.address, changes)

    async def open(self) -> None:
        self._closed = False
        self._publish(await asyncio.to_thread(self.core.open))

    async def close(self) -> None:
        """Stop background syncs, then close the index (server shutdown, folder removed)."""
        self._closed = True
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        task, self._sync_task = self._sync_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(self.core.close)

    # ------------------------------------------------------------------------ views
    def on_name_event(self, sub: str, name: str, appeared: bool = False) -> None:
        """Watcher callback (event loop thread): remember the name, sync shortly after."""
        if self._closed:
            return
        if name:
            rel = f"{sub}/{name}"
            if appeared and rel in self.core.arriving:
                return  # our own write, still in its transaction: memory will have it
            uid = self.core.by_base.get(base_of(rel))
            if uid is not None:
                current = self.core.names.get(uid)
                if appeared and current == rel:
                    return  # our own write: memory already has this name, nothing to do
                if not appeared and current is not None and current != rel:
                    # the old name of our own rename (a flag STORE): the file lives on under
                    # the name memory has, and an outside change to THAT name is still seen
                    return
            self._pending.add(rel)
        else:
            self.core.needs_full_scan = True
        self.dirty = True
        if self._scheduled is None:
            loop = asyncio.get_running_loop()
            self._scheduled = loop.call_later(0.02, self._start_background_sync)

    def _start_background_sync(self) -> None:
        self._scheduled = None
        self._sync_task = asyncio.get_running_loop().create_task(self._background_sync())

    async def _background_sync(self) -> Sequence[Change]:
        try:
            return await self.sync()
        except Exception:  # a folder deleted under us, an I/O error: log, keep serving
            log.exception("background sync of %s for %s failed", self._name, self._account.address)
            return []

    async def sync(self) -> Sequence[Change]:
        async with self._sync_lock:
            self.dirty = False
            names, self._pending = self._pending, set()
            changes = await asyncio.to_thread(self.core.refresh, names)
        self._publish(changes)
        return changes

    async def snapshot(self) -> Snapshot:
        if self.dirty or self._account.store.polling:
            await self._maybe_sync()
        return self.core.snapshot()

    async def _maybe_sync(self) -> None:
        if self._account.store.polling and not self.dirty:
            if not await asyncio.to_thread(self.core.dirs_changed_since_scan):
                await self.sync()  # other processes' index commits
                return
            self.core.needs_full_scan = True
        await self.sync()

    async def status(self) -> MailboxStatus:
        """From the folder's counters, which flag changes keep up to date: clients poll
        STATUS, and a big folder is worth not walking each time."""
        if self.dirty or self._account.store.polling:
            await self._maybe_sync()  # catches up with outside changes first
        return self.core.status()

    # ---------------------------------------------------------------------- writes
    async def append(self, messages: Sequence[NewMessage]) -> list[MessageInfo]:
        return await self._append(messages, into_new=False)

    async def deliver(self, messages: Sequence[NewMessage]) -> list[MessageInfo]:
        """Like ``append`` but files land in ``new/`` (what other Maildir readers expect)."""
        return await self._append(messages, into_new=True)

    async def _append(self, messages: Sequence[NewMessage], into_new: bool) -> list[MessageInfo]:
        if not messages:
            return []
        lf = [to_lf(m.data) for m in messages]
        await self._account.check_quota(sum(len(d) for d in lf), len(lf))
        infos = await asyncio.to_thread(self._append_blocking, messages, lf, into_new)
        self._account.record_usage(sum(len(d) for d in lf), len(lf))
        self._publish([MessagesAdded(self._name, tuple(infos))])
        return infos

    def _append_blocking(
        self, messages: Sequence[NewMessage], lf: list[bytes], into_new: bool
    ) -> list[MessageInfo]:
        now = time.time()
        prepared = [
            self._prepared_for(msg, data, now) for msg, data in zip(messages, lf, strict=True)
        ]
        try:
            if len(prepared) == 1:
                _fs.write_new_file(prepared[0].tmp_path, lf[0], prepared[0].internal_date)
            else:
                # The fsyncs of a batch overlap: the disk flushes them together. Wait for all
                # before looking at errors, so cleanup never races a write still running.
                futures = [
                    _WRITERS.submit(_fs.write_new_file, p.tmp_path, d, p.internal_date)
                    for p, d in zip(prepared, lf, strict=True)
                ]
                concurrent.futures.wait(futures)
                for future in futures:
                    future.result()
            infos = self.core.add_prepared(prepared, into_new)
        except OSError as exc:
            for item in prepared:
                with contextlib.suppress(FileNotFoundError):
                    item.tmp_path.unlink()
            raise _write_error(exc) from exc
        self._fsync_targets(infos)
        return infos

    def _prepared_for(self, message: NewMessage, lf: bytes, now: float) -> Prepared:
        return Prepared(
            self.core.path / "tmp" / filename.unique(),
            len(lf),
            crlf_size_of(lf),
            flagmod.normalise(message.flags),
            message.internal_date if message.internal_date is not None else now,
        )

    def _fsync_targets(self, infos: list[MessageInfo]) -> None:
        """Only the directories the files were renamed into need their entries made durable."""
        for sub in {self.core.names.get(i.uid, "cur/").partition("/")[0] for i in infos}:
            _fs.fsync_dir(self.core.path / sub)

    # ----------------------------------------------- deliveries in two steps (pipelining)
    async def prepare(self, message: NewMessage) -> PreparedFile:
        """Write and fsync ``message`` in ``tmp/`` on a writer thread (no folder lock, no
        index): many of these run at once, and while the folder commits earlier ones."""
        # A cancelled caller cannot stop a running write: the file is then removed once written.
        item = await _PREPARERS.run(partial(self._prepare_blocking, message), orphan=_remove)
        return PreparedFile(self, item)

    def _prepare_blocking(self, message: NewMessage) -> Prepared:
        data = to_lf(message.data)
        item = self._prepared_for(message, data, time.time())
        try:
            _fs.write_new_file(item.tmp_path, data, item.internal_date)
        except OSError as exc:  # write_new_file removed what it had written
            raise _write_error(exc) from exc
        return item

    async def commit(
        self, prepared: Sequence[PreparedMessage], *, into_new: bool = True
    ) -> list[MessageInfo]:
        files = [self._own(p) for p in prepared]
        if not files:
            return []
        for f in files:
            if f.state != _READY:
                raise MailError(MailErrorKind.NOTPOSSIBLE, f"prepared message is {f.state}")
        for f in files:  # until the commit is decided, a discard must not remove the file
            f.state = _COMMITTING
        size = sum(f.item.size for f in files)
        try:
            await self._account.check_quota(size, len(files))
        except BaseException:
            for f in files:
                f.state = _READY
            raise
        # Once the thread may rename files, the outcome is seen to the end (states, quota,
        # change records) even if the caller is cancelled meanwhile.
        work = asyncio.get_running_loop().create_task(self._commit_files(files, size, into_new))
        self._commits.add(work)
        work.add_done_callback(self._commit_done)
        return await asyncio.shield(work)

    def _commit_done(self, work: asyncio.Task[list[MessageInfo]]) -> None:
        self._commits.discard(work)
        if not work.cancelled():
            work.exception()  # retrieved: a caller that went away already got its answer

    async def _commit_files(
        self, files: list[PreparedFile], size: int, into_new: bool
    ) -> list[MessageInfo]:
        items = [f.item for f in files]
        try:
            infos = await _COMMITTERS.run(partial(self._commit_blocking, items, into_new))
        except BaseException:
            for f in files:
                f.state = _READY
            raise
        for f in files:
            f.state = _COMMITTED
        self._account.record_usage(size, len(files))
        self._publish([MessagesAdded(self._name, tuple(infos))])
        return infos

    def _commit_blocking(self, items: list[Prepared], into_new: bool) -> list[MessageInfo]:
        try:
            infos = self.core.add_prepared(items, into_new)
        except OSError as exc:
            raise _write_error(exc) from exc
        self._fsync_targets(infos)
        return infos

    def discard(self, prepared: Sequence[PreparedMessage]) -> None:
        for p in prepared:
            f = self._own(p)
            if f.state != _READY:
                continue
            f.state = _DISCARDED
            try:
                os.unlink(f.item.tmp_path)
            except FileNotFoundError:
                pass
            except OSError as exc:  # the next open of the folder sweeps it (dead writer)
                log.warning("could not remove %s: %s", f.item.tmp_path, exc)

    def _own(self, prepared: PreparedMessage) -> PreparedFile:
        if not isinstance(prepared, PreparedFile) or prepared.mailbox is not self:
            raise MailError(MailErrorKind.NOTPOSSIBLE, "message was prepared for another folder")
        return prepared

    async def store_flags(
        self,
        uids: Iterable[int],
        op: flagmod.FlagOp,
        flags: frozenset[str],
        unchanged_since: int | None = None,
    ) -> tuple[list[MessageInfo], list[int]]:
        wanted = list(uids)
        given = flagmod.normalise(flags)
        core = self.core
        done = None
        # A few messages with known flags: on the event loop (a rename and one index commit
        # cost less than the thread hop), unless that would mean waiting for a lock.
        if len(wanted) <= INLINE_STORE_UIDS and core.keywords_known(given):
            done = core.try_store_flags(wanted, op, given, unchanged_since)
        if done is None:
            done = await asyncio.to_thread(core.store_flags, wanted, op, given, unchanged_since)
        changed, failed = done
        if changed:
            self._publish([FlagsChanged(self._name, tuple(changed))])
        return changed, failed

    async def expunge(self, uids: Iterable[int]) -> list[int]:
        wanted = list(uids)
        sizes = {i.uid: i.size for i in self.core.infos_of(wanted)}
        gone = await asyncio.to_thread(self.core.expunge, wanted)
        if gone:
            self._account.record_usage(-sum(sizes.get(u, 0) for u in gone), -len(gone))
            self._publish([MessagesExpunged(self._name, tuple(gone), self.core.highest_modseq)])
        return gone

    async def copy(self, uids: Iterable[int], dest: str) -> dict[int, int]:
        return await self._transfer(list(uids), dest, move=False)

    async def move(self, uids: Iterable[int], dest: str) -> dict[int, int]:
        return await self._transfer(list(uids), dest, move=True)

    async def _transfer(self, uids: list[int], dest: str, move: bool) -> dict[int, int]:
        target = await self._account.open_mailbox(dest)
        if target is self and move:
            raise MailError(MailErrorKind.NOTPOSSIBLE, "cannot move into the same folder")
        if not move:
            sizes = [i.size for i in self.core.infos_of(uids)]
            await self._account.check_quota(sum(sizes), len(sizes))
        mapping, gone = await asyncio.to_thread(self._transfer_blocking, target, uids, move)
        if not mapping:
            return {}
        added = tuple(target.core.infos_of(sorted(mapping.values())))
        target._publish([MessagesAdded(target.name, added)])
        if gone:
            self._publish([MessagesExpunged(self._name, tuple(gone), self.core.highest_modseq)])
        if not move:
            self._account.record_usage(sum(i.size for i in added), len(added))
        return mapping

    def _transfer_blocking(
        self, target: MaildirMailbox, uids: list[int], move: bool
    ) -> tuple[dict[int, int], list[int]]:
        """Both folders locked (in path order, so two opposite moves cannot deadlock) for the
        whole transfer: no sync in between sees a moved file missing from its source."""
        first, second = sorted((self.core, target.core), key=lambda c: str(c.path))
        with first.lock, second.lock:
            items = self.core.transfer_out(uids)
            mapping = target.core.transfer_in(items, move) if items else {}
            gone = self.core.expunge(list(mapping), unlink=False) if move and mapping else []
        if mapping:
            _fs.fsync_dir(target.core.path / "cur")
        return mapping, gone

    # ----------------------------------------------------------------------- reads
    async def open_message(self, uid: int) -> MaildirMessage:
        info = self.core.infos_of([uid])
        if not info:
            raise MailError(MailErrorKind.EXPUNGED, f"message UID {uid} was expunged")
        return MaildirMessage(self, uid, info[0].size)

    async def changes_since(self, modseq: int) -> ChangesSince:
        return await asyncio.to_thread(self.core.changes_since, modseq)

    async def claim_recent(self) -> int:
        return await asyncio.to_thread(self.core.claim_recent)

    async def get_cached(self, uid: int, key: str) -> bytes | None:
        return await asyncio.to_thread(self.core.get_cached, uid, key)

    async def set_cached(self, uid: int, key: str, value: bytes) -> None:
        await asyncio.to_thread(self.core.set_cached, uid, key, value)

    async def get_cached_many(self, uids: Iterable[int], key: str) -> dict[int, bytes]:
        core = self.core
        found, missing = MEMO.get_many(core.memo_scope, uids, key)
        if not missing:
            return found
        # A few rows are read on the event loop: the thread hop costs more than the query
        # (WAL readers never wait for writers). Only when the folder's lock is free at once:
        # a long write in a worker thread must not stall every session.
        if len(missing) <= INLINE_CACHE_ROWS and core.lock.acquire(blocking=False):
            try:
                found.update(core.load_cached(missing, key))
            finally:
                core.lock.release()
        else:
            found.update(await asyncio.to_thread(core.get_cached_many, missing, key))
        return found

    async def set_cached_many(self, key: str, values: Mapping[int, bytes]) -> None:
        rows = dict(values)
        # A batch of cache rows is one short commit: on the event loop when nothing is in
        # the way (a thread hop per batch cost more, and kept the folder lock from readers).
        if len(rows) <= INLINE_CACHE_WRITE_ROWS and self.core.try_set_cached_many(key, rows):
            return
        await asyncio.to_thread(self.core.set_cached_many, key, rows)

    async def keywords(self) -> list[str]:
        return await asyncio.to_thread(self.core.keyword_names)

    async def mark_retrieved(self, uids: Iterable[int]) -> None:
        await asyncio.to_thread(self.core.mark_retrieved, list(uids))

    async def retrieved_uids(self) -> frozenset[int]:
        return await asyncio.to_thread(self.core.retrieved_uids)
