"""``mailhub import ADDRESS SOURCE``: bring old mail in from an mbox file or a Maildir.

* A **Dovecot Maildir** (a folder with ``dovecot-uidlist``) keeps its UIDVALIDITY, UIDs and
  keywords when the target folder holds no mail yet: the message files, ``dovecot-uidlist``
  and ``dovecot-keywords`` are copied into the account's folder and its (empty) mailhub index
  is dropped, so the store indexes the folder exactly as it indexes a migrated Dovecot store
  (see docs/storage-format.md). IMAP clients then keep their caches and POP3 clients their
  UIDLs. Do this before the account is in use (or with the server stopped): a running server
  holding the old empty index open would not see the swap.
* **Any other Maildir**, or a Dovecot folder whose target already has mail, and **mbox** files
  go through the store API (``Mailbox.append``) with their flags (Maildir info letters;
  mbox ``Status``/``X-Status``/``X-Keywords``) and internal dates (file mtime; the mbox
  ``From `` line), in batches so quota is checked and each batch is durable.

A progress bar is drawn on stderr when it is a terminal; the summary line goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mailhub.config import Settings
from mailhub.errors import MailError, MailErrorKind
from mailhub.ops.mbox import MboxMessage
from mailhub.settings_loader import add_config_arguments
from mailhub.store.model import INBOX, NewMessage, QuotaLimits

BATCH_MESSAGES = 500
BATCH_BYTES = 32 * 1024 * 1024
EX_OK, EX_USAGE, EX_DATAERR, EX_NOUSER, EX_NOINPUT, EX_TEMPFAIL = 0, 64, 65, 67, 66, 75


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "import", help="import mail from an mbox file or a Maildir (Dovecot's keeps its UIDs)"
    )
    add_config_arguments(p)
    p.add_argument("address", help="the account to import into (must exist)")
    p.add_argument("source", type=Path, help="an mbox file or a Maildir(++) directory")
    p.add_argument(
        "--folder",
        metavar="NAME",
        help="target folder (mbox: default INBOX; Maildir: its INBOX goes here and "
        "subfolders below it)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# ---------------------------------------------------------------- progress
class Progress:
    """A one-line bar on a terminal, nothing otherwise."""

    def __init__(self, label: str, total: int, stream: TextIO | None, unit: str = "") -> None:
        self.label, self.total, self.stream, self.unit = label, max(total, 1), stream, unit
        self._last = 0.0

    def update(self, done: int, messages: int) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < self.total:
            return
        self._last = now
        frac = min(done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        self.stream.write(
            f"\r{self.label[:24]:<24} [{bar:<30}] {frac * 100:5.1f}% {messages} messages"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Report:
    folders: dict[str, int] = field(default_factory=dict)  # folder -> messages imported
    kept_uids: list[str] = field(default_factory=list)  # folders imported with Dovecot's UIDs
    skipped: list[str] = field(default_factory=list)

    def line(self) -> str:
        total = sum(self.folders.values())
        parts = [
            f"imported {total} message{'s' if total != 1 else ''} into "
            f"{len(self.folders)} folder{'s' if len(self.folders) != 1 else ''}"
        ]
        if self.kept_uids:
            parts.append(f"Dovecot UIDs kept in {', '.join(self.kept_uids)}")
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} unreadable file(s)")
        return "; ".join(parts)


# ---------------------------------------------------------------- Maildir sources
@dataclass(frozen=True)
class SourceFolder:
    name: str  # API name ("INBOX", "Archive/2024")
    path: Path

    @property
    def dovecot(self) -> bool:
        return (self.path / "dovecot-uidlist").is_file()

    def files(self) -> list[Path]:
        found: list[Path] = []
        for sub in ("cur", "new"):
            d = self.path / sub
            if d.is_dir():
                found.extend(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
        return sorted(found, key=lambda p: p.name)


def source_folders(root: Path, prefix: str | None) -> list[SourceFolder]:
    """The Maildir++ tree under ``root``: the root itself and every ``.Name`` with ``cur/``."""
    from mailhub.store.maildir import layout

    def target(name: str) -> str:
        if prefix is None or prefix == INBOX:
            return name if prefix is None or name != INBOX else INBOX
        return prefix if name == INBOX else f"{prefix}/{name}"

    folders = [SourceFolder(target(INBOX), root)]
    for entry in sorted(os.listdir(root)):
        if not entry.startswith(".") or entry in (".", ".."):
            continue
        name = layout.name_of_dir(entry)
        if name is not None and (root / entry / "cur").is_dir():
            folders.append(SourceFolder(target(name), root / entry))
    return folders


def maildir_messages(folder: SourceFolder, report: Report) -> Iterator[tuple[NewMessage, int]]:
    """(message, bytes read) for each file, flags from the info letters and the keyword file."""
    from mailhub.store.maildir import filename
    from mailhub.store.maildir.keywords import KeywordTable

    letter_keyword = KeywordTable(folder.path).letter_to_keyword
    for path in folder.files():
        try:
            data = path.read_bytes()
            mtime = path.stat().st_mtime
        except OSError:
            report.skipped.append(str(path))
            continue
        parsed = filename.parse(path.name)
        flags = filename.letters_to_flags(parsed.letters, letter_keyword)
        yield NewMessage(data, flags, mtime), len(data)


# ---------------------------------------------------------------- the import itself
class Importer:
    def __init__(
        self, settings: Settings, address: str, limits: QuotaLimits, progress: TextIO | None
    ) -> None:
        from mailhub.store.maildir import MaildirMailstore, account_dir

        self.settings = settings
        self.address = address
        self.limits = limits
        self.root = settings.data_dir / "mail"
        self.account_root = account_dir(self.root, address)
        self.progress_stream = progress
        self.store: Any = MaildirMailstore(self.root)
        self.report = Report()

    async def close(self) -> None:
        await self.store.close()

    async def _mailbox(self, name: str) -> Any:
        account = await self.store.open_account(self.address, self.limits)
        try:
            return await account.open_mailbox(name)
        except MailError as exc:
            if exc.kind is not MailErrorKind.NOTFOUND:
                raise
            await account.create_mailbox(name)
            await account.subscribe(name)
            return await account.open_mailbox(name)

    async def _append_stream(
        self, name: str, items: Iterator[tuple[NewMessage, int]], progress: Progress
    ) -> int:
        mailbox = await self._mailbox(name)
        batch: list[NewMessage] = []
        size = done = count = 0
        for message, consumed in items:
            batch.append(message)
            size += len(message.data)
            done += consumed
            if len(batch) >= BATCH_MESSAGES or size >= BATCH_BYTES:
                count += len(await mailbox.append(batch))
                batch, size = [], 0
                progress.update(done, count)
        if batch:
            count += len(await mailbox.append(batch))
        progress.update(progress.total, count)
        self.report.folders[name] = self.report.folders.get(name, 0) + count
        return count

    async def import_mbox(self, path: Path, folder: str) -> None:
        from mailhub.ops.mbox import read_mbox

        total = path.stat().st_size
        progress = Progress(folder, total, self.progress_stream)
        with open(path, "rb") as f:
            # Progress by bytes: each message says the file offset it reached.
            await self._append_stream(folder, _mbox_items(read_mbox(f)), progress)
        progress.close()

    async def _target_state(self, name: str) -> tuple[bool, int, int]:
        """(has mail, uidvalidity, uid_next) of a target folder, opening nothing new on disk."""
        from mailhub.store.maildir import layout

        path = layout.folder_dir(self.account_root, name)
        if not (path / "cur").is_dir():
            return False, 0, 0
        if any(SourceFolder(name, path).files()):
            return True, 0, 0
        mailbox = await self._mailbox(name)
        status = await mailbox.status()
        return status.messages > 0, status.uidvalidity, status.uid_next

    async def import_maildir(self, root: Path, prefix: str | None) -> None:
        from mailhub.store.maildir import layout, uidlist

        await self.store.open_account(self.address, self.limits)  # creates the Maildir
        folders = source_folders(root, prefix)
        plans: list[tuple[SourceFolder, bool]] = []
        for folder in folders:
            keep = False
            if folder.dovecot:
                has_mail, uidvalidity, uid_next = await self._target_state(folder.name)
                dovecot = uidlist.read(folder.path)
                keep = (
                    not has_mail
                    and dovecot is not None
                    # Same UIDVALIDITY after UIDs were used here: keeping Dovecot's could
                    # reuse a UID under it; append instead (new UIDs).
                    and not (uid_next > 1 and dovecot.uidvalidity == uidvalidity)
                )
            plans.append((folder, keep))
        if any(keep for _, keep in plans):
            # Release every index before swapping files underneath the store.
            await self.store.close()
            from mailhub.store.maildir import MaildirMailstore

            for folder, keep in plans:
                if keep:
                    count = await asyncio.to_thread(
                        _copy_dovecot_folder,
                        folder,
                        layout.folder_dir(self.account_root, folder.name),
                    )
                    self.report.folders[folder.name] = count
                    self.report.kept_uids.append(folder.name)
            # Usage changed behind the quota file's back: let the store recount.
            (self.account_root / "maildirsize").unlink(missing_ok=True)
            self.store = MaildirMailstore(self.root)
            account = await self.store.open_account(self.address, self.limits)
            subscribed = set(await account.subscriptions())
            for folder, keep in plans:
                if keep:
                    mailbox = await account.open_mailbox(folder.name)
                    await mailbox.snapshot()  # index it now, with Dovecot's UIDs
                    if folder.name not in subscribed:
                        await account.subscribe(folder.name)
        for folder, keep in plans:
            if keep:
                continue
            files = folder.files()
            total = sum(_size(p) for p in files)
            progress = Progress(folder.name, total, self.progress_stream)
            await self._append_stream(folder.name, maildir_messages(folder, self.report), progress)
            progress.close()


def _mbox_items(messages: Iterator[MboxMessage]) -> Iterator[tuple[NewMessage, int]]:
    last = 0
    for m in messages:
        yield NewMessage(m.data, m.flags, m.internal_date), m.end_offset - last
        last = m.end_offset


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _copy_dovecot_folder(folder: SourceFolder, dest: Path) -> int:
    """Copy message files and Dovecot's UID/keyword files; drop the empty mailhub index."""
    from mailhub.store.maildir.index import FILE_NAME as INDEX_FILE

    for sub in ("cur", "new", "tmp"):
        (dest / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    for suffix in ("", "-wal", "-shm", "-journal"):
        (dest / (INDEX_FILE + suffix)).unlink(missing_ok=True)
    count = 0
    for sub in ("cur", "new"):
        src_dir = folder.path / sub
        if not src_dir.is_dir():
            continue
        for src in src_dir.iterdir():
            if src.is_file() and not src.name.startswith("."):
                shutil.copy2(src, dest / sub / src.name)
                count += 1
    for name in ("dovecot-uidlist", "dovecot-keywords"):
        if (folder.path / name).is_file():
            shutil.copy2(folder.path / name, dest / name)
    return count


async def _run(
    settings: Settings, args: argparse.Namespace, address: str, limits: QuotaLimits
) -> Report:
    stream = sys.stderr if sys.stderr.isatty() and not args.no_progress else None
    importer = Importer(settings, address, limits, stream)
    try:
        if args.source.is_dir():
            if not (args.source / "cur").is_dir():
                raise ValueError(f"{args.source} is not a Maildir (no cur/ directory)")
            await importer.import_maildir(args.source, args.folder)
        else:
            await importer.import_mbox(args.source, args.folder or INBOX)
    finally:
        await importer.close()
    return importer.report


def run(args: argparse.Namespace, settings: Settings) -> int:
    from mailhub.auth.directory import AccountDirectory

    rec = AccountDirectory(settings.data_dir).lookup(args.address)
    if rec is None:
        print(
            f"mailhub: no account {args.address} (create it with mailhub user add)", file=sys.stderr
        )
        return EX_NOUSER
    if not args.source.exists():
        print(f"mailhub: {args.source} does not exist", file=sys.stderr)
        return EX_NOINPUT
    try:
        report = asyncio.run(
            _run(settings, args, rec.address, QuotaLimits(rec.quota_bytes, rec.quota_messages))
        )
    except ValueError as exc:
        print(f"mailhub: {exc}", file=sys.stderr)
        return EX_DATAERR
    except MailError as exc:
        print(f"mailhub: import stopped: {exc.message}", file=sys.stderr)
        return (
            EX_TEMPFAIL if exc.kind in (MailErrorKind.NOQUOTA, MailErrorKind.TEMP) else (EX_DATAERR)
        )
    print(report.line())
    return EX_OK
