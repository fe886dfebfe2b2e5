"""Modified UTF-7 (RFC 3501 §5.1.3): how IMAP4rev1 and Maildir++ spell non-ASCII folder names.

The store needs it for on-disk folder names (Dovecot and Courier write ``.Entw&APw-rfe``), and
IMAP needs it on the wire for rev1 clients, so it lives outside both.
"""

from __future__ import annotations

import base64


class MUTF7Error(ValueError):
    """The text is not valid modified UTF-7."""


def encode(text: str) -> str:
    """Encode ``text`` as modified UTF-7."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            b64 = base64.b64encode(raw).decode("ascii").rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            pending.clear()

    for ch in text:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def decode(text: str) -> str:
    """Decode modified UTF-7, strictly: malformed shifts raise :class:`MUTF7Error`."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if not 0x20 <= ord(ch) <= 0x7E:
            raise MUTF7Error(f"character {ch!r} must be encoded")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = text.find("-", i + 1)
        if end < 0:
            raise MUTF7Error("unterminated '&' shift")
        chunk = text[i + 1 : end]
        i = end + 1
        if not chunk:
            out.append("&")
            continue
        b64 = chunk.replace(",", "/")
        b64 += "=" * (-len(b64) % 4)
        try:
            raw = base64.b64decode(b64, validate=True)
            decoded = raw.decode("utf-16-be")
        except (ValueError, UnicodeDecodeError) as exc:
            raise MUTF7Error(f"bad base64 in shift {chunk!r}") from exc
        if not decoded or any(0x20 <= ord(c) <= 0x7E for c in decoded):
            raise MUTF7Error(f"shift {chunk!r} encodes printable ASCII")
        out.append(decoded)
    return "".join(out)
