"""One account's Maildir++ tree (implements ``store.api.Account``)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from mailhub.errors import MailError, MailErrorKind
from mailhub.store.bus import ChangeBus
from mailhub.store.changes import MailboxCreated, MailboxDeleted, MailboxRenamed
from mailhub.store.maildir import _fs, filename, layout
from mailhub.store.maildir.folder import FolderCore
from mailhub.store.maildir.mailbox import MaildirMailbox
from mailhub.store.maildir.quota import MaildirSize
from mailhub.store.model import (
    DEFAULT_FOLDERS,
    INBOX,
    SEPARATOR,
    MailboxInfo,
    QuotaLimits,
    QuotaUsage,
    SpecialUse,
)

if TYPE_CHECKING:
    from mailhub.store.maildir import MaildirMailstore

SPECIAL_USE_FILE = "mailhub-special-use"
SUBSCRIPTIONS_FILE = "subscriptions"

# Folder names other servers and clients use for the special roles: a migrated store gets
# its roles without configuration.
_ROLE_GUESSES: dict[str, SpecialUse] = {
    "drafts": SpecialUse.DRAFTS,
    "sent": SpecialUse.SENT,
    "sent messages": SpecialUse.SENT,
    "sent items": SpecialUse.SENT,
    "trash": SpecialUse.TRASH,
    "deleted messages": SpecialUse.TRASH,
    "deleted items": SpecialUse.TRASH,
    "junk": SpecialUse.JUNK,
    "spam": SpecialUse.JUNK,
    "archive": SpecialUse.ARCHIVE,
    "archives": SpecialUse.ARCHIVE,
}


class MaildirAccount:
    """The folders of one address, rooted at ``<mail>/<domain>/<local part>/``."""

    def __init__(
        self, store: MaildirMailstore, address: str, root: Path, limits: QuotaLimits
    ) -> None:
        self.store = store
        self._address = address
        self.root = root
        self._limits = limits
        self._open: dict[str, MaildirMailbox] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._tree_lock = asyncio.Lock()
        self._quota = MaildirSize(root, self._recalculate_usage)

    @property
    def address(self) -> str:
        return self._address

    @property
    def bus(self) -> ChangeBus:
        return self.store.bus

    async def initialise(self) -> None:
        """Create the Maildir and the default folders the first time an account is used."""
        fresh = not (self.root / "cur").is_dir()
        await asyncio.to_thread(self.root.parent.mkdir, parents=True, exist_ok=True, mode=0o700)
        await asyncio.to_thread(_fs.make_maildir, self.root)
        if fresh:
            for name, role in DEFAULT_FOLDERS:
                try:
                    await self.create_mailbox(name, role)
                except MailError as exc:  # another process initialised it meanwhile
                    if exc.kind is not MailErrorKind.EXISTS:
                        raise
            await self.subscribe(INBOX)

    # -------------------------------------------------------------------- the tree
    def _folder_names(self) -> list[str]:
        names = [INBOX]
        for entry in _fs_scandir(self.root):
            name = layout.name_of_dir(entry)
            if name is not None and (self.root / entry / "cur").is_dir():
                names.append(name)
        return names

    async def list_mailboxes(self) -> list[MailboxInfo]:
        names = await asyncio.to_thread(self._folder_names)
        roles = await asyncio.to_thread(self._roles)
        by_name = {v: SpecialUse(k) for k, v in roles.items()}
        subscribed = set(await self.subscriptions())
        ordered = [INBOX, *sorted(n for n in names if n != INBOX)]
        return [
            MailboxInfo(
                name,
                by_name.get(name),
                name in subscribed,
                any(layout.is_child(other, name) for other in ordered),
            )
            for name in ordered
        ]

    async def create_mailbox(self, name: str, special_use: SpecialUse | None = None) -> None:
        name = layout.canonical(name)
        async with self._tree_lock:
            path = layout.folder_dir(self.root, name)
            if name == INBOX or path.exists():
                raise MailError(MailErrorKind.EXISTS, f"mailbox {name!r} already exists")
            if special_use is not None and await self.special_use_folder(special_use):
                raise MailError(
                    MailErrorKind.EXISTS, f"another folder already has the role {special_use.value}"
                )
            await asyncio.to_thread(self._create_dir, path)
            if special_use is not None:
                roles = await asyncio.to_thread(self._roles)
                roles[special_use.value] = name
                await asyncio.to_thread(self._save_roles, roles)
        self.bus.publish(self._address, [MailboxCreated(name)])

    def _create_dir(self, path: Path) -> None:
        _fs.make_maildir(path)
        (path / "maildirfolder").touch()  # Maildir++ marker that quota tools look for
        core = FolderCore(path, path.name)
        core.open()
        core.close()
        _fs.fsync_dir(self.root)

    async def delete_mailbox(self, name: str) -> None:
        name = layout.canonical(name)
        if name == INBOX:
            raise MailError(MailErrorKind.NOTPOSSIBLE, "INBOX cannot be deleted")
        async with self._tree_lock:
            path = layout.folder_dir(self.root, name)
            if not (path / "cur").is_dir():
                raise MailError(MailErrorKind.NOTFOUND, f"mailbox {name!r} does not exist")
            mailbox = self._open.pop(name, None)
            if mailbox is not None:
                self.store.unwatch(mailbox)
                await mailbox.close()
            graveyard = self.root / "tmp" / f"deleted-{filename.unique()}"
            await asyncio.to_thread(os.rename, path, graveyard)
            await asyncio.to_thread(shutil.rmtree, graveyard, True)
            roles = await asyncio.to_thread(self._roles)
            remaining = {k: v for k, v in roles.items() if v != name}
            if remaining != roles:
                await asyncio.to_thread(self._save_roles, remaining)
        self.bus.publish(self._address, [MailboxDeleted(name)])

    async def rename_mailbox(self, old: str, new: str) -> None:
        old, new = layout.canonical(old), layout.canonical(new)
        if new == INBOX or layout.folder_dir(self.root, new).exists():
            raise MailError(MailErrorKind.EXISTS, f"mailbox {new!r} already exists")
        if old == INBOX:
            await self._rename_inbox(new)
            return
        if layout.is_child(new, old):
            raise MailError(MailErrorKind.NOTPOSSIBLE, "cannot rename a folder into itself")
        async with self._tree_lock:
            names = await asyncio.to_thread(self._folder_names)
            # A Maildir++ parent may exist only through its children: rename those then.
            moving = [n for n in names if n == old or layout.is_child(n, old)]
            if not moving:
                raise MailError(MailErrorKind.NOTFOUND, f"mailbox {old!r} does not exist")
            for name in moving:
                target = new + name[len(old) :]
                mailbox = self._open.pop(name, None)
                if mailbox is not None:
                    await mailbox.close()
                new_path = layout.folder_dir(self.root, target)
                await asyncio.to_thread(os.rename, layout.folder_dir(self.root, name), new_path)
                if mailbox is not None:
                    mailbox._renamed(target, new_path)
                    await mailbox.open()
                    self._open[target] = mailbox
            await asyncio.to_thread(_fs.fsync_dir, self.root)
            await asyncio.to_thread(self._rename_in_files, old, new)
        self.bus.publish(self._address, [MailboxRenamed(old, new)])

    async def _rename_inbox(self, new: str) -> None:
        """RFC 9051 §6.3.6: renaming INBOX moves its messages and leaves INBOX empty."""
        await self.create_mailbox(new)
        inbox = await self.open_mailbox(INBOX)
        snap = await inbox.snapshot()
        await inbox.move([m.uid for m in snap.messages], new)

    def _rename_in_files(self, old: str, new: str) -> None:
        def renamed(name: str) -> str:
            if name == old or layout.is_child(name, old):
                return new + name[len(old) :]
            return name

        roles = self._roles()
        updated = {k: renamed(v) for k, v in roles.items()}
        if updated != roles:
            self._save_roles(updated)
        subs = self._read_subscriptions()
        new_subs = [renamed(s) for s in subs]
        if new_subs != subs:
            self._write_subscriptions(new_subs)

    # ----------------------------------------------------------- subscriptions, roles
    async def subscribe(self, name: str, subscribed: bool = True) -> None:
        name = layout.canonical(name)
        async with self._tree_lock:
            subs = await asyncio.to_thread(self._read_subscriptions)
            if subscribed and name not in subs:
                subs.append(name)
            elif not subscribed and name in subs:
                subs.remove(name)
            else:
                return
            await asyncio.to_thread(self._write_subscriptions, subs)

    async def subscriptions(self) -> list[str]:
        return await asyncio.to_thread(self._read_subscriptions)

    def _read_subscriptions(self) -> list[str]:
        """One name per line; Dovecot's v2 format (tab-separated levels) is read too."""
        try:
            text = (self.root / SUBSCRIPTIONS_FILE).read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        names: list[str] = []
        for line in text.splitlines():
            if not line or line.startswith("V\t"):
                continue
            candidate = line.replace("\t", SEPARATOR)
            try:
                canonical = layout.canonical(candidate)
            except MailError:
                continue
            if canonical not in names:
                names.append(canonical)
        return names

    def _write_subscriptions(self, names: list[str]) -> None:
        data = "".join(n + "\n" for n in names).encode("utf-8")
        _fs.write_atomic(self.root / SUBSCRIPTIONS_FILE, data)

    def _roles(self) -> dict[str, str]:
        try:
            data = json.loads((self.root / SPECIAL_USE_FILE).read_text("utf-8"))
            return {str(k): str(v) for k, v in data.items()}
        except FileNotFoundError:
            pass
        except (ValueError, AttributeError):
            return {}
        guessed: dict[str, str] = {}
        for name in self._folder_names():
            role = _ROLE_GUESSES.get(name.lower())
            if role is not None and role.value not in guessed:
                guessed[role.value] = name
        return guessed

    def _save_roles(self, roles: dict[str, str]) -> None:
        _fs.write_atomic(self.root / SPECIAL_USE_FILE, json.dumps(roles, indent=1).encode())

    async def special_use_folder(self, role: SpecialUse) -> str | None:
        roles = await asyncio.to_thread(self._roles)
        return roles.get(role.value)

    # -------------------------------------------------------------------- folders
    async def open_mailbox(self, name: str) -> MaildirMailbox:
        mailbox = self._open.get(name)  # keys are canonical names: a hit needs no checks
        if mailbox is not None:
            return mailbox
        name = layout.canonical(name)
        mailbox = self._open.get(name)
        if mailbox is not None:
            return mailbox
        async with self._opening.setdefault(name, asyncio.Lock()):
            mailbox = self._open.get(name)
            if mailbox is None:
                path = layout.folder_dir(self.root, name)
                if not (path / "cur").is_dir():
                    raise MailError(MailErrorKind.NOTFOUND, f"mailbox {name!r} does not exist")
                mailbox = MaildirMailbox(self, name, path)
                await mailbox.open()
                self._open[name] = mailbox
                self.store.watch(mailbox)
        self._opening.pop(name, None)
        return mailbox

    async def close(self) -> None:
        for mailbox in list(self._open.values()):
            self.store.unwatch(mailbox)
            await mailbox.close()
        self._open.clear()

    # ---------------------------------------------------------------------- quota
    async def quota(self) -> QuotaUsage:
        used_bytes, used_count = await asyncio.to_thread(self._quota.usage, self._limits)
        return QuotaUsage(used_bytes, used_count, self._limits)

    def set_quota_limits(self, limits: QuotaLimits) -> None:
        self._limits = limits

    async def check_quota(self, size: int, count: int) -> None:
        """Refuse an addition that would take the account over its limits."""
        limits = self._limits
        if limits.max_bytes is None and limits.max_messages is None:
            return
        usage = await self.quota()
        if limits.max_bytes is not None and usage.bytes_used + size > limits.max_bytes:
            raise MailError(
                MailErrorKind.NOQUOTA,
                f"mailbox of {self._address} is full: {usage.bytes_used} of "
                f"{limits.max_bytes} bytes used",
            )
        if limits.max_messages is not None and usage.messages_used + count > limits.max_messages:
            raise MailError(
                MailErrorKind.NOQUOTA,
                f"mailbox of {self._address} is full: {usage.messages_used} of "
                f"{limits.max_messages} messages",
            )

    def record_usage(self, size: int, count: int) -> None:
        self._quota.add(size, count)

    def _recalculate_usage(self) -> tuple[int, int]:
        total = count = 0
        for name in self._folder_names():
            path = layout.folder_dir(self.root, name)
            for sub in ("new", "cur"):
                for entry in _fs.listdir(path / sub):
                    parsed = filename.parse(entry)
                    if parsed.size is not None:
                        total += parsed.size
                    else:
                        try:
                            total += os.stat(path / sub / entry).st_size
                        except FileNotFoundError:
                            continue
                    count += 1
        return total, count


def _fs_scandir(root: Path) -> list[str]:
    try:
        return [e.name for e in os.scandir(root) if e.name.startswith(".") and e.is_dir()]
    except FileNotFoundError:
        return []
