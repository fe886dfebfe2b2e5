"""TLS server contexts from the configured certificate, reloadable on SIGHUP.

Every TLS listener (IMAPS, POP3S, STARTTLS/STLS) asks :meth:`TlsProvider.server_context` per
connection, so a reload (Let's Encrypt renewed the files) applies to the next connection
without dropping current ones. With no certificate configured and a loopback host, a
self-signed one is generated once into ``<data>/tls/`` with the ``openssl`` command, so the
out-of-the-box server offers TLS to local clients too; otherwise TLS is simply off (None).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import ssl
import subprocess
from pathlib import Path

from mailhub.config import TlsSettings

log = logging.getLogger(__name__)

GENERATED_CERT = "cert.pem"
GENERATED_KEY = "key.pem"


class TlsError(Exception):
    """The configured certificate or key cannot be loaded; the message names the file."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (where a self-signed cert is fine)."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def generate_self_signed(directory: Path, hostname: str = "localhost") -> tuple[Path, Path] | None:
    """Create a self-signed certificate for loopback use; None when ``openssl`` is missing."""
    cert = directory / GENERATED_CERT
    key = directory / GENERATED_KEY
    if cert.exists() and key.exists():
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    names = {"localhost", hostname}
    san = ",".join([*(f"DNS:{n}" for n in sorted(names)), "IP:127.0.0.1", "IP:::1"])
    cmd = [
        openssl,
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-sha256",
        "-days",
        "825",
        "-subj",
        f"/CN={hostname}/O=mailhub self-signed",
        "-addext",
        f"subjectAltName={san}",
        "-keyout",
        str(key) + ".tmp",
        "-out",
        str(cert) + ".tmp",
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not generate a self-signed certificate: %s", exc)
        return None
    os.chmod(str(key) + ".tmp", 0o600)
    os.replace(str(key) + ".tmp", key)
    os.replace(str(cert) + ".tmp", cert)
    log.info("generated a self-signed certificate for loopback use: %s", cert)
    return cert, key


class TlsProvider:
    """Owns the current server ``SSLContext`` (or None when TLS is off)."""

    def __init__(
        self,
        settings: TlsSettings,
        data_dir: Path,
        host: str = "127.0.0.1",
        hostname: str = "localhost",
    ) -> None:
        self._settings = settings
        self._data_dir = Path(data_dir)
        self._host = host
        self._hostname = hostname
        self._context: ssl.SSLContext | None = None
        self.cert_file: Path | None = None
        self.key_file: Path | None = None
        self.generated = False
        self._locate()
        self.reload()

    def _locate(self) -> None:
        s = self._settings
        if s.cert_file is not None or s.key_file is not None:
            if s.cert_file is None or s.key_file is None:
                raise TlsError("tls.cert_file and tls.key_file must be set together")
            self.cert_file, self.key_file = s.cert_file, s.key_file
            return
        if is_loopback(self._host):
            made = generate_self_signed(self._data_dir / "tls", self._hostname)
            if made is not None:
                self.cert_file, self.key_file = made
                self.generated = True

    def _build(self) -> ssl.SSLContext | None:
        if self.cert_file is None or self.key_file is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = (
            ssl.TLSVersion.TLSv1_3
            if self._settings.min_version == "TLSv1.3"
            else ssl.TLSVersion.TLSv1_2
        )
        ctx.options |= ssl.OP_NO_COMPRESSION
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        except FileNotFoundError as exc:
            raise TlsError(f"TLS file not found: {exc.filename}") from None
        except PermissionError as exc:
            raise TlsError(f"TLS file not readable: {exc.filename}") from None
        except ssl.SSLError as exc:
            raise TlsError(
                f"cannot load certificate {self.cert_file} with key {self.key_file}: {exc.reason}"
            ) from None
        return ctx

    def reload(self) -> bool:
        """Re-read the files; on failure keep the previous context and raise :class:`TlsError`.

        Returns True when TLS is (still) available.
        """
        self._context = self._build()
        return self._context is not None

    def server_context(self) -> ssl.SSLContext | None:
        """The context for a new TLS connection, or None when TLS is not configured."""
        return self._context

    @property
    def enabled(self) -> bool:
        return self._context is not None
