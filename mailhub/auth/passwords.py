"""Password hashing with stdlib ``hashlib.scrypt`` (see docs/decisions/password-hash.md).

A hash is a self-describing string ``scrypt$N$r$p$<salt b64>$<hash b64>``: the cost parameters
travel with each hash, so they can be raised later without invalidating existing accounts
(``needs_rehash`` tells when an account's hash is weaker than the current default). Every
account gets its own random salt, and comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SCHEME = "scrypt"
# N=2^14, r=8, p=1: about 16 MiB and ~80 ms per check on a small machine. That is the
# interactive-login setting recommended in the scrypt paper and by OWASP.
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
# Refuse absurd parameters read from a (possibly tampered) accounts file rather than letting a
# single login allocate gigabytes.
_MAX_N = 2**20
_MAX_RP = 64


class PasswordHashError(ValueError):
    """A stored hash string that is not in the ``scrypt$N$r$p$salt$hash`` form."""


@dataclass(frozen=True, slots=True)
class _Parsed:
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # maxmem must cover 128 * N * r * (p + 1) bytes or OpenSSL refuses the parameters.
    maxmem = 128 * n * r * (p + 2) + 1024 * 1024
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen
    )


def hash_password(
    password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> str:
    """Hash ``password`` with a fresh random salt; returns the self-describing hash string."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, n, r, p, KEY_BYTES)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> _Parsed:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise PasswordHashError("not a scrypt$N$r$p$salt$hash string")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except ValueError as exc:
        raise PasswordHashError(f"malformed hash field: {exc}") from None
    if n < 2 or n > _MAX_N or n & (n - 1) or not 1 <= r <= _MAX_RP or not 1 <= p <= _MAX_RP:
        raise PasswordHashError("scrypt parameters out of range")
    if not salt or len(key) < 16:
        raise PasswordHashError("salt or hash too short")
    return _Parsed(n, r, p, salt, key)


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; constant-time in the comparison.

    A malformed stored hash never matches (and never raises), so a damaged account record
    locks that account instead of crashing a login.
    """
    try:
        parsed = _parse(stored)
    except PasswordHashError:
        return False
    candidate = _derive(password, parsed.salt, parsed.n, parsed.r, parsed.p, len(parsed.key))
    return hmac.compare_digest(candidate, parsed.key)


def needs_rehash(stored: str) -> bool:
    """True when ``stored`` uses weaker parameters than the current defaults."""
    try:
        parsed = _parse(stored)
    except PasswordHashError:
        return True
    return (parsed.n, parsed.r, parsed.p) < (DEFAULT_N, DEFAULT_R, DEFAULT_P)


def is_valid_hash(stored: str) -> bool:
    """True when ``stored`` parses as a hash string (used when loading the accounts file)."""
    try:
        _parse(stored)
    except PasswordHashError:
        return False
    return True


# A hash of a random password, checked when the user does not exist so that an unknown user
# costs as much time as a wrong password (no user enumeration by timing).
@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def burn_time(password: str) -> None:
    """Spend one verification's worth of CPU; the result is always discarded."""
    verify_password(password, _dummy_hash())
