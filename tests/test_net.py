"""TLS provider (configured, generated, reloaded) and per-IP connection limits."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import ssl
from pathlib import Path

import pytest
import trustme

from mailhub.config import LogSettings, TlsSettings
from mailhub.log import conn_id, setup_logging, user
from mailhub.net.limits import ConnectionLimiter, client_key
from mailhub.net.tls import TlsError, TlsProvider, is_loopback


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def _write_cert(ca: trustme.CA, tmp_path: Path, name: str = "mail.test") -> tuple[Path, Path]:
    cert = ca.issue_cert(name, "127.0.0.1")
    cert_file, key_file = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return cert_file, key_file


async def _handshake(provider: TlsProvider, client: ssl.SSLContext, name: str) -> str:
    """Do a real TLS handshake over loopback; returns the certificate's subject CN seen."""
    server_ctx = provider.server_context()
    assert server_ctx is not None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname=name
        )
        assert await reader.readline() == b"hello\n"
        peer = writer.get_extra_info("peercert")
        writer.close()
        return str(peer["subjectAltName"])
    finally:
        server.close()


def test_configured_certificate_and_reload(ca: trustme.CA, tmp_path: Path) -> None:
    cert, key = _write_cert(ca, tmp_path, "one.test")
    provider = TlsProvider(TlsSettings(cert_file=cert, key_file=key), tmp_path, "0.0.0.0")
    client = ssl.create_default_context()
    ca.configure_trust(client)
    assert "one.test" in asyncio.run(_handshake(provider, client, "one.test"))
    # Renewal: new files in place, then reload (what SIGHUP does).
    cert2, key2 = _write_cert(ca, tmp_path, "two.test")
    shutil.copy(cert2, cert)
    shutil.copy(key2, key)
    assert provider.reload()
    assert "two.test" in asyncio.run(_handshake(provider, client, "two.test"))
    # A broken renewal keeps the previous context.
    cert.write_text("garbage")
    with pytest.raises(TlsError, match="cannot load certificate"):
        provider.reload()
    assert "two.test" in asyncio.run(_handshake(provider, client, "two.test"))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_minimum_version(ca: trustme.CA, tmp_path: Path) -> None:
    cert, key = _write_cert(ca, tmp_path)
    provider = TlsProvider(TlsSettings(cert_file=cert, key_file=key), tmp_path, "0.0.0.0")
    ctx = provider.server_context()
    assert ctx is not None and ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    client = ssl.create_default_context()
    ca.configure_trust(client)
    client.maximum_version = ssl.TLSVersion.TLSv1_1
    client.minimum_version = ssl.TLSVersion.TLSv1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        asyncio.run(_handshake(provider, client, "mail.test"))
    strict = TlsProvider(
        TlsSettings(cert_file=cert, key_file=key, min_version="TLSv1.3"), tmp_path, "0.0.0.0"
    ).server_context()
    assert strict is not None and strict.minimum_version == ssl.TLSVersion.TLSv1_3


def test_bad_configuration(tmp_path: Path) -> None:
    with pytest.raises(TlsError, match="together"):
        TlsProvider(TlsSettings(cert_file=tmp_path / "c.pem"), tmp_path, "127.0.0.1")
    with pytest.raises(TlsError, match="not found"):
        TlsProvider(
            TlsSettings(cert_file=tmp_path / "c.pem", key_file=tmp_path / "k.pem"),
            tmp_path,
            "127.0.0.1",
        )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_self_signed_on_loopback_only(tmp_path: Path) -> None:
    provider = TlsProvider(TlsSettings(), tmp_path, "127.0.0.1", "localhost")
    assert provider.enabled and provider.generated
    cert = tmp_path / "tls" / "cert.pem"
    assert (tmp_path / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    client = ssl.create_default_context(cafile=str(cert))
    assert "localhost" in asyncio.run(_handshake(provider, client, "localhost"))
    mtime = cert.stat().st_mtime_ns
    TlsProvider(TlsSettings(), tmp_path, "::1")  # reuses the existing files
    assert cert.stat().st_mtime_ns == mtime
    public = TlsProvider(TlsSettings(), tmp_path / "pub", "0.0.0.0")
    assert not public.enabled and public.server_context() is None
    assert not (tmp_path / "pub" / "tls").exists()


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.1.2.3") and not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.1") and not is_loopback("mail.example.org")


# -- limits ------------------------------------------------------------------------------------


def test_per_ip_limit() -> None:
    limiter = ConnectionLimiter(max_per_ip=2)
    assert limiter.try_acquire("192.0.2.1") and limiter.try_acquire("192.0.2.1")
    assert not limiter.try_acquire("192.0.2.1")
    assert limiter.try_acquire("192.0.2.2")
    limiter.release("192.0.2.1")
    assert limiter.try_acquire("192.0.2.1")
    for _ in range(5):
        limiter.release("192.0.2.2")  # extra releases never go negative
    assert limiter.count("192.0.2.2") == 0 and limiter.total == 2


def test_ipv6_counted_per_64_and_mapped_v4() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    limiter = ConnectionLimiter(max_per_ip=1)
    assert limiter.try_acquire("2001:db8::1")
    assert not limiter.try_acquire("2001:db8::2")


def test_total_limit_and_hold() -> None:
    limiter = ConnectionLimiter(max_per_ip=10, max_total=1)
    with limiter.hold("192.0.2.1") as ok:
        assert ok
        with limiter.hold("192.0.2.2") as second:
            assert not second
    assert limiter.total == 0


# -- logging -----------------------------------------------------------------------------------


def test_json_logs_carry_connection_context(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    setup_logging(LogSettings(level="INFO", format="json"), stream=sys.stderr)
    try:
        token_c, token_u = conn_id.set("imap-7"), user.set("me@x.org")
        logging.getLogger("mailhub.test").info("logged in")
        conn_id.reset(token_c)
        user.reset(token_u)
        logging.getLogger("mailhub.test").debug("hidden")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        doc = json.loads(line)
        assert doc["msg"] == "logged in" and doc["conn_id"] == "imap-7"
        assert doc["user"] == "me@x.org" and doc["level"] == "INFO"
        setup_logging(LogSettings(level="INFO", format="text"), stream=sys.stderr)
        logging.getLogger("mailhub.test").info("plain")
        text = capsys.readouterr().err.strip().splitlines()
        assert len(text) == 1 and text[0].endswith("mailhub.test plain")
    finally:
        root = logging.getLogger()
        for h in list(root.handlers):
            if getattr(h, "_mailhub", False):
                root.removeHandler(h)
