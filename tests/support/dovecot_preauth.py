"""Drive Debian's Dovecot ``imap`` binary in PREAUTH mode over a pipe, on a given Maildir.

No daemon, no port and no authentication set-up: the binary serves one pre-authenticated
session on stdin/stdout with a private config. Tests use it to make real Dovecot Maildirs
(with ``dovecot-uidlist`` and ``dovecot-keywords``) and to read back what Dovecot reports.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

IMAP_BIN = "/usr/lib/dovecot/imap"

_CONFIG = """base_dir = {run}
log_path = {run}/dovecot.log
protocols = imap
ssl = no
mail_location = maildir:{maildir}
first_valid_uid = 0
first_valid_gid = 0
default_internal_user = root
default_login_user = root
mail_uid = dovecot
mail_gid = dovecot
"""


def available() -> bool:
    return os.path.exists(IMAP_BIN) and os.geteuid() == 0


def run(maildir: Path, lines: list[bytes], timeout: float = 60.0) -> bytes:
    """Send IMAP command ``lines`` (each without CRLF; literals inline) and return the output."""
    run_dir = Path(tempfile.mkdtemp(prefix="dovecot-run-"))
    try:
        # Dovecot refuses to touch mail as root: give the Maildir to its own user.
        maildir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["chown", "-R", "dovecot:dovecot", str(maildir)], check=True)
        for parent in maildir.parents:  # pytest's temp dirs are 0700: let Dovecot through
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
        conf = run_dir / "dovecot.conf"
        conf.write_text(_CONFIG.format(run=run_dir, maildir=maildir))
        script = b"".join(line + b"\r\n" for line in lines) + b"zz LOGOUT\r\n"
        env = dict(os.environ, USER="root", HOME=str(run_dir))
        proc = subprocess.run(
            [IMAP_BIN, "-c", str(conf)],
            input=script,
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        if b"* PREAUTH" not in proc.stdout:
            raise RuntimeError(f"dovecot imap failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def append_line(tag: str, mailbox: str, flags: str, data: bytes) -> bytes:
    """One APPEND with a non-synchronising literal (Dovecot supports LITERAL+)."""
    return f"{tag} APPEND {mailbox} ({flags}) {{{len(data)}+}}\r\n".encode() + data


def uids_and_flags(output: bytes) -> dict[int, frozenset[str]]:
    """Parse ``* n FETCH (UID u FLAGS (...))`` lines of a ``FETCH 1:* (UID FLAGS)``."""
    found: dict[int, frozenset[str]] = {}
    for m in re.finditer(rb"\* \d+ FETCH \((.*?)\)\r\n", output):
        body = m.group(1).decode()
        uid = re.search(r"UID (\d+)", body)
        flags = re.search(r"FLAGS \(([^)]*)\)", body)
        if uid and flags:
            names = flags.group(1).split()
            found[int(uid.group(1))] = frozenset(f for f in names if f != "\\Recent")
    return found


def uidvalidity(output: bytes) -> int:
    m = re.search(rb"UIDVALIDITY (\d+)", output)
    if m is None:
        raise ValueError("no UIDVALIDITY in Dovecot's answer")
    return int(m.group(1))


def copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True)
