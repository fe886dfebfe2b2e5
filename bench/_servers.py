"""What every benchmark needs to run the servers it compares: free ports, waiting for a
listener, and a private Dovecot on loopback (each benchmark supplies its own config text)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
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


ROOT = Path(__file__).resolve().parent.parent
_PORT_FLAGS = ("--imap-port", "--imaps-port", "--pop3-port", "--pop3s-port", "--lmtp-port",
               "--smtp-port")  # fmt: skip


class MailhubServer:
    """``mailhub serve`` on a private data dir, with only the benchmarked listener on.

    Subclasses (or callers) set ``listener`` to the ``serve`` flag of that listener.
    """

    name = "mailhub"
    listener = "--imap-port"

    def __init__(self, base: Path) -> None:
        self.dir = base / "mailhub"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def add_account(self, address: str, password: str, tree: Path | None = None) -> None:
        """Create the account; with ``tree``, its Maildir++ is a copy of that tree."""
        sys.path.insert(0, str(ROOT))
        from mailhub.auth.directory import AccountDirectory
        from mailhub.store.maildir import account_dir

        AccountDirectory(self.dir).add(address, password)
        if tree is not None:
            target = account_dir(self.dir / "mail", address)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(tree, target)

    def launch(self, config: str | None = None) -> None:
        args = [sys.executable, "-m", "mailhub", "serve", "--data-dir", str(self.dir)]
        if config is not None:
            conf = self.dir / "mailhub.toml"
            conf.write_text(config)
            args += ["--config", str(conf)]
        for flag in _PORT_FLAGS:
            args += [flag, str(self.port if flag == self.listener else 0)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.log = open(self.dir / "serve.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.log.close()
            self.proc = None
