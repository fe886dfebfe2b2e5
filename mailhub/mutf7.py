"""Modified UTF-7 (RFC 3501 §5.1.3, RFC 9051 §5.1.3): non-ASCII folder names for IMAP4rev1 clients
and for Maildir++ directories on disk (Dovecot and Courier write ``.Entw&APw-rfe``).

It lives outside both the store and the IMAP frontend because both need it; IMAP4rev1 clients
that have not enabled UTF8=ACCEPT spell non-ASCII mailbox names in this encoding.

Decoding is *strict*: any input the encoder would never produce (8-bit bytes, raw control
characters, an unterminated shift, a shifted printable ASCII character, two adjacent shifts,
non-zero padding bits, broken surrogates) is rejected with :class:`UTF7Error`, so that one
Unicode name has exactly one wire spelling and two spellings can never reach two different
folders (Dovecot ``imap-utf7.c`` does the same).
"""

from __future__ import annotations

import base64
import binascii
import functools

__all__ = ["MUTF7Error", "UTF7Error", "decode", "encode"]

_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


class MUTF7Error(ValueError):
    """The input is not valid (canonical) modified UTF-7."""


UTF7Error = MUTF7Error


def _shift(chars: list[str]) -> str:
    raw = "".join(chars).encode("utf-16-be", "surrogatepass")
    return "&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-"


@functools.lru_cache(maxsize=4096)
def encode(text: str) -> str:
    """Encode a Unicode mailbox name as modified UTF-7 (remembered: the same few names are
    encoded in every LIST and STATUS response of a rev1 client)."""
    out: list[str] = []
    pending: list[str] = []
    for ch in text:
        if 0x20 <= ord(ch) <= 0x7E:
            if pending:
                out.append(_shift(pending))
                pending = []
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    if pending:
        out.append(_shift(pending))
    return "".join(out)


def _decode_shift(b64: str) -> str:
    if not b64:
        raise UTF7Error("empty shift sequence")
    if any(ord(c) not in _B64_ALPHABET for c in b64):
        raise UTF7Error("invalid character in shift sequence")
    nbits = len(b64) * 6
    if nbits % 16 >= 6:
        raise UTF7Error("superfluous base64 characters in shift sequence")
    padded = b64.replace(",", "/") + "=" * (-len(b64) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except binascii.Error as exc:  # pragma: no cover - alphabet already checked
        raise UTF7Error("bad base64 in shift sequence") from exc
    # Non-zero leftover bits mean a non-canonical encoding.
    leftover = nbits % 8
    if leftover:
        last = b64[-1].replace(",", "/")
        idx = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(last)
        if idx & ((1 << leftover) - 1):
            raise UTF7Error("non-zero padding bits in shift sequence")
    if len(raw) % 2:
        raise UTF7Error("odd number of bytes in shift sequence")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise UTF7Error("invalid UTF-16 in shift sequence") from exc
    for ch in text:
        if 0x20 <= ord(ch) <= 0x7E:
            raise UTF7Error("printable ASCII must not be shifted")
    return text


def decode(data: str | bytes) -> str:
    """Decode modified UTF-7 strictly; raise :class:`UTF7Error` on anything non-canonical."""
    if isinstance(data, bytes):
        try:
            data = data.decode("ascii")
        except UnicodeDecodeError as exc:
            raise UTF7Error("8-bit byte in modified UTF-7") from exc
    out: list[str] = []
    i = 0
    n = len(data)
    prev_shift_end = -1
    while i < n:
        ch = data[i]
        o = ord(ch)
        if o < 0x20 or o > 0x7E:
            raise UTF7Error("character not allowed in modified UTF-7")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = data.find("-", i + 1)
        if end < 0:
            raise UTF7Error("unterminated shift sequence")
        if end == i + 1:
            out.append("&")
            i = end + 1
            continue
        if prev_shift_end == i:
            raise UTF7Error("adjacent shift sequences must be merged")
        out.append(_decode_shift(data[i + 1 : end]))
        i = end + 1
        prev_shift_end = i
    return "".join(out)
