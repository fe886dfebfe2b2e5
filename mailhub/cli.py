"""The ``mailhub`` command line (a contract: deployment files and outside checks rely on it).

::

    mailhub --version
    mailhub serve [--config PATH] [--data-dir DIR] [--host ADDR] [--imap-port N] [--imaps-port N]
                  [--pop3-port N] [--pop3s-port N] [--lmtp-port N] [--smtp-port N]
    mailhub user add|passwd ADDRESS [--password-stdin]
    mailhub user del ADDRESS
    mailhub user list
    mailhub user set ADDRESS [--quota-bytes N] [--quota-messages N] [--alias A ...] ...
    mailhub deliver [--folder NAME] [-f SENDER] RECIPIENT... < message
    mailhub health [--user ADDRESS --password-file PATH]   (exit 0 healthy, 1 not)
    mailhub import ADDRESS MBOX-OR-MAILDIR [--folder NAME]
    mailhub doctor [--no-store] [-v]                        (exit 0 no faults, 1 faults)

Exit statuses follow sysexits(3): 0 ok, 64 usage, 65 bad input, 67 unknown user,
73 cannot create, 75 temporary failure, 78 configuration error. Errors are one line on stderr,
never a traceback. uvloop is installed here and nowhere else.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib
import os
import secrets
import sys
from collections.abc import Sequence
from typing import Any

from mailhub import __version__
from mailhub.config import Settings
from mailhub.errors import MailError, MailErrorKind
from mailhub.malloc_tuning import return_big_blocks, space_out_full_collections
from mailhub.settings_loader import (
    ENV_NO_UVLOOP,
    ConfigError,
    add_config_arguments,
    load_settings,
)

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOUSER = 67
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78

_MAIL_ERROR_STATUS = {
    MailErrorKind.BADNAME: EX_DATAERR,
    MailErrorKind.NOTFOUND: EX_NOUSER,
    MailErrorKind.EXISTS: EX_CANTCREAT,
}


class CliError(Exception):
    """A failure reported as ``mailhub: <message>`` with an exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _port(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailhub",
        description="IMAP and POP3 over one Maildir++ store, with LMTP/SMTP delivery.",
    )
    parser.add_argument("--version", action="version", version=f"mailhub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server")
    add_config_arguments(serve)
    serve.add_argument("--host", metavar="ADDR", help="address to listen on (default 127.0.0.1)")
    for flag, help_text in (
        ("--imap-port", "IMAP (STARTTLS)"),
        ("--imaps-port", "IMAP over TLS"),
        ("--pop3-port", "POP3 (STLS)"),
        ("--pop3s-port", "POP3 over TLS"),
        ("--lmtp-port", "LMTP delivery"),
        ("--smtp-port", "SMTP delivery"),
    ):
        serve.add_argument(flag, metavar="N", type=_port, help=f"{help_text} port; 0 disables")

    user = sub.add_parser("user", help="manage accounts")
    user_sub = user.add_subparsers(dest="user_command", metavar="ACTION")
    for name, help_text in (("add", "create an account"), ("passwd", "change a password")):
        p = user_sub.add_parser(name, help=help_text)
        add_config_arguments(p)
        p.add_argument("address")
        p.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of stdin",
        )
    p = user_sub.add_parser("del", help="delete an account (its mail stays on disk)")
    add_config_arguments(p)
    p.add_argument("address")
    p = user_sub.add_parser("list", help="list accounts")
    add_config_arguments(p)
    p = user_sub.add_parser("set", help="change quota, aliases, POP3 policy, enabled")
    add_config_arguments(p)
    p.add_argument("address")
    p.add_argument("--quota-bytes", metavar="N", type=int, help="storage quota (0 = unlimited)")
    p.add_argument(
        "--quota-messages", metavar="N", type=int, help="message count quota (0 = unlimited)"
    )
    p.add_argument(
        "--alias",
        metavar="A",
        action="append",
        help="alias address (repeat; replaces the current aliases)",
    )
    p.add_argument("--no-aliases", action="store_true", help="remove every alias")
    p.add_argument("--pop3", choices=("yes", "no"), help="allow POP3 access")
    p.add_argument(
        "--pop3-on-delete",
        choices=("delete", "keep", "archive", "trash"),
        help="what a POP3 DELE does",
    )
    p.add_argument(
        "--pop3-mark-seen",
        choices=("yes", "no"),
        help="mark messages \\Seen when POP3 downloads them",
    )
    p.add_argument(
        "--pop3-scope",
        choices=("all", "since_enabled", "not_retrieved"),
        help="which INBOX messages POP3 offers",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--enable",
        dest="enabled",
        action="store_const",
        const=True,
        help="allow the account to log in and receive mail",
    )
    group.add_argument(
        "--disable",
        dest="enabled",
        action="store_const",
        const=False,
        help="refuse logins and delivery for the account",
    )

    deliver = sub.add_parser("deliver", help="deliver one message from stdin (an MDA)")
    add_config_arguments(deliver)
    deliver.add_argument("--folder", metavar="NAME", help="folder to file into (default INBOX)")
    deliver.add_argument(
        "-f",
        "--from",
        dest="sender",
        metavar="SENDER",
        help="envelope sender, written as Return-Path",
    )
    deliver.add_argument("recipients", nargs="+", metavar="RECIPIENT")
    for module_name in OPS_COMMANDS.values():
        importlib.import_module(module_name).add_parser(sub)
    return parser


# Operations commands (mailhub/ops/): each module has add_parser(sub) and run(args, settings).
OPS_COMMANDS = {
    "health": "mailhub.ops.health",
    "import": "mailhub.ops.importer",
    "doctor": "mailhub.ops.doctor",
    "demo": "mailhub.ops.demo",
}


def _settings(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Settings:
    try:
        return load_settings(args.config, args.data_dir, overrides)
    except ConfigError as exc:
        raise CliError(f"configuration error: {exc}", EX_CONFIG) from None


def _read_password(args: argparse.Namespace, address: str) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
    else:
        try:
            password = getpass.getpass(f"Password for {address}: ")
            again = getpass.getpass("Repeat password: ")
        except (EOFError, KeyboardInterrupt):
            raise CliError("no password given", EX_USAGE) from None
        if password != again:
            raise CliError("the passwords do not match", EX_DATAERR)
    if not password:
        raise CliError("empty password", EX_DATAERR)
    return password


def _directory(settings: Settings) -> Any:
    from mailhub.auth.directory import AccountDirectory, AccountsFileError

    directory = AccountDirectory(settings.data_dir)
    try:
        directory.reload()
    except AccountsFileError as exc:
        raise CliError(str(exc), EX_CONFIG) from None
    return directory


def _describe(rec: Any) -> str:
    quota = []
    if rec.quota_bytes is not None:
        quota.append(f"{rec.quota_bytes}B")
    if rec.quota_messages is not None:
        quota.append(f"{rec.quota_messages}msgs")
    pop3 = rec.pop3
    fields = [
        rec.address,
        "enabled" if rec.enabled else "disabled",
        f"aliases={','.join(rec.aliases) or '-'}",
        f"quota={'/'.join(quota) or 'none'}",
        "pop3="
        + (
            f"{pop3.on_delete.value},{'seen' if pop3.mark_seen_on_retr else 'unseen'},"
            f"{pop3.scope.value}"
            if pop3.enabled
            else "off"
        ),
    ]
    return "\t".join(fields)


async def _inbox_uid_next(settings: Settings, address: str) -> int:
    from mailhub.store.maildir import MaildirMailstore
    from mailhub.store.model import INBOX

    store = MaildirMailstore(settings.data_dir / "mail")
    try:
        account = await store.open_account(address)
        mailbox = await account.open_mailbox(INBOX)
        return (await mailbox.status()).uid_next
    finally:
        await store.close()


def cmd_user(args: argparse.Namespace) -> int:
    settings = _settings(args)
    directory = _directory(settings)
    action = args.user_command
    if action == "list":
        for rec in directory.list():
            print(_describe(rec))
        return EX_OK
    if action == "add":
        password = _read_password(args, args.address)
        rec = directory.add(args.address, password)
        print(f"created {rec.address}")
        return EX_OK
    if action == "passwd":
        if directory.lookup(args.address) is None:
            raise CliError(f"no account {args.address}", EX_NOUSER)
        password = _read_password(args, args.address)
        rec = directory.set_password(args.address, password)
        print(f"password changed for {rec.address}")
        return EX_OK
    if action == "del":
        rec = directory.delete(args.address)
        print(f"deleted {rec.address} (its mail is kept in {settings.data_dir / 'mail'})")
        return EX_OK
    if action == "set":
        return _user_set(args, settings, directory)
    raise CliError("usage: mailhub user {add,passwd,del,list,set} ...", EX_USAGE)


def _user_set(args: argparse.Namespace, settings: Settings, directory: Any) -> int:
    current = directory.lookup(args.address)
    if current is None:
        raise CliError(f"no account {args.address}", EX_NOUSER)
    fields: dict[str, Any] = {}
    if args.quota_bytes is not None:
        fields["quota_bytes"] = args.quota_bytes or None
    if args.quota_messages is not None:
        fields["quota_messages"] = args.quota_messages or None
    if args.no_aliases:
        fields["aliases"] = []
    if args.alias:
        fields["aliases"] = args.alias
    if args.enabled is not None:
        fields["enabled"] = args.enabled
    pop3: dict[str, Any] = {}
    if args.pop3 is not None:
        pop3["enabled"] = args.pop3 == "yes"
    if args.pop3_on_delete is not None:
        pop3["on_delete"] = args.pop3_on_delete
    if args.pop3_mark_seen is not None:
        pop3["mark_seen_on_retr"] = args.pop3_mark_seen == "yes"
    if args.pop3_scope is not None:
        pop3["scope"] = args.pop3_scope
    turning_on = args.pop3 == "yes" and not current.pop3.enabled
    if args.pop3_scope == "since_enabled" or (
        turning_on and current.pop3.scope.value == "since_enabled"
    ):
        # "Since enabled" means mail that arrives from now on: remember where INBOX is now.
        pop3["enabled_from_uid"] = asyncio.run(_inbox_uid_next(settings, current.address))
    if pop3:
        fields["pop3"] = pop3
    if not fields:
        print(_describe(current))
        return EX_OK
    try:
        rec = directory.update(current.address, **fields)
    except ValueError as exc:
        raise CliError(str(exc), EX_DATAERR) from None
    print(_describe(rec))
    return EX_OK


def cmd_deliver(args: argparse.Namespace) -> int:
    """Local delivery agent: one message on stdin, sysexits status (Postfix, procmail)."""
    import logging

    settings = _settings(args)
    # Postfix and procmail may mail stderr back to the sender: keep it to the one reason line.
    logging.basicConfig(level=logging.CRITICAL if settings.log.level != "DEBUG" else "DEBUG")
    data = sys.stdin.buffer.read()
    if not data:
        raise CliError("empty message on standard input", EX_DATAERR)
    try:
        results = asyncio.run(_deliver(settings, data, args))
    except CliError:
        raise
    except Exception as exc:  # store or accounts unusable right now: the MTA retries
        raise CliError(f"temporary failure: {exc.__class__.__name__}: {exc}", EX_TEMPFAIL) from None
    status = EX_OK
    for result in results:
        if result.ok:
            continue
        err = result.error
        kind = err.kind if err else MailErrorKind.TEMP
        code = _deliver_status(kind, settings)
        print(f"mailhub: {result.recipient}: {err.message if err else 'failed'}", file=sys.stderr)
        if code == EX_TEMPFAIL or status == EX_OK:
            status = code
    return status


def _deliver_status(kind: MailErrorKind, settings: Settings) -> int:
    if kind in (MailErrorKind.NOTFOUND, MailErrorKind.BADNAME):
        return EX_NOUSER
    if kind is MailErrorKind.PERM:
        return EX_NOPERM
    if kind is MailErrorKind.TOOBIG:
        return EX_DATAERR
    if kind is MailErrorKind.NOQUOTA and settings.delivery.over_quota == "permanent":
        return EX_CANTCREAT
    return EX_TEMPFAIL


async def _deliver(settings: Settings, data: bytes, args: argparse.Namespace) -> list[Any]:
    from mailhub.auth.directory import AccountDirectory
    from mailhub.ingest.delivery import DeliveryAgent, ReceivedInfo
    from mailhub.store.maildir import MaildirMailstore

    directory = AccountDirectory(settings.data_dir)
    store = MaildirMailstore(settings.data_dir / "mail")
    try:
        agent = DeliveryAgent(store, directory, settings)
        return await agent.deliver(
            data,
            args.sender,
            args.recipients,
            folder=args.folder,
            received=ReceivedInfo(protocol="local"),
        )
    finally:
        await store.close()


def _first_account(settings: Settings) -> None:
    """On an empty data directory served on loopback, create ``me@<hostname>`` and say so."""
    from mailhub.auth.directory import AccountDirectory, normalize_address
    from mailhub.net.tls import is_loopback

    if not is_loopback(settings.host):
        return
    directory = AccountDirectory(settings.data_dir)
    if directory.path.exists():
        return
    try:
        address = normalize_address(f"me@{settings.hostname}")
    except MailError:
        address = "me@localhost"
    password = secrets.token_urlsafe(12)
    directory.add(address, password)
    print(
        "mailhub: created a first account (shown only this once)\n"
        f"  user:     {address}\n"
        f"  password: {password}\n"
        f"  change it with: mailhub user passwd {address}",
        flush=True,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from mailhub.app import build_context, serve
    from mailhub.auth.directory import AccountsFileError
    from mailhub.log import setup_logging
    from mailhub.net.tls import TlsError

    overrides = {
        "host": args.host,
        "imap.port": args.imap_port,
        "imap.tls_port": args.imaps_port,
        "pop3.port": args.pop3_port,
        "pop3.tls_port": args.pop3s_port,
        "lmtp.port": args.lmtp_port,
        "smtp.port": args.smtp_port,
    }
    settings = _settings(args, overrides)
    setup_logging(settings.log)
    from mailhub.privileges import PrivilegeError, target

    try:
        target(settings)  # an unknown `user`/`group` is a config error, before binding
    except PrivilegeError as exc:
        raise CliError(f"configuration error: {exc}", EX_CONFIG) from None
    try:
        # Mail and password hashes live here: private to the server's user from the start.
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _first_account(settings)
        ctx = build_context(settings)
        ctx.directory.reload()  # a damaged accounts file is reported now, not at first login
    except TlsError as exc:
        raise CliError(f"TLS: {exc}", EX_CONFIG) from None
    except AccountsFileError as exc:
        raise CliError(str(exc), EX_CONFIG) from None
    except OSError as exc:
        raise CliError(
            f"cannot use data directory {settings.data_dir}: {exc}", EX_CANTCREAT
        ) from None
    return_big_blocks()  # scrypt's 16 MiB per login must not stay in the heap
    space_out_full_collections()  # no 0.5 s GC pause in the middle of an IDLE fan-out
    loop_factory: Any = None
    if os.environ.get(ENV_NO_UVLOOP, "") in ("", "0"):
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        status: int = runner.run(serve(settings, ctx))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "user":
            if args.user_command is None:
                parser.parse_args(["user", "--help"])
            return cmd_user(args)
        if args.command == "deliver":
            return cmd_deliver(args)
        if args.command in OPS_COMMANDS:
            status: int = importlib.import_module(OPS_COMMANDS[args.command]).run(
                args, _settings(args)
            )
            return status
        parser.print_help(sys.stderr)
        return EX_USAGE
    except CliError as exc:
        print(f"mailhub: {exc}", file=sys.stderr)
        return exc.status
    except MailError as exc:
        print(f"mailhub: {exc.message}", file=sys.stderr)
        return _MAIL_ERROR_STATUS.get(exc.kind, EX_SOFTWARE)
    except OSError as exc:  # e.g. a data directory the user may not write
        print(f"mailhub: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EX_IOERR
    except KeyboardInterrupt:
        return 130
