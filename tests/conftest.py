"""Shared fixtures: a real ``mailhub serve`` process on free loopback ports.

``mailhub_server`` is what protocol tests use: a fresh data directory with one account, every
listener on its own free port of 127.0.0.1, and helpers to run the CLI against the same data
directory, restart the server, and read its log. At teardown it sends SIGTERM and asserts a
clean exit (status 0, no traceback in the log).

``mailhub_factory`` starts servers with extra settings (a TOML text or dict, extra env vars)
when a test needs a non-default configuration. The helpers themselves (``MailhubServer``,
``free_port``, ``run_cli``) live in ``tests/mailhub_proc.py``; import them from there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from mailhub_proc import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    MailhubServer,
    free_port,
    free_ports,
    run_cli,
)

__all__ = ["MailhubServer", "free_port", "free_ports", "run_cli"]


def _config_text(config: str | Mapping[str, Any] | None) -> str | None:
    if config is None or isinstance(config, str):
        return config
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in config.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def mailhub_factory(tmp_path: Path) -> Iterator[Callable[..., MailhubServer]]:
    """``mailhub_factory(config=None, env=None, user=..., password=..., start=True)``.

    ``config`` is TOML text or a dict of settings (one level of tables). The account is
    created with ``mailhub user add --password-stdin`` before the server starts (``user=None``
    for none). Every server started is stopped at teardown with a clean-exit check.
    """
    servers: list[MailhubServer] = []

    def make(
        config: str | Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        user: str | None = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        start: bool = True,
        ports: Mapping[str, int] | None = None,
    ) -> MailhubServer:
        data_dir = tmp_path / f"data{len(servers)}"
        data_dir.mkdir()
        server = MailhubServer(
            data_dir,
            user=user or "",
            password=password,
            config=_config_text(config),
            env=env,
            ports=ports,
        )
        servers.append(server)
        if user:
            server.add_user(user, password)
        if start:
            server.start()
        return server

    yield make
    errors = []
    for server in servers:
        try:
            if server.proc is not None:
                server.check_clean_exit()
        except AssertionError as exc:
            errors.append(str(exc))
    if errors:
        pytest.fail("\n\n".join(errors))


@pytest.fixture
def mailhub_server(mailhub_factory: Callable[..., MailhubServer]) -> MailhubServer:
    """A running server with every listener on a free 127.0.0.1 port and one account
    (``.user`` / ``.password``); ``.ports`` maps imap, imaps, pop3, pop3s, lmtp, smtp."""
    return mailhub_factory()
