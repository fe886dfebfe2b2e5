"""The command line contract (issue 2 section 2), run as real subprocesses."""

from __future__ import annotations

import asyncio
import json
import poplib
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mailhub_proc import MailhubServer, clean_env, run_cli

from mailhub import __version__
from mailhub.auth.directory import AccountDirectory


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"mailhub {__version__}"


def test_no_command_is_a_usage_error() -> None:
    result = run_cli()
    assert result.returncode == 64
    assert "serve" in result.stderr


def test_user_lifecycle(tmp_path: Path) -> None:
    data = tmp_path / "data"
    add = run_cli(
        "user",
        "add",
        "Bob@Example.ORG",
        "--password-stdin",
        "--data-dir",
        str(data),
        input="first pw\n",
    )
    assert add.returncode == 0, add.stderr
    assert "bob" in add.stdout.lower()

    dup = run_cli("user", "add", "bob@example.org", "--password-stdin", data_dir=data, input="x\n")
    assert dup.returncode != 0
    assert dup.stderr.count("\n") == 1 and "Traceback" not in dup.stderr

    listing = run_cli("user", "list", data_dir=data)
    assert listing.returncode == 0
    assert listing.stdout.split("\t")[0] == "Bob@example.org"

    directory = AccountDirectory(data)
    assert asyncio.run(directory.authenticate("bob@EXAMPLE.org", "first pw")) is not None

    pw = run_cli(
        "user", "passwd", "bob@example.org", "--password-stdin", data_dir=data, input="second pw\n"
    )
    assert pw.returncode == 0, pw.stderr
    assert asyncio.run(directory.authenticate("bob@example.org", "first pw")) is None
    assert asyncio.run(directory.authenticate("bob@example.org", "second pw")) is not None

    gone = run_cli("user", "del", "bob@example.org", data_dir=data)
    assert gone.returncode == 0
    assert run_cli("user", "list", data_dir=data).stdout == ""
    missing = run_cli("user", "del", "bob@example.org", data_dir=data)
    assert missing.returncode == 67
    assert "no account" in missing.stderr


def test_passwords_never_stored_in_clear(tmp_path: Path) -> None:
    run_cli(
        "user", "add", "a@x.org", "--password-stdin", data_dir=tmp_path, input="hunter2-unique\n"
    )
    text = (tmp_path / "accounts.json").read_text()
    assert "hunter2-unique" not in text
    assert "scrypt$" in text
    assert (tmp_path / "accounts.json").stat().st_mode & 0o077 == 0


def test_user_add_rejects_bad_address_and_empty_password(tmp_path: Path) -> None:
    bad = run_cli("user", "add", "no-at-sign", "--password-stdin", data_dir=tmp_path, input="pw\n")
    assert bad.returncode == 65
    assert "invalid address" in bad.stderr
    for evil in ("../x@y.org", "a/b@y.org", "a@../etc"):
        r = run_cli("user", "add", evil, "--password-stdin", data_dir=tmp_path, input="pw\n")
        assert r.returncode == 65, evil
    empty = run_cli("user", "add", "a@b.org", "--password-stdin", data_dir=tmp_path, input="\n")
    assert empty.returncode == 65
    assert "empty password" in empty.stderr


def test_user_set_policy_quota_aliases(tmp_path: Path) -> None:
    run_cli("user", "add", "c@x.org", "--password-stdin", data_dir=tmp_path, input="pw\n")
    r = run_cli(
        "user",
        "set",
        "c@x.org",
        "--quota-bytes",
        "5000",
        "--quota-messages",
        "7",
        "--alias",
        "cc@X.org",
        "--alias",
        "c@y.org",
        "--pop3-on-delete",
        "archive",
        "--pop3-mark-seen",
        "no",
        "--disable",
        data_dir=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    rec = AccountDirectory(tmp_path).lookup("cc@x.ORG")
    assert rec is not None and rec.address == "c@x.org"
    assert (rec.quota_bytes, rec.quota_messages) == (5000, 7)
    assert rec.aliases == ["cc@x.org", "c@y.org"]
    assert rec.pop3.on_delete.value == "archive" and rec.pop3.mark_seen_on_retr is False
    assert rec.enabled is False
    # A disabled account cannot log in even with the right password.
    assert asyncio.run(AccountDirectory(tmp_path).authenticate("c@x.org", "pw")) is None
    r = run_cli(
        "user",
        "set",
        "c@x.org",
        "--enable",
        "--quota-bytes",
        "0",
        "--no-aliases",
        data_dir=tmp_path,
    )
    assert r.returncode == 0
    rec = AccountDirectory(tmp_path).lookup("c@x.org")
    assert rec is not None and rec.enabled and rec.quota_bytes is None and rec.aliases == []
    assert rec.pop3.on_delete.value == "archive"  # untouched fields are kept


def test_alias_cannot_shadow_another_account(tmp_path: Path) -> None:
    for who in ("a@x.org", "b@x.org"):
        run_cli("user", "add", who, "--password-stdin", data_dir=tmp_path, input="pw\n")
    r = run_cli("user", "set", "a@x.org", "--alias", "B@x.org", data_dir=tmp_path)
    assert r.returncode != 0
    assert "already used" in r.stderr


def test_data_dir_from_environment(tmp_path: Path) -> None:
    r = run_cli(
        "user",
        "add",
        "e@x.org",
        "--password-stdin",
        input="pw\n",
        env={"MAILHUB_DATA_DIR": str(tmp_path / "envdata")},
    )
    assert r.returncode == 0
    assert (tmp_path / "envdata" / "accounts.json").exists()


def test_config_error_exit_78_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[imap]\nprot = 1143\n")
    r = run_cli("serve", "--config", str(cfg), "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 78
    assert r.stderr.strip().count("\n") == 0
    assert "imap.prot" in r.stderr and "unknown" in r.stderr and "imap.port" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("user", "list", env={"MAILHUB_CONFIG": str(tmp_path / "missing.toml")})
    assert r.returncode == 78 and "does not exist" in r.stderr


def test_bad_port_flag_is_a_config_error(tmp_path: Path) -> None:
    r = run_cli("serve", "--data-dir", str(tmp_path), "--imap-port", "70000")
    assert r.returncode == 78
    assert "imap.port" in r.stderr and "--imap-port" in r.stderr


# -- serve ------------------------------------------------------------------------------------


def test_serve_listens_and_stops_cleanly(mailhub_server: MailhubServer) -> None:
    # Every listener whose frontend exists logged exactly its configured port.
    assert mailhub_server.listening, mailhub_server.log
    for name, where in mailhub_server.listening.items():
        assert where == f"127.0.0.1:{mailhub_server.ports[name]}"
        with socket.create_connection(("127.0.0.1", mailhub_server.ports[name]), timeout=5):
            pass
    assert "Traceback" not in mailhub_server.log
    assert mailhub_server.password not in mailhub_server.log


def test_serve_port_zero_disables(mailhub_factory) -> None:  # type: ignore[no-untyped-def]
    server = mailhub_factory(
        ports={"imap": 0, "imaps": 0, "pop3": 0, "pop3s": 0, "lmtp": 0, "smtp": 0}
    )
    assert server.listening == {}
    assert "no listener" in server.log


def test_serve_port_in_use_fails_clearly(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        (tmp_path / "d").mkdir()
        server = MailhubServer(tmp_path / "d", ports={"lmtp": port})
        proc = subprocess.run(
            server.command(), capture_output=True, text=True, env=clean_env(), timeout=60
        )
    finally:
        busy.close()
    if "lmtp" not in proc.stderr and "ingest frontend not available" in proc.stderr:
        pytest.skip("ingest frontend not present")
    assert proc.returncode == 71
    assert "address already in use" in proc.stderr.lower()
    assert "Traceback" not in proc.stderr


def test_first_account_on_empty_loopback_data_dir(tmp_path: Path) -> None:
    server = MailhubServer(tmp_path / "fresh", user="")
    server.start()
    assert server.stop() == 0
    m = re.search(r"user:\s+(\S+)\s+password:\s+(\S+)", server.stdout)
    assert m, server.stdout
    user, password = m.groups()
    assert user == "me@localhost"
    assert password not in server.log  # printed once on stdout, never logged
    rec = asyncio.run(AccountDirectory(tmp_path / "fresh").authenticate(user, password))
    assert rec is not None
    # A second start does not create another one.
    server.start()
    assert server.stop() == 0
    assert "password:" not in server.stdout.split(password, 1)[1]


def test_sighup_reloads(mailhub_server: MailhubServer) -> None:
    assert mailhub_server.proc is not None
    mark = len(mailhub_server.log.splitlines(keepends=True))
    mailhub_server.proc.send_signal(signal.SIGHUP)
    mailhub_server.wait_for_log(r"reloaded TLS certificate \(on\)", start=mark)
    mailhub_server.wait_for_log(r"reloaded accounts \(1\)", start=mark)


def test_sigint_also_stops_cleanly(mailhub_server: MailhubServer) -> None:
    assert mailhub_server.stop(signal.SIGINT) == 0
    assert "stopped" in mailhub_server.log


def test_user_added_while_running_can_log_in(mailhub_server: MailhubServer) -> None:
    if "pop3" not in mailhub_server.listening:
        pytest.skip("POP3 frontend not present")
    mailhub_server.add_user("late@example.net", "late-pw-1")
    pop = poplib.POP3("127.0.0.1", mailhub_server.ports["pop3"], timeout=10)
    try:
        pop.user("late@example.net")
        pop.pass_("late-pw-1")
        assert pop.stat()[0] == 0
    finally:
        pop.quit()
    mailhub_server.cli("user", "set", "late@example.net", "--disable", check=True)
    pop = poplib.POP3("127.0.0.1", mailhub_server.ports["pop3"], timeout=10)
    try:
        pop.user("late@example.net")
        with pytest.raises(poplib.error_proto):
            pop.pass_("late-pw-1")
    finally:
        pop.close()


def test_python_dash_m_and_console_script_agree() -> None:
    script = Path(sys.executable).with_name("mailhub")
    if not script.exists():
        pytest.skip("console script not installed in this environment")
    r = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, env=clean_env(), timeout=30
    )
    assert r.stdout.strip() == f"mailhub {__version__}"


# -- deliver ----------------------------------------------------------------------------------

MESSAGE = (
    b"From: someone@example.net\nSubject: hi there\nMessage-ID: <m1@example.net>\n\nbody line\n"
)


async def _inbox(data_dir: Path, address: str, folder: str = "INBOX") -> list[bytes]:
    from mailhub.store.maildir import MaildirMailstore

    store = MaildirMailstore(data_dir / "mail")
    try:
        account = await store.open_account(address)
        box = await account.open_mailbox(folder)
        snap = await box.snapshot()
        return [await (await box.open_message(m.uid)).read() for m in snap.messages]
    finally:
        await store.close()


def _with_user(tmp_path: Path, address: str = "rcpt@example.org") -> Path:
    data = tmp_path / "data"
    r = run_cli("user", "add", address, "--password-stdin", data_dir=data, input="pw\n")
    assert r.returncode == 0, r.stderr
    return data


def test_deliver_stores_with_trace_headers(tmp_path: Path) -> None:
    data = _with_user(tmp_path)
    r = run_cli(
        "deliver",
        "-f",
        "bounce@example.net",
        "RCPT@Example.org",
        data_dir=data,
        input=MESSAGE.decode(),
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    (msg,) = asyncio.run(_inbox(data, "rcpt@example.org"))
    head = msg.split(b"\r\n\r\n", 1)[0]
    assert b"Return-Path: <bounce@example.net>" in head
    assert b"delivered-to: rcpt@example.org" in head.lower()
    assert msg.endswith(b"body line\r\n")


def test_deliver_unknown_recipient_is_67(tmp_path: Path) -> None:
    data = _with_user(tmp_path)
    r = run_cli("deliver", "nobody@example.org", data_dir=data, input=MESSAGE.decode())
    assert r.returncode == 67
    assert r.stderr.count("\n") == 1 and "nobody@example.org" in r.stderr
    assert "Traceback" not in r.stderr


def test_deliver_into_folder_and_missing_folder_falls_back(tmp_path: Path) -> None:
    data = _with_user(tmp_path)
    r = run_cli(
        "deliver", "--folder", "Archive", "rcpt@example.org", data_dir=data, input=MESSAGE.decode()
    )
    assert r.returncode == 0, r.stderr
    assert len(asyncio.run(_inbox(data, "rcpt@example.org", "Archive"))) == 1
    r = run_cli(
        "deliver",
        "--folder",
        "NoSuchFolder",
        "rcpt@example.org",
        data_dir=data,
        input=MESSAGE.decode(),
    )
    assert r.returncode == 0, r.stderr
    assert len(asyncio.run(_inbox(data, "rcpt@example.org"))) == 1


def test_deliver_over_quota_is_temporary(tmp_path: Path) -> None:
    data = _with_user(tmp_path)
    run_cli("user", "set", "rcpt@example.org", "--quota-messages", "1", data_dir=data)
    assert run_cli("deliver", "rcpt@example.org", data_dir=data, input="x\n\ny\n").returncode == 0
    r = run_cli("deliver", "rcpt@example.org", data_dir=data, input=MESSAGE.decode())
    assert r.returncode == 75, r.stderr
    assert r.stderr.count("\n") == 1


def test_deliver_empty_input_and_config_error(tmp_path: Path) -> None:
    data = _with_user(tmp_path)
    assert run_cli("deliver", "rcpt@example.org", data_dir=data, input="").returncode == 65
    r = run_cli(
        "deliver", "rcpt@example.org", data_dir=data, input="x\n", env={"MAILHUB_BOGUS": "1"}
    )
    assert r.returncode == 78


def test_deliver_reaches_a_running_server(mailhub_server: MailhubServer) -> None:
    if "pop3" not in mailhub_server.listening:
        pytest.skip("POP3 frontend not present")
    r = mailhub_server.cli("deliver", mailhub_server.user, input=MESSAGE.decode())
    assert r.returncode == 0, r.stderr
    pop = poplib.POP3("127.0.0.1", mailhub_server.ports["pop3"], timeout=10)
    try:
        pop.user(mailhub_server.user)
        pop.pass_(mailhub_server.password)
        assert pop.stat()[0] == 1
        _, lines, _ = pop.retr(1)
        assert b"Subject: hi there" in lines
    finally:
        pop.quit()


def test_pop3_since_enabled_records_inbox_uid_next(tmp_path: Path) -> None:
    data = _with_user(tmp_path)
    for _ in range(2):
        r = run_cli("deliver", "rcpt@example.org", data_dir=data, input="a\n\nb\n")
        assert r.returncode == 0
    r = run_cli(
        "user",
        "set",
        "rcpt@example.org",
        "--pop3-scope",
        "since_enabled",
        "--pop3-on-delete",
        "keep",
        data_dir=data,
    )
    assert r.returncode == 0, r.stderr
    assert "pop3=keep,seen,since_enabled" in r.stdout
    rec = AccountDirectory(data).lookup("rcpt@example.org")
    assert rec is not None and rec.pop3.enabled_from_uid == 3


def test_sigterm_with_a_session_open(mailhub_factory) -> None:  # type: ignore[no-untyped-def]
    server = mailhub_factory(config={"shutdown_timeout": 3.0})
    if "pop3" not in server.listening:
        pytest.skip("POP3 frontend not present")
    pop = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=20)
    pop.user(server.user)
    pop.pass_(server.password)
    started = time.monotonic()
    status = server.stop()
    elapsed = time.monotonic() - started
    assert status == 0, server.log_tail()
    assert elapsed < 10, elapsed
    assert "Traceback" not in server.log
    # The session is gone: the server closed the connection.
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        pop.noop()
        pop.noop()
    pop.close()


def test_serve_refuses_a_damaged_accounts_file(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "accounts.json").write_text('{"version": 1, "accounts": [{"address": 5}]}')
    r = run_cli(
        "serve",
        "--data-dir",
        str(data),
        "--imap-port",
        "0",
        "--imaps-port",
        "0",
        "--pop3-port",
        "0",
        "--pop3s-port",
        "0",
        "--lmtp-port",
        "0",
        "--smtp-port",
        "0",
    )
    assert r.returncode == 78
    assert "accounts.json: account #1" in r.stderr and "Traceback" not in r.stderr


def test_json_logs_and_restart(mailhub_factory) -> None:  # type: ignore[no-untyped-def]
    server = mailhub_factory(config={"log": {"format": "json"}})
    lines = [json.loads(line) for line in server.log.splitlines() if line.startswith("{")]
    assert any(doc["msg"].startswith("mailhub ") and "ready" in doc["msg"] for doc in lines)
    for name, where in server.listening.items():
        assert where == f"127.0.0.1:{server.ports[name]}"
    before = dict(server.listening)
    server.restart()
    assert server.listening == before
    listing = server.cli("user", "list", check=True)
    assert listing.stdout.startswith(server.user)


def test_newcomer_flow_first_account_over_imaps(tmp_path: Path) -> None:
    """README's first command: an empty data dir, the printed credentials, a TLS client."""
    import imaplib

    server = MailhubServer(tmp_path / "fresh", user="")
    server.start()
    try:
        if "imaps" not in server.listening:
            pytest.skip("IMAP frontend not present")
        out = server.proc.stdout.readline() if server.proc and server.proc.stdout else ""
        out += "".join(server.proc.stdout.readline() for _ in range(2)) if server.proc else ""
        m = re.search(r"user:\s+(\S+)\s+password:\s+(\S+)", out)
        assert m, out
        imap = imaplib.IMAP4_SSL(
            "127.0.0.1", server.ports["imaps"], ssl_context=server.ssl_context()
        )
        try:
            assert imap.login(m.group(1), m.group(2))[0] == "OK"
            assert imap.select("INBOX")[0] == "OK"
        finally:
            imap.logout()
    finally:
        assert server.stop() == 0
