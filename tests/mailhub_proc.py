"""Helpers behind the shared fixtures: a real ``mailhub serve`` process on free loopback ports.

``mailhub_server`` is what protocol tests use: a fresh data directory with one account, every
listener on its own free port of 127.0.0.1, and helpers to run the CLI against the same data
directory, restart the server, and read its log. At teardown it sends SIGTERM and asserts a
clean exit (status 0, no traceback in the log).

``mailhub_factory`` starts servers with extra settings (a TOML text or dict, extra env vars)
when a test needs a non-default configuration.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# One implementation of 'n free ports', shared with the demo's private server.
from mailhub.demo.private import free_ports as free_ports

PORT_NAMES = ("imap", "imaps", "pop3", "pop3s", "lmtp", "smtp")
_PORT_FLAGS = {
    "imap": "--imap-port",
    "imaps": "--imaps-port",
    "pop3": "--pop3-port",
    "pop3s": "--pop3s-port",
    "lmtp": "--lmtp-port",
    "smtp": "--smtp-port",
}
_LISTENING = re.compile(r"\b(imaps?|pop3s?|lmtp|smtp) listening on ([^\s\"]+)")
_READY = re.compile(r"mailhub \S+ ready")
DEFAULT_USER = "alice@example.com"
DEFAULT_PASSWORD = "alice-Secret-42"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any MAILHUB_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHUB_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_cli(
    *args: str,
    data_dir: Path | None = None,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mailhub ARGS`` (text mode) and return the finished process."""
    extra = dict(env or {})
    if data_dir is not None:
        extra.setdefault("MAILHUB_DATA_DIR", str(data_dir))
    data = input.decode() if isinstance(input, bytes) else input
    return subprocess.run(
        [sys.executable, "-m", "mailhub", *args],
        input=data,
        capture_output=True,
        text=True,
        env=clean_env(extra),
        timeout=timeout,
    )


class _PortTaken(Exception):
    """The child could not bind a port that was free when it was chosen."""


class MailhubServer:
    """One ``mailhub serve`` subprocess and its data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        config: str | None = None,
        env: Mapping[str, str] | None = None,
        ports: Mapping[str, int] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.host = "127.0.0.1"
        self.user = user
        self.password = password
        self.env = dict(env or {})
        chosen = free_ports(len(PORT_NAMES))
        self.ports: dict[str, int] = dict(zip(PORT_NAMES, chosen, strict=True))
        self.ports.update(ports or {})
        self._fixed_ports = set(ports or {})
        self._started_once = False
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = data_dir.parent / f"{data_dir.name}.toml"
            self.config_path.write_text(config)
        self.proc: subprocess.Popen[str] | None = None
        self.allow_tracebacks = False
        self.listening: dict[str, str] = {}
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self.stdout = ""

    # -- helpers tests use -------------------------------------------------------------------

    @property
    def cafile(self) -> Path:
        """The self-signed certificate the server generated for loopback TLS."""
        return self.data_dir / "tls" / "cert.pem"

    def ssl_context(self) -> Any:
        """A client SSLContext that trusts the server's self-signed certificate."""
        import ssl

        ctx = ssl.create_default_context(cafile=str(self.cafile))
        return ctx

    def cli(
        self, *args: str, input: str | bytes | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run the CLI against this server's data directory (and config, if any)."""
        env = dict(self.env)
        env["MAILHUB_DATA_DIR"] = str(self.data_dir)
        if self.config_path is not None:
            env["MAILHUB_CONFIG"] = str(self.config_path)
        result = run_cli(*args, input=input, env=env)
        if check and result.returncode != 0:
            raise AssertionError(
                f"mailhub {' '.join(args)} exited {result.returncode}: {result.stderr}"
            )
        return result

    def add_user(self, address: str, password: str) -> None:
        self.cli("user", "add", address, "--password-stdin", input=password + "\n", check=True)

    @property
    def log(self) -> str:
        with self._cond:
            return "".join(self._lines)

    def wait_for_log(self, pattern: str, timeout: float = 10.0, start: int = 0) -> re.Match[str]:
        """Wait until a log line (from line index ``start``) matches ``pattern``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no log line matching {pattern!r}; log:\n{self.log_tail()}"
                    )
                self._cond.wait(left)

    def log_tail(self, n: int = 60) -> str:
        with self._cond:
            return "".join(self._lines[-n:])

    # -- lifecycle ---------------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "mailhub",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--host",
            self.host,
        ]
        for name, flag in _PORT_FLAGS.items():
            cmd += [flag, str(self.ports[name])]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def start(self) -> None:
        """Start and wait for the ready line. On the first start, a port another test grabbed
        in the meantime (they are picked free, then bound by the child) means new ports and
        another try; after that the ports stay fixed so ``restart`` keeps them."""
        attempts = 1 if self._started_once or len(self._fixed_ports) == len(PORT_NAMES) else 3
        for attempt in range(attempts):
            try:
                self._start_once()
                break
            except _PortTaken:
                if attempt == attempts - 1:
                    raise AssertionError(f"ports stayed busy:\n{self.log_tail()}") from None
                fresh = iter(free_ports(len(PORT_NAMES)))
                for name in PORT_NAMES:
                    if name not in self._fixed_ports:
                        self.ports[name] = next(fresh)
        self._started_once = True

    def _start_once(self) -> None:
        assert self.proc is None, "already running"
        first_line = len(self._lines)
        self.proc = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=clean_env(self.env),
        )
        self._reader = threading.Thread(target=self._pump, args=(self.proc,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        with self._cond:
            while True:
                if any(_READY.search(line) for line in self._lines[first_line:]):
                    break
                if self.proc.poll() is not None and not self._reader.is_alive():
                    status, self.proc = self.proc.returncode, None
                    tail = "".join(self._lines[first_line:])
                    if status == 71 and "address already in use" in tail.lower():
                        raise _PortTaken()
                    raise AssertionError(
                        f"mailhub serve exited {status} before ready:\n{self.log_tail()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"mailhub serve not ready in time:\n{self.log_tail()}")
                self._cond.wait(min(left, 0.5))
            self.listening = {}
            for line in self._lines[first_line:]:
                m = _LISTENING.search(line)
                if m:
                    self.listening.setdefault(m.group(1), m.group(2))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the server with ``sig``; returns its exit status."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            status = proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"mailhub serve did not stop on signal {sig}:\n{self.log_tail()}"
            ) from None
        if self._reader is not None:
            self._reader.join(5)
        if proc.stdout is not None:
            self.stdout += proc.stdout.read()
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
        self.proc = None
        return status

    def restart(self) -> None:
        status = self.stop()
        assert status == 0, f"unclean exit {status} on restart:\n{self.log_tail()}"
        self.start()

    def check_clean_exit(self) -> None:
        status = self.stop()
        assert status == 0, f"mailhub serve exited {status}:\n{self.log_tail()}"
        if not self.allow_tracebacks:
            assert "Traceback" not in self.log, f"traceback in the server log:\n{self.log}"
