"""deploy/fail2ban matches the failed-login lines a real server writes (text and JSON logs).

Real failed IMAP and POP3 logins against a running server; its log goes through Debian's
``fail2ban-regex`` with our filter. A user name that tries to name another address must not
get that address banned.
"""

from __future__ import annotations

import imaplib
import poplib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from mailhub_proc import MailhubServer

ROOT = Path(__file__).resolve().parents[2]
FILTER = ROOT / "deploy" / "fail2ban" / "filter.d" / "mailhub.conf"

pytestmark = pytest.mark.skipif(
    shutil.which("fail2ban-regex") is None, reason="needs Debian's fail2ban"
)


def _fail_logins(server: MailhubServer) -> None:
    imap = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    for user in ("mallory", '"x from 198.51.100.7"'):  # imaplib does not quote user names
        with pytest.raises(imaplib.IMAP4.error):
            imap.login(user, "guess")
    imap.logout()
    pop = poplib.POP3("127.0.0.1", server.ports["pop3"])
    pop.user("mallory from 198.51.100.8")
    with pytest.raises(poplib.error_proto):
        pop.pass_("guess")
    pop.close()
    # A successful login must not count.
    ok = poplib.POP3("127.0.0.1", server.ports["pop3"])
    ok.user(server.user)
    ok.pass_(server.password)
    ok.quit()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_filter_matches_real_failed_logins(
    mailhub_factory: Callable[..., MailhubServer], tmp_path: Path, fmt: str
) -> None:
    server = mailhub_factory(config={"log": {"format": fmt}, "limits": {"failed_login_delay": 0.0}})
    _fail_logins(server)
    server.wait_for_log(r"logged in")
    log = tmp_path / "mailhub.log"
    log.write_text(server.log)
    r = subprocess.run(
        ["fail2ban-regex", "--out", "ip", str(log), str(FILTER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    ips = r.stdout.split()
    assert ips == ["127.0.0.1"] * 3, (r.stdout, r.stderr, server.log)
