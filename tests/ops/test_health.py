"""``mailhub health`` (the container HEALTHCHECK) against a real running server."""

from __future__ import annotations

from pathlib import Path

from mailhub_proc import MailhubServer, free_port


def _health(server: MailhubServer, *extra: str) -> tuple[int, str]:
    r = server.cli(
        "health",
        "--imap-port",
        str(server.ports["imap"]),
        "--pop3-port",
        str(server.ports["pop3"]),
        *extra,
    )
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout + r.stderr  # one line, always
    assert "Traceback" not in r.stderr
    return r.returncode, lines[0]


def test_greetings(mailhub_server: MailhubServer) -> None:
    status, line = _health(mailhub_server)
    assert status == 0, line
    assert line == (
        f"healthy: imap 127.0.0.1:{mailhub_server.ports['imap']} greeting ok, "
        f"pop3 127.0.0.1:{mailhub_server.ports['pop3']} greeting ok"
    )


def test_login_with_password_file(mailhub_server: MailhubServer, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(mailhub_server.password + "\n")
    status, line = _health(
        mailhub_server, "--user", mailhub_server.user, "--password-file", str(pw)
    )
    assert status == 0, line
    assert line.count("login ok") == 2
    # The server saw real logins.
    mailhub_server.wait_for_log(rf"logged in as {mailhub_server.user}")
    mailhub_server.wait_for_log(rf"pop3 \S+: {mailhub_server.user} logged in")


def test_wrong_password_is_unhealthy(mailhub_server: MailhubServer, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("not-the-password\n")
    status, line = _health(
        mailhub_server, "--user", mailhub_server.user, "--password-file", str(pw)
    )
    assert status == 1
    assert line.startswith(f"unhealthy: imap 127.0.0.1:{mailhub_server.ports['imap']}: ")
    assert "Authentication failed" in line or "AUTHENTICATIONFAILED" in line


def test_user_without_password_file(mailhub_server: MailhubServer) -> None:
    status, line = _health(mailhub_server, "--user", mailhub_server.user)
    assert status == 1 and "needs --password-file" in line


def test_nothing_listening(tmp_path: Path, mailhub_server: MailhubServer) -> None:
    port = free_port()
    r = mailhub_server.cli("health", "--imap-port", str(port), "--pop3-port", "0")
    assert r.returncode == 1
    assert r.stdout.strip() == (
        f"unhealthy: imap 127.0.0.1:{port}: connection refused (is the server running?)"
    )


def test_stopped_server(mailhub_server: MailhubServer) -> None:
    assert _health(mailhub_server)[0] == 0
    mailhub_server.stop()
    status, line = _health(mailhub_server)
    assert status == 1 and "connection refused" in line
