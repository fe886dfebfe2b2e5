"""The demo's private server: a real ``mailhub serve`` on a temporary data directory.

It is the same program an operator runs (a child process, started the way the tests start it),
on free loopback ports, with its account created and its POP3 policy changed through the real
``mailhub user`` commands, so the demo shows mailhub as it is and not a staged copy.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mailhub.demo.wire import DemoError

_READY = re.compile(r"mailhub \S+ ready")
PORTS = ("imap", "pop3", "lmtp")


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (held open together so they cannot coincide)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _env(data_dir: Path) -> dict[str, str]:
    # No MAILHUB_* from the caller's shell: the private server must not read their config.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHUB_")}
    env["MAILHUB_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class PrivateServer:
    """``mailhub serve`` on 127.0.0.1 with IMAP, POP3 and LMTP on free ports."""

    def __init__(self, user: str) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="mailhub-demo-"))
        self.data_dir = self.tmp / "data"
        self.user = user
        self.password = secrets.token_urlsafe(16)
        self.host = "127.0.0.1"
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._ready = threading.Event()

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """Run ``mailhub ARGS`` against the private data directory; returns its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "mailhub", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=_env(self.data_dir),
            timeout=30,
        )
        if done.returncode != 0:
            raise DemoError(f"mailhub {args[0]} {args[1]} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def start(self) -> None:
        self.data_dir.mkdir(mode=0o700)
        self.cli("user", "add", self.user, "--password-stdin", stdin=self.password + "\n")
        for _attempt in range(3):
            if self._start_once():
                return
        raise DemoError("could not start the private server:\n" + "".join(self.log[-20:]))

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line)
            if _READY.search(line):
                self._ready.set()
        self._ready.set()

    def _start_once(self) -> bool:
        self.ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=True))
        self._ready.clear()
        cmd = [
            sys.executable,
            "-m",
            "mailhub",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--host",
            self.host,
            "--imap-port",
            str(self.ports["imap"]),
            "--pop3-port",
            str(self.ports["pop3"]),
            "--lmtp-port",
            str(self.ports["lmtp"]),
            "--imaps-port",
            "0",
            "--pop3s-port",
            "0",
            "--smtp-port",
            "0",
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(self.data_dir),
        )
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        self._ready.wait(20)
        if self.proc.poll() is None and any(_READY.search(line) for line in self.log):
            return True
        self.stop()  # a port taken between choosing and binding: choose again
        return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def cleanup(self) -> None:
        self.stop()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if not self.tmp.exists():
                return
            time.sleep(0.1)
