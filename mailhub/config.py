"""Configuration: pydantic models for the TOML file, CLI flags and ``MAILHUB_*`` variables.

Models are frozen and forbid unknown keys, so a typo in the config file is an error naming the
key rather than a silently ignored setting. Every key is documented in
``docs/configuration.md`` (a test checks that the two agree).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TlsSettings(_Section):
    """Certificate and key shared by every TLS listener; reloaded on SIGHUP."""

    cert_file: Path | None = None
    key_file: Path | None = None
    min_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"


class LimitSettings(_Section):
    """Protocol limits shared by IMAP and POP3 (each enforced in the sans-I/O layer)."""

    max_line_length: int = Field(default=65536, ge=1024)
    max_literal_size: int = Field(default=64 * 1024 * 1024, ge=1024)
    prelogin_timeout: float = Field(default=60.0, gt=0)
    imap_autologout: float = Field(default=1800.0, ge=1800.0)
    imap_idle_keepalive: float = Field(default=600.0, gt=0)
    pop3_idle_timeout: float = Field(default=600.0, gt=0)
    max_connections_per_ip: int = Field(default=50, ge=1)
    failed_login_delay: float = Field(default=2.0, ge=0)
    max_protocol_errors: int = Field(default=20, ge=1)


class ImapSettings(_Section):
    port: int = Field(default=1143, ge=0, le=65535)
    tls_port: int = Field(default=1993, ge=0, le=65535)


class Pop3Settings(_Section):
    port: int = Field(default=1110, ge=0, le=65535)
    tls_port: int = Field(default=1995, ge=0, le=65535)
    # Minimum seconds between two logins of one account, advertised as LOGIN-DELAY (RFC 2449
    # §6.5) and enforced with -ERR [LOGIN-DELAY]; 0 = no limit, not advertised.
    login_delay: int = Field(default=0, ge=0)


class LmtpSettings(_Section):
    port: int = Field(default=1024, ge=0, le=65535)
    unix_socket: Path | None = None


class SmtpSettings(_Section):
    port: int = Field(default=1025, ge=0, le=65535)
    local_domains: list[str] = Field(default_factory=list)
    max_message_size: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_recipients: int = Field(default=100, ge=1)
    timeout: float = Field(default=300.0, gt=0)


class DeliverySettings(_Section):
    """How delivery treats an account over quota and unknown sub-addresses."""

    over_quota: Literal["temporary", "permanent"] = "temporary"
    catch_all: dict[str, str] = Field(default_factory=dict)
    recipient_delimiter: str = "+"


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class MetricsSettings(_Section):
    """Prometheus text-format endpoint (``GET /metrics``); off by default, loopback by default."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9317, ge=1, le=65535)


class HealthSettings(_Section):
    """Account ``mailhub health`` logs in with (greetings only when unset)."""

    user: str | None = None
    password_file: Path | None = None


class Settings(_Section):
    """The whole configuration. ``data_dir`` holds accounts, mail and generated TLS files."""

    data_dir: Path = Path("mailhub-data")
    host: str = "127.0.0.1"
    hostname: str = "localhost"
    allow_cleartext_auth: bool = False
    # Seconds a SIGTERM waits for open connections to finish their current command.
    shutdown_timeout: float = Field(default=10.0, ge=0)
    trusted_proxies: list[str] = Field(default_factory=list)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    imap: ImapSettings = Field(default_factory=ImapSettings)
    pop3: Pop3Settings = Field(default_factory=Pop3Settings)
    lmtp: LmtpSettings = Field(default_factory=LmtpSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    log: LogSettings = Field(default_factory=LogSettings)
    # Started as root (outside a container, for ports below 1024): bind, then switch to this
    # user and group (group defaults to the user's primary group).
    user: str | None = None
    group: str | None = None
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
