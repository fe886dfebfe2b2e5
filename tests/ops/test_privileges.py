"""``mailhub serve`` started as root binds a port below 1024, then runs as the configured user."""

from __future__ import annotations

import os
import poplib
import pwd
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mailhub_proc import MailhubServer, run_cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _free_low_port() -> int:
    for port in range(990, 900, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port below 1024")


def _proc_ids(pid: int) -> tuple[set[int], set[int]]:
    uids: set[int] = set()
    gids: set[int] = set()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            uids = {int(x) for x in line.split()[1:]}
        elif line.startswith("Gid:"):
            gids = {int(x) for x in line.split()[1:]}
    return uids, gids


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the dropped user can reach. Not pytest's tmp_path: pytest (ours or a
    concurrent session) resets its base directory to 0700, which would lock the server out."""
    path = Path(tempfile.mkdtemp(prefix="mailhub-privdrop-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_binds_low_port_then_drops_to_user(shared_dir: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    low = _free_low_port()
    data = shared_dir / "data"
    data.mkdir()
    server = MailhubServer(data, config='user = "nobody"\n', ports={"pop3": low})
    server.add_user(server.user, server.password)
    server.start()
    try:
        _check_dropped(server, nobody, low)
    finally:
        server.check_clean_exit()  # SIGTERM, status 0, no traceback


def _check_dropped(server: MailhubServer, nobody: pwd.struct_passwd, low: int) -> None:
    assert server.proc is not None
    server.wait_for_log(r"now running as nobody")
    assert server.listening or f":{low}" in server.log
    uids, gids = _proc_ids(server.proc.pid)
    assert uids == {nobody.pw_uid} and gids == {nobody.pw_gid}
    assert server.data_dir.stat().st_uid == nobody.pw_uid
    assert (server.data_dir / "accounts.json").stat().st_uid == nobody.pw_uid

    pop = poplib.POP3("127.0.0.1", low)
    pop.user(server.user)
    try:
        pop.pass_(server.password)
    except poplib.error_proto as exc:
        raise AssertionError(f"{exc}: {server.log_tail()}") from None
    assert pop.stat()[0] == 0
    pop.quit()
    mail = server.data_dir / "mail"
    assert mail.stat().st_uid == nobody.pw_uid  # created after the drop


def test_unknown_user_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('user = "no-such-user-here"\n')
    r = run_cli("serve", "--config", str(config), data_dir=tmp_path / "d")
    assert r.returncode == 78
    assert "no such user 'no-such-user-here'" in r.stderr and "Traceback" not in r.stderr
