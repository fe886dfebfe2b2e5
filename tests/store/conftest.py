"""Fixtures for store tests: a real Maildir store on a temporary directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailhub.store.maildir import MaildirAccount, MaildirMailstore

ADDRESS = "alice@example.org"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MaildirMailstore]:
    st = MaildirMailstore(tmp_path / "mail")
    yield st
    await st.close()


@pytest.fixture
async def account(store: MaildirMailstore) -> MaildirAccount:
    return await store.open_account(ADDRESS)


def message(subject: str, body: str = "hello\n", lf: bool = True) -> bytes:
    text = f"From: bob@example.net\nTo: {ADDRESS}\nSubject: {subject}\n\n{body}"
    data = text.encode()
    return data if lf else data.replace(b"\n", b"\r\n")
