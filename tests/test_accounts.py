"""Accounts: scrypt hashes and the accounts file shared by the CLI and a running server."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhub.auth.directory import AccountDirectory, AccountsFileError, normalize_address
from mailhub.auth.model import Pop3DeleteAction, Pop3Scope
from mailhub.auth.passwords import hash_password, is_valid_hash, needs_rehash, verify_password
from mailhub.errors import MailError, MailErrorKind

FAST = {"n": 2**4, "r": 1, "p": 1}  # tiny cost parameters, for property tests only


# -- passwords ---------------------------------------------------------------------------------


def test_hash_format_and_verify() -> None:
    h = hash_password("s3cret")
    scheme, n, r, p, _salt, _key = h.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert verify_password("s3cret", h)
    assert not verify_password("s3cret ", h)
    assert not needs_rehash(h)
    assert needs_rehash(hash_password("x", **FAST))


def test_salts_are_per_hash() -> None:
    assert hash_password("same") != hash_password("same")


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_verify_only_matches_the_same_password(a: str, b: str) -> None:
    h = hash_password(a, **FAST)
    assert verify_password(a, h)
    assert verify_password(b, h) == (a == b)


@given(st.text(max_size=120))
def test_garbage_hashes_never_verify_or_raise(stored: str) -> None:
    assert verify_password("anything", stored) is False or is_valid_hash(stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "scrypt",
        "scrypt$16384$8$1$$",
        "md5$1$2$3$YQ==$YQ==",
        "scrypt$3$8$1$YWFhYQ==$YWFhYWFhYWFhYWFhYWFhYQ==",  # N not a power of two
        "scrypt$1099511627776$8$1$YWFhYQ==$YWFhYWFhYWFhYWFhYWFhYQ==",  # absurd memory
        "scrypt$16384$8$1$!!!$YWFhYQ==",
    ],
)
def test_malformed_hashes_are_rejected(stored: str) -> None:
    assert not is_valid_hash(stored)
    assert verify_password("x", stored) is False


# -- addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("Bob@Example.COM", "Bob@example.com"),
        (" a.b+c@x.org ", "a.b+c@x.org"),
        ("x@sub.example.org.", "x@sub.example.org"),
    ],
)
def test_normalize(raw: str, norm: str) -> None:
    assert normalize_address(raw) == norm


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "nobody",
        "@x.org",
        "a@",
        "a b@x.org",
        "../a@x.org",
        "a/b@x.org",
        "a@x/y",
        "a@..",
        ".a@x.org",
        "a..b@x.org",
        "a@-x.org",
        "a\x00@x.org",
        "a@x.org\nb",
    ],
)
def test_normalize_rejects(bad: str) -> None:
    with pytest.raises(MailError) as info:
        normalize_address(bad)
    assert info.value.kind is MailErrorKind.BADNAME


@given(st.text(max_size=60))
def test_normalized_addresses_are_safe_path_components(raw: str) -> None:
    try:
        addr = normalize_address(raw)
    except MailError:
        return
    local, _, domain = addr.rpartition("@")
    for part in (local, domain):
        assert part not in ("", ".", "..")
        assert "/" not in part and "\x00" not in part and not part.startswith(".")
    assert normalize_address(addr) == addr


# -- the directory -----------------------------------------------------------------------------


def test_lookup_by_address_alias_and_case(tmp_path: Path) -> None:
    d = AccountDirectory(tmp_path)
    d.add("Alice@Example.com", "pw", aliases=["postmaster@EXAMPLE.com", "al@other.org"])
    d.add("bob@other.org", "pw2")
    for name in (
        "Alice@example.com",
        "alice@EXAMPLE.COM",
        "ALICE@example.com",
        "postmaster@example.com",
        "Postmaster@Example.Com",
        "al@other.org",
        "alice",
    ):
        rec = d.lookup(name)
        assert rec is not None and rec.address == "Alice@example.com", name
    assert d.lookup("bob") is not None
    assert d.lookup("carol@example.com") is None
    assert d.domains() == {"example.com", "other.org"}


def test_bare_local_part_must_be_unambiguous(tmp_path: Path) -> None:
    d = AccountDirectory(tmp_path)
    d.add("me@a.org", "pw")
    d.add("me@b.org", "pw")
    assert d.lookup("me") is None
    assert d.lookup("me@b.org") is not None


def test_authenticate(tmp_path: Path) -> None:
    d = AccountDirectory(tmp_path)
    d.add("u@x.org", "right")

    async def run() -> None:
        assert (await d.authenticate("U@X.ORG", "right")) is not None
        assert await d.authenticate("u@x.org", "wrong") is None
        assert await d.authenticate("nobody@x.org", "right") is None
        d.update("u@x.org", enabled=False)
        assert await d.authenticate("u@x.org", "right") is None

    asyncio.run(run())


def test_authenticate_does_not_block_the_loop(tmp_path: Path) -> None:
    d = AccountDirectory(tmp_path)
    d.add("u@x.org", "pw")

    async def run() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        await asyncio.gather(*(d.authenticate("u@x.org", "pw") for _ in range(4)))
        task.cancel()
        return ticks

    assert asyncio.run(run()) > 3


def test_update_merges_pop3_policy_and_validates(tmp_path: Path) -> None:
    d = AccountDirectory(tmp_path)
    d.add("u@x.org", "pw")
    rec = d.update("u@x.org", pop3={"on_delete": "trash"}, quota_messages=10)
    assert rec.pop3.on_delete is Pop3DeleteAction.TRASH and rec.quota_messages == 10
    rec = d.update("u@x.org", pop3={"scope": "not_retrieved"})
    assert rec.pop3.on_delete is Pop3DeleteAction.TRASH
    assert rec.pop3.scope is Pop3Scope.NOT_RETRIEVED
    with pytest.raises(ValueError, match=r"pop3\.on_delete"):
        d.update("u@x.org", pop3={"on_delete": "shred"})
    with pytest.raises(ValueError, match="password_hash"):
        d.update("u@x.org", password_hash="x")
    with pytest.raises(MailError):
        d.update("nobody@x.org", enabled=False)


def test_changes_by_another_process_are_seen(tmp_path: Path) -> None:
    server_view = AccountDirectory(tmp_path)
    assert server_view.lookup("new@x.org") is None
    # Another process (the CLI) writes the file; the long-lived view reloads on next lookup.
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_add_in_child, args=(str(tmp_path), "new@x.org"))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    rec = server_view.lookup("new@x.org")
    assert rec is not None
    gen = server_view.generation
    AccountDirectory(tmp_path).update("new@x.org", quota_bytes=123)
    rec = server_view.lookup("new@x.org")
    assert rec is not None and rec.quota_bytes == 123
    assert server_view.generation > gen


def _add_in_child(data_dir: str, address: str) -> None:
    AccountDirectory(Path(data_dir)).add(address, "pw")


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_many, args=(str(tmp_path), i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    names = {r.address for r in AccountDirectory(tmp_path).list()}
    assert names == {f"u{i}-{j}@x.org" for i in range(4) for j in range(5)}


def _add_many(data_dir: str, i: int) -> None:
    d = AccountDirectory(Path(data_dir))
    for j in range(5):
        d.add(f"u{i}-{j}@x.org", "pw")


def test_file_is_replaced_atomically_and_private(tmp_path: Path) -> None:
    d = AccountDirectory(tmp_path)
    d.add("a@x.org", "pw")
    ino = (tmp_path / "accounts.json").stat().st_ino
    d.add("b@x.org", "pw")
    st = (tmp_path / "accounts.json").stat()
    assert st.st_ino != ino  # a new file renamed into place, never rewritten in place
    assert st.st_mode & 0o777 == 0o600
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    doc = json.loads((tmp_path / "accounts.json").read_text())
    assert doc["version"] == 1 and [a["address"] for a in doc["accounts"]] == ["a@x.org", "b@x.org"]


def test_damaged_file_keeps_last_good_accounts(tmp_path: Path) -> None:
    d = AccountDirectory(tmp_path)
    d.add("a@x.org", "pw")
    assert d.lookup("a@x.org") is not None
    time.sleep(0.01)
    (tmp_path / "accounts.json").write_text("{ not json")
    assert d.lookup("a@x.org") is not None  # the running server keeps working
    with pytest.raises(AccountsFileError, match="not valid JSON"):
        AccountDirectory(tmp_path).reload()
    (tmp_path / "accounts.json").write_text(json.dumps({"version": 1, "accounts": [{"x": 1}]}))
    with pytest.raises(AccountsFileError, match="account #1"):
        AccountDirectory(tmp_path).reload()


def test_password_change_and_delete(tmp_path: Path) -> None:
    d = AccountDirectory(tmp_path)
    d.add("a@x.org", "old", aliases=["alias@x.org"])
    d.set_password("A@X.org", "new")

    async def check(pw: str) -> bool:
        return await d.authenticate("alias@x.org", pw) is not None

    assert asyncio.run(check("new")) and not asyncio.run(check("old"))
    d.delete("a@x.org")
    assert d.lookup("alias@x.org") is None and d.list() == []
    with pytest.raises(MailError) as info:
        d.delete("a@x.org")
    assert info.value.kind is MailErrorKind.NOTFOUND
