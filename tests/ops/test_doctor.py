"""``mailhub doctor`` on a broken setup names each fault (and says how to fix it).

The faults are real: a data directory other users can read, a certificate made by openssl
that expired in 2020, a port held by a program that is not mailhub, a damaged folder index.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from mailhub_proc import free_ports, run_cli

ADDRESS = "doc@example.org"


def _expired_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate valid only in January 2020 (``openssl ca`` sets the dates)."""
    directory.mkdir()
    (directory / "newcerts").mkdir()
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("01\n")
    (directory / "ca.cnf").write_text(
        "[ca]\ndefault_ca = d\n[d]\ndir = .\ndatabase = ./index.txt\nnew_certs_dir = ./newcerts\n"
        "serial = ./serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n"
    )
    run = {"cwd": directory, "check": True, "capture_output": True}
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=mail.test",
            "-keyout",
            "key.pem",
            "-out",
            "req.csr",
        ],
        **run,
    )
    subprocess.run(
        [
            "openssl",
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            "key.pem",
            "-in",
            "req.csr",
            "-out",
            "cert.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
        ],
        **run,
    )
    return directory / "cert.pem", directory / "key.pem"


def _config(tmp_path: Path, ports: dict[str, int], tls: tuple[Path, Path] | None) -> Path:
    text = (
        "\n".join(
            [
                "[imap]",
                f"port = {ports['imap']}",
                "tls_port = 0",
                "[pop3]",
                f"port = {ports['pop3']}",
                "tls_port = 0",
                "[lmtp]",
                f"port = {ports['lmtp']}",
                "[smtp]",
                "port = 0",
            ]
        )
        + "\n"
    )
    if tls:
        text += f'[tls]\ncert_file = "{tls[0]}"\nkey_file = "{tls[1]}"\n'
    path = tmp_path / "mailhub.toml"
    path.write_text(text)
    return path


def _setup(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    r = run_cli("user", "add", ADDRESS, "--password-stdin", data_dir=data, input="pw-Secret-9\n")
    assert r.returncode == 0, r.stderr
    # Deliver one message so the account's folders and indexes exist.
    r = run_cli("deliver", ADDRESS, data_dir=data, input="Subject: hi\n\nhello\n")
    assert r.returncode == 0, r.stderr
    return data


def test_doctor_names_each_fault(tmp_path: Path) -> None:
    data = _setup(tmp_path)
    data.chmod(0o755)  # fault 1: mail and password hashes readable by everyone
    cert, key = _expired_cert(tmp_path / "tls")  # fault 2
    imap, pop3, lmtp = free_ports(3)
    squatter = socket.socket()  # fault 3: something else holds the IMAP port
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", imap))
    squatter.listen(5)
    # fault 4: a folder index that is not a database any more
    index = data / "mail" / "example.org" / "doc" / ".Sent" / "mailhub-index.sqlite"
    assert index.exists()
    index.write_bytes(b"this is not a SQLite database" * 100)
    config = _config(tmp_path, {"imap": imap, "pop3": pop3, "lmtp": lmtp}, (cert, key))
    try:
        r = run_cli("doctor", "--config", str(config), data_dir=data)
    finally:
        squatter.close()
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    faults = [line for line in out.splitlines() if line.startswith("FAULT")]
    assert any("readable by other users" in f and "chmod 700" in f for f in faults), out
    assert any("expired on 2020-02-01" in f and "renew" in f for f in faults), out
    assert any(f"imap.port {imap}" in f and "in use by another program" in f for f in faults), out
    assert any("'Sent'" in f and "index damaged" in f and "delete" in f for f in faults), out
    assert len(faults) == 4, out
    assert "doctor: 4 fault(s)" in out
    assert "Traceback" not in r.stderr


def test_doctor_healthy_setup_and_running_server(tmp_path: Path) -> None:
    data = _setup(tmp_path)
    imap, pop3, lmtp = free_ports(3)
    config = _config(tmp_path, {"imap": imap, "pop3": pop3, "lmtp": lmtp}, None)
    r = run_cli("doctor", "-v", "--config", str(config), data_dir=data)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "doctor: no faults" in r.stdout
    # The same ports held by a running mailhub are not a fault.
    env = {"MAILHUB_DATA_DIR": str(data), "MAILHUB_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    import os
    import sys

    server = subprocess.Popen(
        [sys.executable, "-m", "mailhub", "serve"],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        for line in server.stderr:
            if " ready " in line:
                break
        r = run_cli("doctor", "-v", "--config", str(config), data_dir=data)
        assert r.returncode == 0, r.stdout
        assert f"imap.port {imap} is served by a running mailhub" in r.stdout
    finally:
        server.terminate()
        assert server.wait(30) == 0


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_doctor_accounts_file_mode(tmp_path: Path, mode: int) -> None:
    data = _setup(tmp_path)
    (data / "accounts.json").chmod(mode)
    imap, pop3, lmtp = free_ports(3)
    config = _config(tmp_path, {"imap": imap, "pop3": pop3, "lmtp": lmtp}, None)
    r = run_cli("doctor", "--no-store", "--config", str(config), data_dir=data)
    named = "accounts.json is readable by other users" in r.stdout
    assert named == bool(mode & 0o077), r.stdout
    assert r.returncode == (1 if named else 0)
