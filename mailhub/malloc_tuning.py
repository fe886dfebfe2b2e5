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
import logging

__all__ = ["MMAP_THRESHOLD", "return_big_blocks"]

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
