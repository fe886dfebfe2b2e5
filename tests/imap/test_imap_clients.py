"""Real Debian clients against ``mailhub serve``: mbsync (isync) two-way sync, offlineimap3
one-shot sync, curl's IMAP. Skipped when the client is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import msg
from imap_raw import RawImap
from mailhub_proc import MailhubServer


def _seed(server: MailhubServer) -> RawImap:
    c = RawImap(server.host, server.ports["imap"])
    c.login(server.user, server.password)
    c.cmd("c1 CREATE Lists/python")
    for box, n in (("INBOX", 3), ("Lists/python", 2), ("Archive", 1)):
        for i in range(n):
            m = msg(f"{box} {i}")
            c.send(b'ap APPEND "%s" {%d+}\r\n' % (box.encode(), len(m)) + m + b"\r\n")
            assert c.until_tagged("ap")[-1].startswith(b"ap OK")
    return c


def _maildir_files(root: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cur in root.rglob("cur"):
        box = str(cur.parent.relative_to(root))
        out[box] = sorted(os.listdir(cur)) + sorted(os.listdir(cur.parent / "new"))
    return out


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="isync not installed")
def test_mbsync_two_way_sync(server: MailhubServer, tmp_path: Path) -> None:
    c = _seed(server)
    local = tmp_path / "mail"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f"""IMAPAccount mh
Host {server.host}
Port {server.ports["imap"]}
User {server.user}
Pass {server.password}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account mh

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel mh
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
Remove Both
SyncState *
"""
    )

    def sync() -> str:
        p = subprocess.run(
            ["mbsync", "-c", str(rc), "-a", "-V"], capture_output=True, text=True, timeout=120
        )
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout + p.stderr

    sync()
    files = _maildir_files(local)
    assert len(files["INBOX"]) == 3
    assert len(files["Lists/python"]) == 2 and len(files["Archive"]) == 1
    assert "Sent" in files and "Trash" in files
    # second sync with nothing changed is a no-op
    c.cmd("s0 SELECT INBOX")
    sync()
    assert _maildir_files(local) == files
    out = c.cmd("n0 NOOP")  # the server side did not change either
    assert out == [b"n0 OK NOOP completed"], out
    # local -> server: flag a message, delete another
    inbox_cur = local / "INBOX" / "cur"
    paths = sorted(
        [p for d in ("cur", "new") for p in (local / "INBOX" / d).iterdir()], key=lambda p: p.name
    )
    first, second = paths[0], paths[1]
    first.rename(inbox_cur / (first.name.split(":2,")[0] + ":2,FS"))
    second.unlink()
    sync()
    out = c.cmd("s1 SELECT INBOX")
    assert b"* 2 EXISTS" in out
    out = c.cmd("f1 FETCH 1:* (FLAGS)")
    assert any(b"\\Flagged" in ln and b"\\Seen" in ln for ln in out), out
    # server -> local: delete one, flag one, add one
    c.cmd("s2 STORE 2 +FLAGS (\\Deleted \\Answered)")
    c.cmd("e2 EXPUNGE")
    c.cmd("s3 STORE 1 -FLAGS (\\Flagged)")
    m = msg("server side new")
    c.send(b"ap APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
    c.until_tagged("ap")
    sync()
    now = sorted(os.listdir(inbox_cur)) + sorted(os.listdir(local / "INBOX" / "new"))
    assert len(now) == 2
    assert not any("F" in n.split(":2,")[1] for n in now if ":2," in n)
    files = _maildir_files(local)
    sync()
    assert _maildir_files(local) == files  # no-op again
    out = c.cmd("n NOOP")
    assert not any(b"EXISTS" in ln or b"EXPUNGE" in ln for ln in out), out
    c.close()


@pytest.mark.skipif(shutil.which("offlineimap") is None, reason="offlineimap3 not installed")
def test_offlineimap_one_shot(server: MailhubServer, tmp_path: Path) -> None:
    c = _seed(server)
    c.close()
    local = tmp_path / "mail"
    rc = tmp_path / "offlineimaprc"
    rc.write_text(
        f"""[general]
accounts = mh
metadata = {tmp_path}/meta
ui = basic

[Account mh]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}
sep = /

[Repository remote]
type = IMAP
remotehost = {server.host}
remoteport = {server.ports["imap"]}
remoteuser = {server.user}
remotepass = {server.password}
ssl = no
starttls = no
"""
    )
    p = subprocess.run(
        ["offlineimap", "-c", str(rc), "-o", "-u", "basic"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    files = _maildir_files(local)
    assert len(files["INBOX"]) == 3
    assert len(files["Lists/python"]) == 2
    assert "ERROR" not in p.stdout + p.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_imap(server: MailhubServer) -> None:
    c = _seed(server)
    c.close()
    base = f"imap://{server.host}:{server.ports['imap']}"
    auth = ["--user", f"{server.user}:{server.password}", "-s", "--max-time", "30"]
    p = subprocess.run(["curl", *auth, base + "/"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert '"INBOX"' in p.stdout and "Lists/python" in p.stdout
    p = subprocess.run(["curl", *auth, base + "/INBOX;UID=2"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "Subject: INBOX 1" in p.stdout
    p = subprocess.run(
        ["curl", *auth, base + "/INBOX?SUBJECT%20%22INBOX%202%22"], capture_output=True, text=True
    )
    assert p.returncode == 0 and "SEARCH 3" in p.stdout, p.stdout + p.stderr
    # STARTTLS with curl --ssl-reqd against the self-signed certificate
    p = subprocess.run(
        ["curl", *auth, "--ssl-reqd", "--cacert", str(server.cafile), base + "/Archive;UID=1"],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0 and "Subject: Archive 0" in p.stdout, p.stderr
    # implicit TLS
    p = subprocess.run(
        [
            "curl",
            *auth,
            "--cacert",
            str(server.cafile),
            f"imaps://localhost:{server.ports['imaps']}/INBOX;UID=1",
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0 and "Subject: INBOX 0" in p.stdout, p.stderr


def test_dovecot_migrated_maildir_keeps_uids(
    mailhub_factory: Callable[..., MailhubServer], tmp_path: Path
) -> None:
    """A Maildir Dovecot made (dovecot-uidlist present) shows the same UIDVALIDITY/UIDs."""
    dp = pytest.importorskip("support.dovecot_preauth")
    if not dp.available():
        pytest.skip("Dovecot imap binary not available (or not root)")
    server = mailhub_factory(start=False)
    from mailhub.store.maildir import account_dir

    maildir = account_dir(server.data_dir / "mail", server.user)
    maildir.parent.mkdir(parents=True, exist_ok=True)
    lines: list[bytes] = [b"c CREATE Old"]
    for i in range(5):
        m = msg(f"dove {i}")
        lines.append(b"a%d APPEND INBOX {%d+}" % (i, len(m)) + b"\r\n" + m)
    lines += [
        b"e SELECT INBOX",
        b"d UID STORE 2 +FLAGS (\\Deleted)",
        b"f EXPUNGE",
        b"g STATUS INBOX (UIDVALIDITY UIDNEXT)",
        b"h UID FETCH 1:* (FLAGS)",
    ]
    out = dp.run(maildir, lines)
    status, after = out.split(b"\ng OK", 1)  # UIDs: only the final UID FETCH
    import re as _re

    uidv = int(_re.search(rb"UIDVALIDITY (\d+)", status).group(1))
    # Dovecot runs pipelined commands out of order: the FETCH may precede the EXPUNGE
    uids = [
        int(m.group(1))
        for m in _re.finditer(rb"FETCH \(UID (\d+) FLAGS \(([^)]*)\)", after)
        if b"Deleted" not in m.group(2)
    ]
    server.start()
    c = RawImap(server.host, server.ports["imap"])
    c.login(server.user, server.password)
    sel = c.cmd("s SELECT INBOX")
    assert f"[UIDVALIDITY {uidv}]".encode() in b" ".join(sel)
    got = c.cmd("u UID FETCH 1:* (UID)")
    mine = [int(u) for u in __import__("re").findall(rb"UID (\d+)", b" ".join(got[:-1]))]
    assert mine == sorted(uids) and 2 not in mine
    c.close()
