"""A short mutation-fuzz run of the structure parser (the long one: fuzz_structure.py)."""

from __future__ import annotations

from .fuzz_structure import run


def test_short_fuzz_run() -> None:
    assert run(1500, seed=1) == 1500
