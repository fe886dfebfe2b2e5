"""The Debian swaks client against both listeners (a second, independent SMTP/LMTP client)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ingest_harness import DOMAIN, IngestServer, message

pytestmark = [
    pytest.mark.clients,
    pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed"),
]

ALICE, BOB, CAROL = (f"{u}@{DOMAIN}" for u in ("alice", "bob", "carol"))


def swaks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--helo", "swaks.test", "--timeout", "20", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _server_lines(out: str) -> list[str]:
    """What the server said, as swaks prints it ("<-" lines, "<**" for errors)."""
    return [m.group(1) for m in re.finditer(r"^<[-*~]+ +(.*)$", out, re.M)]


def test_swaks_lmtp_mixed_recipients(server: IngestServer, tmp_path: Path) -> None:
    with server.lmtp() as client:  # fill carol's one-message quota
        client.sendmail("s@remote.test", [CAROL], message())
    data = tmp_path / "msg.eml"
    data.write_bytes(message(subject="via swaks"))
    result = swaks(
        "--port", str(server.lmtp_port), "--protocol", "LMTP",
        "--from", "sender@remote.test",
        "--to", f"{ALICE},nobody@{DOMAIN},{BOB},{CAROL}",
        "--data", str(data),
    )  # fmt: skip
    said = _server_lines(result.stdout + result.stderr)
    rcpt_replies = [line for line in said if "2.1.5" in line or "5.1.1" in line or "4.2.2" in line]
    assert any(line.startswith("550 5.1.1") for line in rcpt_replies), said
    assert any(line.startswith("452 4.2.2") for line in rcpt_replies), said
    saved = [line for line in said if line.startswith("250 2.0.0") and "Saved" in line]
    assert len(saved) == 2, said  # one post-DATA reply per accepted recipient
    assert len(server.messages(ALICE)) == 1 and len(server.messages(BOB)) == 1
    assert b"Subject: via swaks" in server.messages(ALICE)[0]


def test_swaks_lmtp_unix_socket(server: IngestServer) -> None:
    result = subprocess.run(
        ["swaks", "--socket", str(server.settings.lmtp.unix_socket), "--protocol", "LMTP",
         "--from", "s@remote.test", "--to", BOB, "--timeout", "20"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(server.messages(BOB)) == 1


def test_swaks_smtp_local_and_relay(server: IngestServer) -> None:
    ok = swaks("--port", str(server.smtp_port), "--from", "s@remote.test", "--to", ALICE,
               "--header", "Subject: swaks smtp", "--body", "Grüße\n")  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    relay = swaks("--port", str(server.smtp_port), "--from", "s@remote.test",
                  "--to", "victim@elsewhere.test")  # fmt: skip
    assert relay.returncode != 0
    assert any(line.startswith("550 5.7.1") for line in _server_lines(relay.stdout))
    [stored] = server.messages(ALICE)
    assert b"Subject: swaks smtp" in stored


def test_swaks_pipelining_and_starttls(server: IngestServer) -> None:
    if server.ctx.tls.server_context() is None:
        pytest.skip("no certificate for STARTTLS")
    result = swaks("--port", str(server.smtp_port), "--from", "s@remote.test", "--to", BOB,
                   "--pipeline", "--tls")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TLS started" in result.stdout
    [stored] = server.messages(BOB)
    assert b"with ESMTPS id" in stored


def test_swaks_oversize(make_server: object) -> None:
    srv = make_server(smtp={"max_message_size": 2048})  # type: ignore[operator]
    srv.add_account("alice")
    result = swaks("--port", str(srv.smtp_port), "--from", "s@remote.test", "--to", ALICE,
                   "--body", "x" * 4000)  # fmt: skip
    assert result.returncode != 0
    assert any(line.startswith("552 5.3.4") for line in _server_lines(result.stdout))
    assert srv.messages(ALICE) == []
