"""End to end: ``mailhub serve`` (the shared ``mailhub_server`` fixture), ``mailhub deliver``,
``mailhub user set``, server restarts, a migrated Dovecot Maildir, and real Debian POP3
clients (fetchmail, getmail6). The store is checked from this test process through its own
MaildirMailstore on the same data directory (another process, as IMAP or delivery could be).
"""

from __future__ import annotations

import asyncio
import os
import poplib
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mailhub_proc import MailhubServer

from mailhub.store.flags import SEEN
from mailhub.store.maildir import MaildirMailstore, account_dir
from mailhub.store.model import Snapshot

try:
    from support import dovecot_preauth
except ImportError:  # pragma: no cover - the support package ships with the tests
    dovecot_preauth = None  # type: ignore[assignment]

pytestmark = pytest.mark.clients


def message(subject: str, body: str = "Hello there.\n.leading dot line\n") -> bytes:
    return (
        f"From: carol@example.net\nTo: alice@example.com\nSubject: {subject}\n"
        f"Message-ID: <{subject}@example.net>\n\n{body}"
    ).encode()


def deliver(server: MailhubServer, data: bytes, *extra: str) -> None:
    result = server.cli("deliver", *extra, server.user, input=data.decode())
    assert result.returncode == 0, result.stderr


def pop(server: MailhubServer) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    client.user(server.user)
    client.pass_(server.password)
    return client


def store_snapshot(server: MailhubServer, folder: str = "INBOX") -> Snapshot:
    async def read() -> Snapshot:
        store = MaildirMailstore(server.data_dir / "mail")
        try:
            account = await store.open_account(server.user)
            box = await account.open_mailbox(folder)
            return await box.snapshot()
        finally:
            await store.close()

    return asyncio.run(read())


def test_deliver_list_and_uidl_stable_across_restart(mailhub_server: MailhubServer) -> None:
    for i in range(3):
        deliver(mailhub_server, message(f"m{i}"))
    client = pop(mailhub_server)
    assert client.stat()[0] == 3
    _, uidls, _ = client.uidl()
    _, lines, _ = client.retr(1)
    assert b"..leading dot line" not in lines and b".leading dot line" in lines
    client.quit()
    snap = store_snapshot(mailhub_server)
    assert [u.split()[1].decode() for u in uidls] == [
        f"{m.uid:08x}{snap.uidvalidity:08x}" for m in snap.messages
    ]
    mailhub_server.restart()
    client = pop(mailhub_server)
    _, again, _ = client.uidl()
    assert again == uidls
    client.quit()


def test_folder_delivery_not_listed(mailhub_server: MailhubServer) -> None:
    deliver(mailhub_server, message("inbox"))
    deliver(mailhub_server, message("elsewhere"), "--folder", "Archive")
    client = pop(mailhub_server)
    assert client.stat()[0] == 1
    _, lines, _ = client.top(1, 0)
    assert b"Subject: inbox" in lines
    client.quit()


@pytest.mark.parametrize(
    ("policy", "inbox_left", "folder"),
    [("delete", 1, None), ("keep", 2, None), ("archive", 1, "Archive"), ("trash", 1, "Trash")],
)
def test_policy_set_by_cli_applies_without_restart(
    mailhub_server: MailhubServer, policy: str, inbox_left: int, folder: str | None
) -> None:
    deliver(mailhub_server, message("first"))
    deliver(mailhub_server, message("second"))
    mailhub_server.cli("user", "set", mailhub_server.user, "--pop3-on-delete", policy, check=True)
    client = pop(mailhub_server)
    client.retr(1)
    client.dele(1)
    client.quit()
    inbox = store_snapshot(mailhub_server)
    assert len(inbox.messages) == inbox_left
    if policy == "keep":
        assert SEEN in inbox.messages[0].flags
    if folder is not None:
        moved = store_snapshot(mailhub_server, folder)
        assert len(moved.messages) == 1 and SEEN in moved.messages[0].flags


def _fetchmail(
    server: MailhubServer, home: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    out = home / "out"
    out.mkdir(exist_ok=True)
    rc = home / "fetchmailrc"
    rc.write_text(
        textwrap.dedent(f"""\
        set no syslog
        poll 127.0.0.1 with proto POP3 port {server.ports["pop3"]}
          user "{server.user}" there with password "{server.password}" is "root" here
          sslproto tls1.2+ sslcertck sslcertfile "{server.cafile}" sslcommonname localhost
          mda "/bin/sh -c 'cat > {out}/msg.$$'"
        """)
    )
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    return subprocess.run(
        ["fetchmail", "-f", str(rc), "--nodetach", "--idfile", str(home / "fetchids"), *options],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _fetched(home: Path) -> list[bytes]:
    return sorted(p.read_bytes() for p in (home / "out").iterdir())


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail not installed")
def test_fetchmail_default_deletes(mailhub_server: MailhubServer, tmp_path: Path) -> None:
    for i in range(3):
        deliver(mailhub_server, message(f"fm{i}"))
    result = _fetchmail(mailhub_server, tmp_path)
    assert result.returncode == 0, result.stderr
    fetched = _fetched(tmp_path)
    assert len(fetched) == 3
    assert any(b".leading dot line" in m and b"..leading" not in m for m in fetched)
    assert store_snapshot(mailhub_server).messages == ()


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail not installed")
def test_fetchmail_keep_and_uidl_new_only(mailhub_server: MailhubServer, tmp_path: Path) -> None:
    for i in range(2):
        deliver(mailhub_server, message(f"k{i}"))
    result = _fetchmail(mailhub_server, tmp_path, "--keep", "--uidl")
    assert result.returncode == 0, result.stderr
    assert len(_fetched(tmp_path)) == 2
    assert len(store_snapshot(mailhub_server).messages) == 2
    # Nothing new: fetchmail exits 1 ("no mail") and fetches nothing again.
    result = _fetchmail(mailhub_server, tmp_path, "--keep", "--uidl")
    assert result.returncode == 1, result.stderr
    assert len(_fetched(tmp_path)) == 2
    deliver(mailhub_server, message("k-new"))
    mailhub_server.restart()  # UIDLs survive the restart, so only the new one comes
    result = _fetchmail(mailhub_server, tmp_path, "--keep", "--uidl")
    assert result.returncode == 0, result.stderr
    fetched = _fetched(tmp_path)
    assert len(fetched) == 3
    assert sum(b"Subject: k-new" in m for m in fetched) == 1
    assert len(store_snapshot(mailhub_server).messages) == 3


def _getmail(
    server: MailhubServer, home: Path, maildir: Path, delete: bool
) -> subprocess.CompletedProcess[str]:
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
        (maildir / sub).chmod(0o777)
    # getmail refuses to deliver as root; as root, it delivers as the named user instead.
    user_line = "user = nobody" if os.geteuid() == 0 else ""
    rc = home / "getmailrc"
    rc.write_text(
        textwrap.dedent(f"""\
        [retriever]
        type = SimplePOP3SSLRetriever
        server = 127.0.0.1
        port = {server.ports["pop3s"]}
        username = {server.user}
        password = {server.password}
        ca_certs = {server.cafile}

        [destination]
        type = Maildir
        path = {maildir}/
        {user_line}

        [options]
        delete = {"true" if delete else "false"}
        read_all = false
        verbose = 1
        """)
    )
    return subprocess.run(
        ["getmail", "--getmaildir", str(home), "--rcfile", str(rc)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory outside pytest's private (0700) tmp tree, for getmail's unprivileged user."""
    path = Path(tempfile.mkdtemp(prefix="mailhub-getmail-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(shutil.which("getmail") is None, reason="getmail6 not installed")
def test_getmail6_over_pop3s(
    mailhub_server: MailhubServer, tmp_path: Path, world_readable_dir: Path
) -> None:
    maildir = world_readable_dir / "Maildir"
    for i in range(2):
        deliver(mailhub_server, message(f"g{i}"))
    result = _getmail(mailhub_server, tmp_path, maildir, delete=False)
    assert result.returncode == 0, result.stdout + result.stderr
    got = list((maildir / "new").iterdir())
    assert len(got) == 2
    # read_all = false: getmail remembers UIDLs; a second run fetches only the new one.
    deliver(mailhub_server, message("g-new"))
    result = _getmail(mailhub_server, tmp_path, maildir, delete=True)
    assert result.returncode == 0, result.stdout + result.stderr
    got = list((maildir / "new").iterdir())
    assert len(got) == 3
    assert sum(b"Subject: g-new" in p.read_bytes() for p in got) == 1
    # delete = true: getmail deletes everything it has (now or before) retrieved.
    assert store_snapshot(mailhub_server).messages == ()


def _dovecot_uidls(maildir: Path) -> list[bytes]:
    """Ask Debian's Dovecot pop3 binary (pre-authenticated, private config) for UIDL."""
    assert dovecot_preauth is not None
    run_dir = Path(tempfile.mkdtemp(prefix="dovecot-pop3-"))
    run_dir.chmod(0o755)
    try:
        conf = run_dir / "dovecot.conf"
        conf.write_text(
            dovecot_preauth._CONFIG.format(run=run_dir, maildir=maildir).replace(
                "protocols = imap", "protocols = pop3"
            )
        )
        env = dict(os.environ, USER="root", HOME=str(run_dir))
        proc = subprocess.run(
            ["/usr/lib/dovecot/pop3", "-c", str(conf)],
            input=b"UIDL\r\nQUIT\r\n",
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        out = proc.stdout.split(b"\r\n")
        assert out[0].startswith(b"+OK"), proc.stderr
        end = out.index(b".")
        return out[1:end]
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.mark.skipif(
    dovecot_preauth is None or not dovecot_preauth.available(), reason="needs Dovecot and root"
)
def test_migrated_dovecot_maildir_keeps_uidls(
    mailhub_factory: Callable[..., MailhubServer], world_readable_dir: Path
) -> None:
    assert dovecot_preauth is not None
    source = world_readable_dir / "dovecot-maildir"  # Dovecot runs as its own user
    lines = [
        dovecot_preauth.append_line(
            f"a{i}", "INBOX", "\\Seen" if i % 2 else "", message(f"dv{i}").replace(b"\n", b"\r\n")
        )
        for i in range(5)
    ]
    expunge_second = [b"s1 SELECT INBOX", b"e1 STORE 2 +FLAGS (\\Deleted)", b"e2 EXPUNGE"]
    dovecot_preauth.run(source, lines + expunge_second)
    expected = _dovecot_uidls(source)
    assert len(expected) == 4
    server = mailhub_factory(start=False)
    target = account_dir(server.data_dir / "mail", server.user)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, dirs_exist_ok=True)
    server.start()
    client = pop(server)
    _, uidls, _ = client.uidl()
    client.quit()
    assert uidls == expected


def test_cli_scope_since_enabled_and_pop3_off(mailhub_server: MailhubServer) -> None:
    deliver(mailhub_server, message("old1"))
    deliver(mailhub_server, message("old2"))
    mailhub_server.cli(
        "user", "set", mailhub_server.user, "--pop3-scope", "since_enabled", check=True
    )
    deliver(mailhub_server, message("new1"))
    client = pop(mailhub_server)
    assert client.stat()[0] == 1
    _, lines, _ = client.top(1, 0)
    assert b"Subject: new1" in lines
    client.quit()
    mailhub_server.cli("user", "set", mailhub_server.user, "--pop3", "no", check=True)
    client = poplib.POP3("127.0.0.1", mailhub_server.ports["pop3"], timeout=30)
    client.user(mailhub_server.user)
    with pytest.raises(poplib.error_proto, match=r"\[SYS/PERM\]"):
        client.pass_(mailhub_server.password)
    client.quit()
