"""POP3 fixtures: ``pop3env`` is a real POP3 server over the real Maildir store (see
``pop3_helpers``); end-to-end tests use the shared ``mailhub_server`` fixture instead."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from pop3_helpers import Pop3Env

from mailhub.config import LimitSettings
from mailhub.pop3 import session as pop3_session


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pop3_limits() -> LimitSettings:
    """Override in a test module (or with indirect parametrisation) to tighten limits."""
    return LimitSettings(failed_login_delay=0.05)


@pytest.fixture
def pop3_settings_extra() -> dict[str, Any]:
    return {}


@pytest.fixture
def pop3env(
    tmp_path: Path, ca: trustme.CA, pop3_limits: LimitSettings, pop3_settings_extra: dict[str, Any]
) -> Iterator[Pop3Env]:
    env = Pop3Env(tmp_path / "data", ca, pop3_limits, pop3_settings_extra)
    env.data_dir.mkdir()
    env.start()
    try:
        yield env
    finally:
        env.shutdown()


@pytest.fixture(autouse=True)
def _no_server_bugs() -> Iterator[None]:
    """Architecture rule 7: any unexpected exception in a handler fails the test."""
    before = pop3_session.SERVER_BUGS
    yield
    bugs = pop3_session.SERVER_BUGS
    assert bugs == before, "the POP3 server hit an internal error"
