"""SIGHUP reloads the TLS certificate for new IMAP connections (implicit TLS and STARTTLS)
without dropping the sessions already open; TLS 1.2 is the minimum."""

from __future__ import annotations

import signal
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from imap_raw import RawImap
from mailhub_proc import MailhubServer

trustme = pytest.importorskip("trustme")


def _serial(sock: ssl.SSLSocket) -> int:
    der = sock.getpeercert(binary_form=True)
    assert der is not None
    from cryptography import x509

    return x509.load_der_x509_certificate(der).serial_number


def test_sighup_swaps_certificate_keeps_sessions(
    mailhub_factory: Callable[..., MailhubServer], tmp_path: Path
) -> None:
    pytest.importorskip("cryptography")
    ca = trustme.CA()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    first = ca.issue_cert("localhost", "127.0.0.1")
    first.private_key_and_cert_chain_pem.write_to_path(str(cert))
    first.private_key_pem.write_to_path(str(key))
    server = mailhub_factory(config={"tls": {"cert_file": str(cert), "key_file": str(key)}})
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    old = RawImap(server.host, server.ports["imaps"], tls=client_ctx)
    old.login(server.user, server.password)
    serial1 = _serial(old.sock)  # type: ignore[arg-type]
    second = ca.issue_cert("localhost", "127.0.0.1")
    second.private_key_and_cert_chain_pem.write_to_path(str(cert))
    second.private_key_pem.write_to_path(str(key))
    mark = len(server.log.splitlines())
    assert server.proc is not None
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for_log(r"reloaded TLS certificate", start=mark)
    new = RawImap(server.host, server.ports["imaps"], tls=client_ctx)
    assert _serial(new.sock) != serial1  # type: ignore[arg-type]
    plain = RawImap(server.host, server.ports["imap"])
    assert plain.cmd("s STARTTLS")[-1].startswith(b"s OK")
    plain.sock = client_ctx.wrap_socket(plain.sock, server_hostname="localhost")
    assert _serial(plain.sock) != serial1  # type: ignore[arg-type]
    assert old.cmd("n NOOP") == [b"n OK NOOP completed"]  # the old session lives on
    # TLS 1.1 is refused
    legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(legacy)
    legacy.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, OSError)):
        RawImap(server.host, server.ports["imaps"], tls=legacy)
