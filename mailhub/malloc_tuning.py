"""Give big freed buffers back to the system (glibc only; a no-op elsewhere).

Why: every login runs scrypt, which allocates 16 MiB (``auth/passwords.py``). glibc serves a
block that big with ``mmap`` and unmaps it when freed, but then raises its "dynamic mmap
threshold" to that size, so the next 16 MiB blocks come from the worker threads' malloc arenas
and stay there when freed. Measured: after the first 500 logins the server kept 124 MB it no
longer used (``bench/imap.py``'s IDLE phase without a warm-up), against 18 KB per connection
after that. Setting the threshold explicitly (``M_MMAP_THRESHOLD``, which also turns the
dynamic adjustment off) keeps blocks of 1 MiB and more on ``mmap``: freed means returned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

__all__ = ["GC_THRESHOLDS", "MMAP_THRESHOLD", "return_big_blocks", "space_out_full_collections"]

log = logging.getLogger("mailhub")

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 1024 * 1024


def return_big_blocks() -> bool:
    """Set glibc's mmap threshold; False (nothing done) when the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl (Alpine) has no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    if not ok:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused; big freed blocks may stay allocated")
    return ok


# Young-generation collections every 10,000 net allocations instead of 700.
GC_THRESHOLDS = (10_000, 10, 10)


def space_out_full_collections() -> None:
    """Collect the young generation less often, so full collections come ~14 times rarer.

    Why: with 5,000 IDLE sessions a full collection walks every session's objects; one that
    fell inside the fan-out of a new message delayed the last client by about half a second
    (new mail reaching all 5,000: 0.82-1.02 s with the default thresholds, 0.43 s with these,
    0.44 s with the collector off; ``/work`` measurement in docs/benchmarks.md). Objects are
    still freed by reference counting at once; only cycles wait a little longer.
    """
    gc.set_threshold(*GC_THRESHOLDS)
