"""The ``maildirsize`` file and its parse cache: never a stale answer, one parse per change
from outside (another process, a quota tool), none for this process's own appends."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhub.store.maildir.quota import FILE_NAME, MaildirSize
from mailhub.store.model import QuotaLimits

LIMITS = QuotaLimits(max_bytes=10**9, max_messages=10**6)
OTHER = QuotaLimits(max_bytes=10**8, max_messages=None)


def _fresh(root: Path, limits: QuotaLimits = LIMITS) -> tuple[int, int]:
    """What a process with no cache reads from the file now."""
    return MaildirSize(root, lambda: (0, 0)).usage(limits)


def _counting(root: Path, start: tuple[int, int] = (0, 0)) -> tuple[MaildirSize, list[int]]:
    calls: list[int] = []

    def recalculate() -> tuple[int, int]:
        calls.append(1)
        return start

    return MaildirSize(root, recalculate), calls


def test_own_appends_keep_the_cache_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quota, _ = _counting(tmp_path, (100, 1))
    assert quota.usage(LIMITS) == (100, 1)
    reads: list[Path] = []
    original = Path.read_text

    def counting_read(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", counting_read)
    assert quota.usage(LIMITS) == (100, 1)  # parses the rewritten file once
    for n in range(50):
        quota.add(1000, 1)
        assert quota.usage(LIMITS) == (100 + 1000 * (n + 1), 2 + n)
    assert len(reads) == 1  # own appends are folded into the cache, not re-read
    assert _fresh(tmp_path) == quota.usage(LIMITS)


def test_outside_append_and_rewrite_are_seen(tmp_path: Path) -> None:
    quota, _ = _counting(tmp_path)
    assert quota.usage(LIMITS) == (0, 0)
    with open(tmp_path / FILE_NAME, "a") as fh:  # another process delivers
        fh.write("500 1\n")
    assert quota.usage(LIMITS) == (500, 1)
    quota.add(300, 1)
    assert quota.usage(LIMITS) == (800, 2)
    tmp = tmp_path / "other.tmp"  # a quota tool rewrites the file (new inode)
    tmp.write_text("1000000000S,1000000C\n7 7\n")
    os.replace(tmp, tmp_path / FILE_NAME)
    assert quota.usage(LIMITS) == (7, 7)


def test_appends_past_the_size_limit_still_force_a_recalculation(tmp_path: Path) -> None:
    quota, calls = _counting(tmp_path)
    quota.usage(LIMITS)
    while (tmp_path / FILE_NAME).stat().st_size <= 5120:
        quota.add(10, 1)
    assert len(calls) == 1
    quota.usage(LIMITS)
    assert len(calls) == 2  # the spec's 5120-byte rule, as without the cache
    assert (tmp_path / FILE_NAME).read_text().count("\n") == 2


def test_changed_limits_rewrite_the_file(tmp_path: Path) -> None:
    quota, calls = _counting(tmp_path, (5, 1))
    quota.usage(LIMITS)
    quota.usage(OTHER)
    assert len(calls) == 2
    assert (tmp_path / FILE_NAME).read_text().startswith("100000000S\n")


def test_no_file_no_append(tmp_path: Path) -> None:
    quota, _ = _counting(tmp_path)
    quota.add(10, 1)  # accounts without a quota have no maildirsize: nothing is created
    assert not (tmp_path / FILE_NAME).exists()


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(-5000, 5000), st.integers(-2, 2)),
        st.tuples(st.just("outside"), st.integers(-5000, 5000), st.integers(-2, 2)),
        st.tuples(st.just("rewrite"), st.integers(0, 5000), st.integers(0, 9)),
        st.tuples(st.just("usage"), st.just(0), st.just(0)),
        st.tuples(st.just("limits"), st.just(0), st.just(0)),
    ),
    max_size=40,
)


@given(_OPS)
@settings(max_examples=60, deadline=None)
def test_cached_usage_always_matches_a_fresh_read(ops: list[tuple[str, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        quota, _ = _counting(root, (1000, 3))
        limits = LIMITS
        quota.usage(limits)
        for op, size, count in ops:
            path = root / FILE_NAME
            if op == "add":
                quota.add(size, count)
            elif op == "outside" and path.exists():
                with open(path, "a") as fh:
                    fh.write(f"{size} {count}\n")
            elif op == "rewrite":
                other = root / "x.tmp"
                other.write_text(f"{path.read_text().splitlines()[0]}\n{size} {count}\n")
                os.replace(other, path)
            elif op == "limits":
                limits = OTHER if limits is LIMITS else LIMITS
            got = quota.usage(limits)
            assert got == _fresh(root, limits)
