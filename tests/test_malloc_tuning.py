"""A burst of logins must not leave the server holding scrypt's memory (16 MiB per check)."""

from __future__ import annotations

import imaplib
import platform
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mailhub_proc import MailhubServer

from mailhub.malloc_tuning import return_big_blocks


def _pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise AssertionError("no Pss line")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc tuning")
def test_threshold_is_set_on_glibc() -> None:
    assert return_big_blocks()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc tuning")
def test_login_burst_leaves_no_scrypt_buffers_behind(mailhub_server: MailhubServer) -> None:
    """Regression: glibc's dynamic mmap threshold kept every worker thread's 16 MiB scrypt
    buffer after the first logins (124 MB held after 500 logins, measured)."""
    server = mailhub_server
    assert server.proc is not None

    def login() -> None:
        c = imaplib.IMAP4(server.host, server.ports["imap"])
        try:
            c.login(server.user, server.password)
        finally:
            c.logout()

    login()  # first contact: modules, the account, the pool's first thread
    before = _pss_kb(server.proc.pid)
    with ThreadPoolExecutor(12) as pool:
        for _ in range(3):
            list(pool.map(lambda _: login(), range(12)))
    grown = _pss_kb(server.proc.pid) - before
    # every pool thread keeping its buffer would be 16 MiB each, at least 32 MB on any machine
    assert grown < 24 * 1024, f"server kept {grown} KB after 36 logins"


def test_serve_spaces_out_full_collections() -> None:
    """The thresholds ``serve`` sets (the call is in ``cmd_serve``)."""
    import gc

    from mailhub.malloc_tuning import GC_THRESHOLDS, space_out_full_collections

    before = gc.get_threshold()
    try:
        space_out_full_collections()
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)
    cli = Path(__file__).resolve().parent.parent / "mailhub" / "cli.py"
    assert "space_out_full_collections()" in cli.read_text()
