"""A short run of the IMAP parser fuzzer inside the test suite (the long run is manual)."""

from __future__ import annotations

from pathlib import Path

import fuzz_imap_parser


def test_short_fuzz_run_finds_no_escape(tmp_path: Path) -> None:
    stats = fuzz_imap_parser.run(30000, seed=20261126, quiet=True, crash_dir=tmp_path)
    assert stats["crashes"] == 0, list(tmp_path.iterdir())
    assert stats["lines"] == 30000
    # the generator must actually reach the interesting paths
    assert stats["command"] > 1000
    assert stats["error"] > 1000
    assert stats["continuation"] > 100
    assert stats["paused"] > 100
