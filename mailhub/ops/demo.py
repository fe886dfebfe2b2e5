"""``mailhub demo``: IMAP versus POP3 played out on one mailbox, with the real wire transcript.

With no arguments it needs no setup: it starts a private ``mailhub serve`` on a temporary data
directory and free loopback ports, creates an account with ``mailhub user add``, delivers mail
over LMTP and runs the story of :mod:`mailhub.demo.story`, then stops the server and removes the
directory. With ``--server`` it runs the same story against a running mailhub and a real
account (best a test account: the demo adds a folder ``Bills`` and five small messages, and
its POP3 desktop downloads and deletes only the messages the demo delivered).
"""

from __future__ import annotations

import argparse
import secrets
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mailhub.config import Settings
from mailhub.demo.private import PrivateServer
from mailhub.demo.render import page, terminal
from mailhub.demo.story import Demo, Step, Target
from mailhub.demo.wire import DemoError, Endpoint

EX_OK = 0
EX_FAILED = 1
EX_USAGE = 64
DEMO_USER = "demo@example.test"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="show IMAP sync and POP3 download side by side",
        description="Play out two IMAP devices (a phone in IDLE and a laptop) staying in sync "
        "and a POP3 desktop downloading under the delete and keep policies, printing every "
        "protocol line and writing the same story as an HTML page. Without --server it runs "
        "a private server on a temporary directory (nothing to set up). With --server it uses "
        "a real account (best a test account): it leaves a folder Bills and the demo's kept "
        "messages there, and its POP3 desktop deletes only the messages the demo delivered.",
    )
    p.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        help="with --server: the server's config (to switch the POP3 policy)",
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        type=Path,
        help="with --server: the server's data directory (to switch the POP3 policy)",
    )
    p.add_argument(
        "--html",
        metavar="PATH",
        type=Path,
        default=Path("mailhub-demo.html"),
        help="where to write the HTML page (default ./mailhub-demo.html)",
    )
    p.add_argument("--quiet", action="store_true", help="no narrative on stdout")
    real = p.add_argument_group("a real server (instead of the private one)")
    real.add_argument("--server", metavar="HOST", help="a running mailhub to use")
    real.add_argument("--imap-port", metavar="N", type=int, help="its IMAP port (default 143)")
    real.add_argument("--pop3-port", metavar="N", type=int, help="its POP3 port (default 110)")
    real.add_argument(
        "--lmtp-port",
        metavar="N",
        type=int,
        help="its LMTP port (without it the mail is put in by IMAP APPEND)",
    )
    real.add_argument("--user", metavar="ADDRESS", help="the account to use")
    real.add_argument("--password", metavar="SECRET", help="its password (or --password-file)")
    real.add_argument(
        "--password-file", metavar="PATH", type=Path, help="file whose first line is the password"
    )
    real.add_argument(
        "--tls", action="store_true", help="the ports are implicit-TLS ports (993/995 role)"
    )
    real.add_argument("--starttls", action="store_true", help="upgrade with STARTTLS / STLS")
    real.add_argument(
        "--cafile",
        metavar="PATH",
        type=Path,
        help="trust this certificate (e.g. the server's self-signed cert.pem)",
    )
    real.add_argument(
        "--insecure", action="store_true", help="do not verify the server's certificate"
    )


def _tls(args: argparse.Namespace) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(args.cafile) if args.cafile else None)
    if args.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _real_target(args: argparse.Namespace, settings: Settings) -> Target:
    if not args.user:
        raise DemoError("--server needs --user (and --password or --password-file)")
    password = args.password
    if args.password_file is not None:
        password = args.password_file.read_text("utf-8").splitlines()[0]
    if not password:
        raise DemoError("--server needs --password or --password-file")
    ctx = _tls(args) if (args.tls or args.starttls) else None
    implicit = ctx if args.tls else None
    upgrade = ctx if args.starttls else None
    imap = Endpoint(args.server, args.imap_port or (993 if args.tls else 143), implicit, upgrade)
    pop3 = Endpoint(args.server, args.pop3_port or (995 if args.tls else 110), implicit, upgrade)
    lmtp = Endpoint(args.server, args.lmtp_port) if args.lmtp_port else None
    target = Target(args.user, password, imap, pop3, lmtp, private=False)
    if args.data_dir is not None or args.config is not None:
        target.set_policy = _directory_switch(settings.data_dir, args.user)
    return target


def _directory_switch(data_dir: Path, user: str) -> Callable[[str], list[str]]:
    """Switch the POP3 delete policy through the account directory the server reads."""
    from mailhub.auth.directory import AccountDirectory

    directory = AccountDirectory(data_dir)
    rec = directory.lookup(user)
    if rec is None:
        raise DemoError(f"no account {user} in {data_dir}")
    original = rec.pop3.on_delete.value

    def switch(policy: str) -> list[str]:
        value = original if policy == "restore" else policy
        directory.update(user, pop3={**rec.pop3.model_dump(mode="json"), "on_delete": value})
        return [
            f"mailhub user set {user} --pop3-on-delete {value}   "
            f"(through the account directory in {data_dir})"
        ]

    return switch


def _private_switch(server: PrivateServer) -> Callable[[str], list[str]]:
    def switch(policy: str) -> list[str]:
        if policy == "restore":
            return []
        out = server.cli("user", "set", server.user, "--pop3-on-delete", policy)
        return [f"mailhub user set {server.user} --pop3-on-delete {policy}", *out.splitlines()]

    return switch


def run(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    echo_n = [0]

    def echo(step: Step) -> None:
        echo_n[0] += 1
        if not args.quiet:
            print(terminal(step, echo_n[0]), flush=True)

    server: PrivateServer | None = None
    demo: Demo | None = None
    try:
        if args.server:
            target = _real_target(args, settings)
            where = f"{args.server} (IMAP {target.imap.port}, POP3 {target.pop3.port})"
        else:
            server = PrivateServer(DEMO_USER)
            if not args.quiet:
                print(
                    "mailhub demo: starting a private server on a temporary directory...",
                    flush=True,
                )
            server.start()
            host = server.host
            target = Target(
                server.user,
                server.password,
                Endpoint(host, server.ports["imap"]),
                Endpoint(host, server.ports["pop3"]),
                Endpoint(host, server.ports["lmtp"]),
                private=True,
            )
            target.set_policy = _private_switch(server)
            where = (
                f"a private mailhub on {host} (IMAP {server.ports['imap']}, "
                f"POP3 {server.ports['pop3']}, LMTP {server.ports['lmtp']}), "
                f"account {server.user}"
            )
            if not args.quiet:
                print(f"mailhub demo: {where}", flush=True)
        demo = Demo(target, secrets.token_hex(6), echo)
        steps = demo.run()
    except (DemoError, OSError, TimeoutError) as exc:
        text = str(exc) or exc.__class__.__name__
        if demo is not None and demo.step is not None and demo.step not in demo.steps:
            print(terminal(demo.step, len(demo.steps) + 1) + "\n   (failed here)", file=sys.stderr)
        print(f"mailhub demo: failed: {text}", file=sys.stderr)
        return EX_FAILED
    finally:
        if server is not None:
            server.cleanup()
    total = time.monotonic() - started
    args.html.write_text(page(steps, where, total), encoding="utf-8")
    if not args.quiet:
        print(
            f"\nmailhub demo: {len(steps)} steps in {total:.1f} s; "
            f"the same story as a web page: {args.html}"
        )
    return EX_OK
