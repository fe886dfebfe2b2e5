"""The account directory: ``<data_dir>/accounts.json``, shared by the server and the CLI.

Why a JSON file and not a database: a household server has a handful of accounts, operators
want to read (and back up) them as text, and the CLI must change them while a server runs.
Writers take an advisory ``flock`` on ``accounts.lock``, re-read the file, and replace it
atomically (write a temporary file, fsync, rename, fsync the directory), so a crash leaves
either the old or the new file, never a torn one. Readers notice a replacement by the file's
(inode, size, mtime) and reload it on the next lookup, which is how ``mailhub user ...``
takes effect in a running server without a restart.

Addresses are matched case-insensitively (domain always, local part too: two accounts that
differ only by case would confuse every user), and a login name without ``@`` matches the one
account with that local part when it is unambiguous.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import fcntl
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mailhub.auth.model import AccountRecord, Pop3Policy
from mailhub.auth.passwords import burn_time, hash_password, is_valid_hash, verify_password
from mailhub.errors import MailError, MailErrorKind

log = logging.getLogger(__name__)

ACCOUNTS_FILE = "accounts.json"
LOCK_FILE = "accounts.lock"
FILE_VERSION = 1

# Local parts: RFC 5322 dot-atom characters without "/" (the local part names a directory).
_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+)*$")
_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_UPDATABLE = frozenset({"aliases", "quota_bytes", "quota_messages", "enabled", "pop3"})


class AccountsFileError(Exception):
    """The accounts file exists but cannot be read or does not validate."""


def normalize_address(address: str) -> str:
    """``local@domain`` with the domain lower-cased; raises ``MailError(BADNAME)`` if invalid."""
    address = address.strip()
    local, sep, domain = address.rpartition("@")
    domain = domain.lower().rstrip(".")
    if not sep or not _LOCAL_RE.fullmatch(local) or len(local) > 64:
        raise MailError(MailErrorKind.BADNAME, f"invalid address {address!r}")
    if not _DOMAIN_RE.fullmatch(domain):
        raise MailError(MailErrorKind.BADNAME, f"invalid domain in address {address!r}")
    return f"{local}@{domain}"


def _key(address: str) -> str:
    return address.casefold()


class AccountDirectory:
    """Accounts of one data directory. Cheap to construct; reads the file lazily."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / ACCOUNTS_FILE
        self._lock_path = self.data_dir / LOCK_FILE
        self._stamp: tuple[int, int, int] | None = None
        self._loaded = False
        self._accounts: dict[str, AccountRecord] = {}  # casefolded address -> record
        self._aliases: dict[str, str] = {}  # casefolded alias -> casefolded address
        self._generation = 0
        self._bad_stamp: tuple[int, int, int] | None = None

    # -- reading -------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Bumped every time the file is (re)loaded, so callers can notice changes."""
        self._refresh()
        return self._generation

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _read_file(self) -> list[AccountRecord]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AccountsFileError(f"{self.path}: {exc.strerror}") from None
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise AccountsFileError(f"{self.path}: not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("accounts"), list):
            raise AccountsFileError(f"{self.path}: expected an object with an 'accounts' list")
        records: list[AccountRecord] = []
        for i, item in enumerate(doc["accounts"]):
            try:
                rec = AccountRecord.model_validate(item)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                raise AccountsFileError(
                    f"{self.path}: account #{i + 1}: {where}: {err['msg']}"
                ) from None
            if not is_valid_hash(rec.password_hash):
                log.warning("account %s has an unusable password hash", rec.address)
            records.append(rec)
        return records

    def _install(self, records: list[AccountRecord]) -> None:
        accounts: dict[str, AccountRecord] = {}
        aliases: dict[str, str] = {}
        for rec in records:
            accounts[_key(rec.address)] = rec
        for rec in records:
            for alias in rec.aliases:
                k = _key(alias)
                if k not in accounts:
                    aliases.setdefault(k, _key(rec.address))
        self._accounts = accounts
        self._aliases = aliases
        self._generation += 1

    def _refresh(self, *, strict: bool = False) -> None:
        stamp = self._file_stamp()
        if self._loaded and stamp == self._stamp:
            return
        try:
            records = self._read_file()
        except AccountsFileError as exc:
            if strict or not self._loaded:
                raise
            # A running server keeps the last good accounts rather than locking everybody out.
            if stamp != self._bad_stamp:
                log.error("keeping the previous accounts: %s", exc)
                self._bad_stamp = stamp
            return
        self._install(records)
        self._stamp = stamp
        self._loaded = True

    def reload(self) -> None:
        """Read the file now (raises :class:`AccountsFileError` when it is damaged)."""
        self._loaded = False
        self._refresh(strict=True)

    def list(self) -> list[AccountRecord]:
        """Every account, ordered by address."""
        self._refresh()
        return sorted(self._accounts.values(), key=lambda r: _key(r.address))

    def __len__(self) -> int:
        self._refresh()
        return len(self._accounts)

    def lookup(self, address: str) -> AccountRecord | None:
        """The account for an address, an alias, or an unambiguous bare local part."""
        self._refresh()
        name = address.strip()
        if "@" not in name:
            matches = [
                r
                for r in self._accounts.values()
                if r.address.rpartition("@")[0].casefold() == name.casefold()
            ]
            return matches[0] if len(matches) == 1 else None
        local, _, domain = name.rpartition("@")
        k = _key(f"{local}@{domain.lower().rstrip('.')}")
        rec = self._accounts.get(k)
        if rec is None and k in self._aliases:
            rec = self._accounts.get(self._aliases[k])
        return rec

    def domains(self) -> set[str]:
        """Every domain that has an account or alias (for SMTP's local-domain check)."""
        self._refresh()
        out: set[str] = set()
        for rec in self._accounts.values():
            out.add(rec.address.rpartition("@")[2].lower())
            out.update(a.rpartition("@")[2].lower() for a in rec.aliases)
        return out

    async def authenticate(self, username: str, password: str) -> AccountRecord | None:
        """The account when the credentials are right and the account is enabled, else None.

        scrypt runs in a worker thread so a login never stalls the event loop; an unknown user
        costs the same time as a wrong password.
        """
        rec = self.lookup(username)
        if rec is None:
            await asyncio.to_thread(burn_time, password)
            return None
        ok = await asyncio.to_thread(verify_password, password, rec.password_hash)
        if not ok or not rec.enabled:
            return None
        return rec

    # -- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, AccountRecord]]:
        """Exclusive read-modify-write of the file; yields the records to edit in place."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            records = {_key(r.address): r for r in self._read_file()}
            yield records
            self._write(list(records.values()))
            self._install(list(records.values()))
            self._stamp = self._file_stamp()
            self._loaded = True
        finally:
            os.close(fd)

    def _write(self, records: builtins.list[AccountRecord]) -> None:
        records = sorted(records, key=lambda r: _key(r.address))
        doc = {
            "version": FILE_VERSION,
            "accounts": [r.model_dump(mode="json") for r in records],
        }
        data = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=".accounts.", suffix=".tmp", dir=self.data_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dfd = os.open(self.data_dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @staticmethod
    def _check_names_free(
        records: dict[str, AccountRecord], names: builtins.list[str], owner: str | None
    ) -> None:
        for name in names:
            k = _key(name)
            for rec in records.values():
                if _key(rec.address) == owner:
                    continue
                if k == _key(rec.address) or k in {_key(a) for a in rec.aliases}:
                    raise MailError(
                        MailErrorKind.EXISTS, f"{name} is already used by {rec.address}"
                    )

    def add(
        self,
        address: str,
        password: str,
        *,
        aliases: builtins.list[str] | None = None,
        quota_bytes: int | None = None,
        quota_messages: int | None = None,
        enabled: bool = True,
        pop3: Pop3Policy | None = None,
    ) -> AccountRecord:
        """Create an account; raises ``MailError`` EXISTS or BADNAME."""
        addr = normalize_address(address)
        alias_list = [normalize_address(a) for a in aliases or []]
        rec = AccountRecord(
            address=addr,
            password_hash=hash_password(password),
            aliases=alias_list,
            quota_bytes=quota_bytes,
            quota_messages=quota_messages,
            enabled=enabled,
            pop3=pop3 or Pop3Policy(),
        )
        with self._locked() as records:
            self._check_names_free(records, [addr, *alias_list], owner=None)
            records[_key(addr)] = rec
        return rec

    def _existing(self, records: dict[str, AccountRecord], address: str) -> AccountRecord:
        local, _, domain = address.strip().rpartition("@")
        rec = records.get(_key(f"{local}@{domain.lower()}"))
        if rec is None:
            raise MailError(MailErrorKind.NOTFOUND, f"no account {address}")
        return rec

    def set_password(self, address: str, password: str) -> AccountRecord:
        """Replace an account's password (a fresh salt too)."""
        new_hash = hash_password(password)
        with self._locked() as records:
            rec = self._existing(records, address)
            rec = rec.model_copy(update={"password_hash": new_hash})
            records[_key(rec.address)] = rec
        return rec

    def delete(self, address: str) -> AccountRecord:
        """Remove an account (its mail stays on disk; deleting mail is the operator's call)."""
        with self._locked() as records:
            rec = self._existing(records, address)
            del records[_key(rec.address)]
        return rec

    def update(self, address: str, **fields: Any) -> AccountRecord:
        """Change aliases, quotas, ``enabled`` or the POP3 policy.

        ``pop3`` may be a :class:`Pop3Policy` or a dict of its fields, merged into the
        current policy. Raises ``MailError`` NOTFOUND/EXISTS/BADNAME, or ``ValueError`` for a
        field that cannot be changed this way or a value that does not validate.
        """
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))}")
        with self._locked() as records:
            rec = self._existing(records, address)
            changes = dict(fields)
            if "aliases" in changes:
                changes["aliases"] = [normalize_address(a) for a in changes["aliases"]]
                self._check_names_free(records, changes["aliases"], owner=_key(rec.address))
            if "pop3" in changes and isinstance(changes["pop3"], dict):
                changes["pop3"] = {**rec.pop3.model_dump(), **changes["pop3"]}
            data = {**rec.model_dump(), **changes}
            if isinstance(data.get("pop3"), Pop3Policy):
                data["pop3"] = data["pop3"].model_dump()
            try:
                new = AccountRecord.model_validate(data)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                raise ValueError(f"{where}: {err['msg']}") from None
            records[_key(rec.address)] = new
        return new
