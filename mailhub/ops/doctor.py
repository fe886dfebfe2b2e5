"""``mailhub doctor``: find what would stop mailhub from working, and say how to fix it.

Checks, each fault one line ``FAULT <area>: <what> - fix: <how>`` (warnings ``WARN``):
configuration (it loaded - the CLI already refused a broken one - and makes sense: a network
listener without TLS), the data directory (exists, owned by the server's user, private),
TLS files (readable, key matches, expiry via ``openssl x509 -enddate`` or the ssl module),
ports (free, or held by a mailhub that answers; bindable by this user), and store
consistency (every account's every folder opens, its index passes SQLite's quick check, and
the index lists as many messages as there are files). Exit 0 when nothing is faulty, 1
otherwise, so it can run from cron or a deployment script.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import errno
import os
import pwd
import socket
import sqlite3
import ssl
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from mailhub.config import Settings
from mailhub.settings_loader import add_config_arguments

EXPIRY_WARNING_DAYS = 14


@dataclass
class Findings:
    faults: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fault(self, area: str, what: str, fix: str) -> None:
        self.faults.append(f"FAULT {area}: {what} - fix: {fix}")

    def warn(self, area: str, what: str, fix: str) -> None:
        self.warnings.append(f"WARN  {area}: {what} - fix: {fix}")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="check configuration, files, ports and the store")
    add_config_arguments(p)
    p.add_argument("--no-store", action="store_true", help="skip the store consistency check")
    p.add_argument("-v", "--verbose", action="store_true", help="also list what passed")


# ---------------------------------------------------------------- configuration
def check_config(settings: Settings, found: Findings) -> None:
    from mailhub.net.tls import is_loopback

    if not is_loopback(settings.host) and settings.tls.cert_file is None:
        found.fault(
            "config",
            f"host {settings.host} serves the network without a TLS certificate "
            "(IMAPS/POP3S stay closed, remote clients cannot log in safely)",
            "set tls.cert_file and tls.key_file (e.g. Let's Encrypt fullchain.pem/privkey.pem)",
        )
    if settings.allow_cleartext_auth and not is_loopback(settings.host):
        found.warn(
            "config",
            "allow_cleartext_auth lets passwords cross the network unencrypted",
            "set allow_cleartext_auth = false and use STARTTLS or the TLS ports",
        )
    if settings.metrics.enabled and not is_loopback(settings.metrics.host):
        found.warn(
            "config",
            f"the metrics endpoint listens on {settings.metrics.host} with no authentication",
            'set metrics.host = "127.0.0.1" or firewall the port',
        )
    if settings.user is not None and os.geteuid() == 0:
        try:
            _lookup_user(settings.user)
        except KeyError:
            found.fault(
                "config",
                f"user {settings.user!r} does not exist",
                f"create it (useradd --system {settings.user}) or fix the user setting",
            )


def _lookup_user(name: str) -> pwd.struct_passwd:
    return pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)


# ---------------------------------------------------------------- data directory
def server_uid(settings: Settings) -> int:
    """The uid the server runs as: the configured user when we are root, else ourselves."""
    if os.geteuid() == 0 and settings.user is not None:
        try:
            return _lookup_user(settings.user).pw_uid
        except KeyError:
            return 0
    return os.geteuid()


def check_data_dir(settings: Settings, found: Findings) -> None:
    data = settings.data_dir
    if not data.exists():
        found.fault(
            "data",
            f"data directory {data} does not exist",
            f"create it: install -d -m 700 {data} (or start mailhub serve once)",
        )
        return
    if not data.is_dir():
        found.fault("data", f"{data} is not a directory", "point data_dir at a directory")
        return
    st = data.stat()
    uid = server_uid(settings)
    if st.st_uid != uid:
        owner = _user_name(st.st_uid)
        found.fault(
            "data",
            f"{data} belongs to {owner}, but the server runs as {_user_name(uid)}",
            f"chown -R {_user_name(uid)} {data}",
        )
    if st.st_mode & 0o077:
        found.fault(
            "data",
            f"{data} is readable by other users (mode "
            f"{stat.S_IMODE(st.st_mode):03o}); it holds mail and password hashes",
            f"chmod 700 {data}",
        )
    if os.geteuid() == uid and not os.access(data, os.W_OK | os.X_OK):
        found.fault("data", f"{data} is not writable by {_user_name(uid)}", f"chmod u+rwx {data}")
    accounts = data / "accounts.json"
    if accounts.exists():
        mode = stat.S_IMODE(accounts.stat().st_mode)
        if mode & 0o077:
            found.fault(
                "data",
                f"{accounts} is readable by other users (mode {mode:03o})",
                f"chmod 600 {accounts}",
            )
    else:
        found.warn("data", "no accounts yet", "create one: mailhub user add you@example.org")
    mail = data / "mail"
    if mail.exists():
        bad = [p for p in _walk_dirs(mail, 3) if p.stat().st_uid != uid]
        if bad:
            found.fault(
                "data",
                f"{len(bad)} director{'ies' if len(bad) > 1 else 'y'} under "
                f"{mail} belong to another user (e.g. {bad[0]})",
                f"chown -R {_user_name(uid)} {mail}",
            )


def _walk_dirs(root: Path, depth: int) -> list[Path]:
    out = [root]
    if depth == 0:
        return out
    try:
        entries = list(root.iterdir())
    except OSError:
        return out
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            out.extend(_walk_dirs(entry, depth - 1))
    return out


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


# ---------------------------------------------------------------- TLS
def cert_not_after(cert: Path) -> dt.datetime:
    """The certificate's expiry (UTC), from ``openssl x509 -enddate``, else the ssl module."""
    try:
        out = subprocess.run(
            ["openssl", "x509", "-enddate", "-noout", "-in", str(cert)],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        text = out.strip().partition("=")[2]
    except (OSError, subprocess.SubprocessError):
        text = ssl._ssl._test_decode_cert(str(cert))["notAfter"]  # type: ignore[attr-defined]
    return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(text), dt.UTC)


def check_tls(settings: Settings, found: Findings, now: dt.datetime | None = None) -> None:
    cert, key = settings.tls.cert_file, settings.tls.key_file
    generated = False
    if cert is None and key is None:
        gen = settings.data_dir / "tls" / "cert.pem"
        if not gen.exists():
            return
        cert, key, generated = gen, settings.data_dir / "tls" / "key.pem", True
    if cert is None or key is None:
        found.fault(
            "tls",
            "only one of tls.cert_file and tls.key_file is set",
            "set both (certificate chain and private key)",
        )
        return
    for what, path in (("certificate", cert), ("key", key)):
        if not path.exists():
            found.fault("tls", f"{what} file {path} does not exist", f"fix the path of the {what}")
            return
        if not os.access(path, os.R_OK):
            found.fault(
                "tls",
                f"{what} file {path} is not readable",
                f"let the server's user read it (chgrp/chmod {path})",
            )
            return
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        found.fault(
            "tls",
            f"{cert} and {key} cannot be used together ({exc})",
            "use the key that belongs to the certificate (both PEM)",
        )
        return
    try:
        not_after = cert_not_after(cert)
    except (ValueError, KeyError, ssl.SSLError) as exc:
        found.fault("tls", f"cannot read the expiry of {cert}: {exc}", "check it is a PEM cert")
        return
    now = now or dt.datetime.now(dt.UTC)
    fix = (
        "delete it; mailhub makes a new one at start"
        if generated
        else "renew it (certbot renew), then reload mailhub (kill -HUP)"
    )
    if not_after <= now:
        found.fault("tls", f"certificate {cert} expired on {not_after:%Y-%m-%d %H:%M} UTC", fix)
    elif not_after - now < dt.timedelta(days=EXPIRY_WARNING_DAYS):
        days = (not_after - now).days
        found.warn("tls", f"certificate {cert} expires in {days} day(s)", fix)
    else:
        found.notes.append(f"ok    tls: {cert} valid until {not_after:%Y-%m-%d}")


# ---------------------------------------------------------------- ports
def listeners(settings: Settings) -> list[tuple[str, int]]:
    pairs = [
        ("imap.port", settings.imap.port),
        ("imap.tls_port", settings.imap.tls_port),
        ("pop3.port", settings.pop3.port),
        ("pop3.tls_port", settings.pop3.tls_port),
        ("lmtp.port", settings.lmtp.port),
        ("smtp.port", settings.smtp.port),
    ]
    if settings.metrics.enabled:
        pairs.append(("metrics.port", settings.metrics.port))
    return [(k, p) for k, p in pairs if p]


def _answer(host: str, port: int, tls: bool) -> str:
    """The first line a listener sends (empty when it says nothing within a second)."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as raw:
            if not tls:
                return raw.recv(200).decode("latin-1", "replace")
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with ctx.wrap_socket(raw) as s:
                return s.recv(200).decode("latin-1", "replace")
    except OSError:
        return ""


def check_ports(settings: Settings, found: Findings) -> None:
    from mailhub.ops.health import loopback_for

    host = settings.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for key, port in listeners(settings):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                greeting = _answer(loopback_for(host), port, key.endswith("tls_port"))
                if "mailhub" in greeting or (
                    key in ("lmtp.port", "smtp.port", "metrics.port") and greeting.startswith("220")
                ):
                    found.notes.append(f"ok    ports: {key} {port} is served by a running mailhub")
                    continue
                what = f"answers {greeting.strip()[:50]!r}" if greeting else "says nothing"
                found.fault(
                    "ports",
                    f"{key} {port} on {host} is in use by another program ({what})",
                    f"stop that program or change {key}",
                )
            elif exc.errno == errno.EACCES:
                found.fault(
                    "ports",
                    f"{key} {port} cannot be bound by {_user_name(os.geteuid())}"
                    " (ports below 1024 need privileges)",
                    'start mailhub as root with user = "mailhub" (it drops privileges '
                    "after binding), or set sysctl net.ipv4.ip_unprivileged_port_start=0",
                )
            elif exc.errno == errno.EADDRNOTAVAIL:
                found.fault(
                    "ports",
                    f"host {host} is not an address of this machine",
                    "set host to one of its addresses, 0.0.0.0 or ::",
                )
                return
            else:
                found.fault("ports", f"{key} {port}: {exc.strerror}", f"check {key}")
        finally:
            s.close()


# ---------------------------------------------------------------- store
async def check_store(settings: Settings, found: Findings) -> None:
    from mailhub.auth.directory import AccountDirectory, AccountsFileError
    from mailhub.errors import MailError
    from mailhub.store.maildir import MaildirMailstore, account_dir, layout
    from mailhub.store.maildir.index import FILE_NAME as INDEX_FILE
    from mailhub.store.model import QuotaLimits

    directory = AccountDirectory(settings.data_dir)
    try:
        directory.reload()
    except AccountsFileError as exc:
        found.fault("accounts", str(exc), "repair accounts.json from a backup")
        return
    root = settings.data_dir / "mail"
    store = MaildirMailstore(root)
    try:
        for rec in directory.list():
            path = account_dir(root, rec.address)
            if not path.exists():
                continue  # never received mail: created on first use
            try:
                account = await store.open_account(
                    rec.address, QuotaLimits(rec.quota_bytes, rec.quota_messages)
                )
                boxes = await account.list_mailboxes()
            except (MailError, OSError) as exc:
                found.fault(
                    "store",
                    f"{rec.address}: cannot open the account ({exc})",
                    f"check {path} (permissions, disk)",
                )
                continue
            for box in boxes:
                folder = layout.folder_dir(path, box.name)
                where = f"{rec.address} folder {box.name!r}"
                index = folder / INDEX_FILE
                if index.exists():
                    problem = _quick_check(index)
                    if problem:
                        found.fault(
                            "store",
                            f"{where}: index damaged ({problem})",
                            f"stop mailhub and delete {index}* (rebuilt from the files)",
                        )
                        continue
                try:
                    mailbox = await account.open_mailbox(box.name)
                    snap = await mailbox.snapshot()
                except (MailError, OSError, sqlite3.Error) as exc:
                    found.fault(
                        "store",
                        f"{where}: cannot be opened ({exc})",
                        f"check the permissions of {folder}",
                    )
                    continue
                files = _count_files(folder)
                if files != len(snap.messages):
                    found.fault(
                        "store",
                        f"{where}: the index lists {len(snap.messages)} "
                        f"messages but {files} files are on disk",
                        f"stop mailhub and delete {index}* (rebuilt from the files)",
                    )
    finally:
        await store.close()


def _quick_check(index: Path) -> str:
    try:
        conn = sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("PRAGMA quick_check").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(exc)
    return "" if row and row[0] == "ok" else str(row[0] if row else "no answer")


def _count_files(folder: Path) -> int:
    n = 0
    for sub in ("cur", "new"):
        with contextlib.suppress(OSError):
            n += sum(1 for e in os.scandir(folder / sub) if e.is_file())
    return n


# ---------------------------------------------------------------- command
def diagnose(settings: Settings, store: bool = True) -> Findings:
    found = Findings()
    check_config(settings, found)
    check_data_dir(settings, found)
    check_tls(settings, found)
    check_ports(settings, found)
    if store and settings.data_dir.is_dir():
        asyncio.run(check_store(settings, found))
    return found


def run(args: argparse.Namespace, settings: Settings) -> int:
    found = diagnose(settings, store=not args.no_store)
    for line in found.faults + found.warnings:
        print(line)
    if args.verbose:
        for line in found.notes:
            print(line)
    if found.faults:
        print(f"doctor: {len(found.faults)} fault(s), {len(found.warnings)} warning(s)")
        return 1
    print(f"doctor: no faults ({len(found.warnings)} warning(s))")
    return 0
