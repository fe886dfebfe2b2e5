"""What every benchmark needs to run the servers it compares: free ports, waiting for a
listener, and a private Dovecot on loopback (each benchmark supplies its own config text)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60.0
) -> None:
    """Return once something accepts on ``port``; fail if ``proc`` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port}")


class DovecotDaemon:
    """Debian's Dovecot with a private config under ``<base>/dovecot`` (run, state, mail)."""

    name = "dovecot"

    def __init__(self, base: Path) -> None:
        self.dir = base / "dovecot"
        self.port = free_port()
        self.conf = self.dir / "dovecot.conf"
        self.started = False
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    def add_account(self, address: str, tree: Path) -> None:
        """Copy a Maildir++ tree in as ``mail/<domain>/<local part>``."""
        local, _, domain = address.partition("@")
        target = self.dir / "mail" / domain / local
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(tree, target)

    def launch(self, config: str) -> None:
        """Write ``config``, hand the mail to Dovecot's mail user, start, wait for the port."""
        subprocess.run(["chown", "-R", "nobody:nogroup", str(self.dir / "mail")], check=True)
        self.conf.write_text(config)
        subprocess.run(["dovecot", "-c", str(self.conf)], check=True)
        self.started = True
        try:
            wait_port(self.port, timeout=30)
        except RuntimeError as exc:
            raise RuntimeError(f"dovecot did not start; see {self.dir / 'dovecot.log'}") from exc

    def master(self) -> int:
        return int((self.dir / "run" / "master.pid").read_text())

    def stop(self) -> None:
        if not self.started:
            return
        pid = self.master()
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
