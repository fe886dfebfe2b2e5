"""Modified UTF-7 for IMAP4rev1 mailbox names: the one implementation is
:mod:`mailhub.mutf7` (the store needs it for Maildir++ folder names too)."""

from __future__ import annotations

from mailhub.mutf7 import UTF7Error, decode, encode

__all__ = ["UTF7Error", "decode", "encode"]
