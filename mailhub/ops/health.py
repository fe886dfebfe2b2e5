"""``mailhub health``: a real protocol check of a running server (the container HEALTHCHECK).

It connects to the configured IMAP and POP3 ports on loopback (the address the server listens
on, with a wildcard replaced by loopback), reads each greeting, and with an account
(``--user``/``--password-file`` or the ``[health]`` settings) logs in and out. One line on
stdout says what was checked or what failed; exit 0 healthy, 1 not.

A TCP connect alone would call a wedged event loop healthy; a greeting proves the server
accepts and answers, and a login proves the accounts file and the store open.
"""

from __future__ import annotations

import argparse
import contextlib
import imaplib
import poplib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from mailhub.config import Settings
from mailhub.settings_loader import add_config_arguments

EX_OK = 0
EX_UNHEALTHY = 1


@dataclass(frozen=True)
class Target:
    protocol: str  # imap, imaps, pop3, pop3s
    host: str
    port: int


class Unhealthy(Exception):
    """One line naming the listener and what went wrong."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("health", help="check that the running server answers IMAP and POP3")
    add_config_arguments(p)
    p.add_argument("--host", metavar="ADDR", help="connect here instead of the listen address")
    p.add_argument("--user", metavar="ADDRESS", help="log in as this account (health.user)")
    p.add_argument(
        "--password-file",
        metavar="PATH",
        type=Path,
        help="file whose first line is the password (health.password_file)",
    )
    p.add_argument(
        "--imap-port",
        metavar="N",
        type=int,
        help="IMAP port to check (default imap.port, or imap.tls_port when 0)",
    )
    p.add_argument(
        "--pop3-port",
        metavar="N",
        type=int,
        help="POP3 port to check (default pop3.port, or pop3.tls_port when 0)",
    )
    p.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=5.0,
        help="per-connection timeout (default 5)",
    )


def loopback_for(host: str) -> str:
    """Where to connect to reach a server listening on ``host``."""
    if host in ("", "0.0.0.0", "*"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "::1"
    return host.strip("[]")


def targets(settings: Settings, host: str | None = None) -> list[Target]:
    """One IMAP and one POP3 listener to check (the plain port when enabled, else TLS)."""
    where = host or loopback_for(settings.host)
    found: list[Target] = []
    if settings.imap.port:
        found.append(Target("imap", where, settings.imap.port))
    elif settings.imap.tls_port:
        found.append(Target("imaps", where, settings.imap.tls_port))
    if settings.pop3.port:
        found.append(Target("pop3", where, settings.pop3.port))
    elif settings.pop3.tls_port:
        found.append(Target("pop3s", where, settings.pop3.tls_port))
    return found


def _client_tls() -> ssl.SSLContext:
    # The server's own certificate may be self-signed or name the public host, not loopback:
    # health checks liveness, not the certificate (``mailhub doctor`` checks that).
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def check_imap(t: Target, timeout: float, user: str | None, password: str | None) -> str:
    cls_args: dict[str, object] = {"timeout": timeout}
    try:
        if t.protocol == "imaps":
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                t.host, t.port, ssl_context=_client_tls(), timeout=timeout
            )
        else:
            conn = imaplib.IMAP4(t.host, t.port, **cls_args)  # type: ignore[arg-type]
    except (OSError, imaplib.IMAP4.error) as exc:
        raise Unhealthy(f"{t.protocol} {t.host}:{t.port}: {_reason(exc)}") from None
    try:
        greeting = conn.welcome.decode("utf-8", "replace")
        if not greeting.startswith("* OK") and not greeting.startswith("* PREAUTH"):
            raise Unhealthy(f"{t.protocol} {t.host}:{t.port}: bad greeting {greeting[:60]!r}")
        if user is None or password is None:
            return f"{t.protocol} {t.host}:{t.port} greeting ok"
        if "LOGINDISABLED" in conn.capabilities and "STARTTLS" in conn.capabilities:
            conn.starttls(_client_tls())
        conn.login(user, password)
        conn.select("INBOX", readonly=True)
        return f"{t.protocol} {t.host}:{t.port} login ok"
    except (OSError, imaplib.IMAP4.error) as exc:
        raise Unhealthy(f"{t.protocol} {t.host}:{t.port}: {_reason(exc)}") from None
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()


def check_pop3(t: Target, timeout: float, user: str | None, password: str | None) -> str:
    try:
        if t.protocol == "pop3s":
            conn: poplib.POP3 = poplib.POP3_SSL(
                t.host, t.port, timeout=timeout, context=_client_tls()
            )
        else:
            conn = poplib.POP3(t.host, t.port, timeout=timeout)
    except (OSError, poplib.error_proto) as exc:
        raise Unhealthy(f"{t.protocol} {t.host}:{t.port}: {_reason(exc)}") from None
    try:
        greeting = conn.getwelcome().decode("utf-8", "replace")
        if not greeting.startswith("+OK"):
            raise Unhealthy(f"{t.protocol} {t.host}:{t.port}: bad greeting {greeting[:60]!r}")
        if user is None or password is None:
            return f"{t.protocol} {t.host}:{t.port} greeting ok"
        if t.protocol == "pop3":
            try:
                caps = conn.capa()
            except poplib.error_proto:
                caps = {}
            if "STLS" in caps:
                conn.stls(_client_tls())
        conn.user(user)
        conn.pass_(password)
        conn.stat()
        return f"{t.protocol} {t.host}:{t.port} login ok"
    except (OSError, poplib.error_proto) as exc:
        raise Unhealthy(f"{t.protocol} {t.host}:{t.port}: {_reason(exc)}") from None
    finally:
        try:
            conn.quit()
        except (OSError, poplib.error_proto):
            conn.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "no answer (timed out)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text)[:120] or exc.__class__.__name__


def check(
    settings: Settings,
    host: str | None = None,
    user: str | None = None,
    password: str | None = None,
    timeout: float = 5.0,
) -> str:
    """Check every target; returns the success line or raises :class:`Unhealthy`."""
    found = targets(settings, host)
    if not found:
        raise Unhealthy("no IMAP or POP3 listener is configured")
    done = []
    for t in found:
        if t.protocol.startswith("imap"):
            done.append(check_imap(t, timeout, user, password))
        else:
            done.append(check_pop3(t, timeout, user, password))
    return "healthy: " + ", ".join(done)


def read_password(path: Path) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except OSError as exc:
        raise Unhealthy(f"cannot read password file {path}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    user = args.user or settings.health.user
    password_file = args.password_file or settings.health.password_file
    try:
        password = None
        if user is not None:
            if password_file is None:
                raise Unhealthy("--user needs --password-file (or health.password_file)")
            password = read_password(password_file)
        if args.imap_port is not None or args.pop3_port is not None:
            settings = settings.model_copy(
                update={
                    "imap": settings.imap.model_copy(update={"port": args.imap_port})
                    if args.imap_port is not None
                    else settings.imap,
                    "pop3": settings.pop3.model_copy(update={"port": args.pop3_port})
                    if args.pop3_port is not None
                    else settings.pop3,
                }
            )
        line = check(settings, args.host, user, password, args.timeout)
    except Unhealthy as exc:
        print(f"unhealthy: {exc}", flush=True)
        return EX_UNHEALTHY
    print(line, flush=True)
    return EX_OK
