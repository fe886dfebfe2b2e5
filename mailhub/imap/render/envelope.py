"""ENVELOPE (RFC 9051 §7.5.2) from a header block.

Field order: date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id.
Sender and reply-to default to from when the header is absent or empty (RFC 9051 §7.5.2);
the last occurrence of a repeated single-value header wins and repeated
address headers are concatenated (Dovecot's behaviour, see tests/mime/fixtures).
"""

from __future__ import annotations

from mailhub.imap.render.quote import nstring_for_humans, nstring_nolf
from mailhub.mime import headers as H
from mailhub.mime.address import Address, parse_addresses

_ADDR_FIELDS = (b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc")


def _addresses(fields: list[tuple[bytes, bytes]], name: bytes) -> list[Address] | None:
    """All addresses of every ``name`` header, or None when the header is absent."""
    found = False
    out: list[Address] = []
    for n, v in fields:
        if n == name:
            found = True
            out.extend(parse_addresses(H.unfold(v)))
    return out if found else None


def render_addresses(addrs: list[Address] | None) -> bytes:
    """An ENVELOPE address list, NIL when empty."""
    if not addrs:
        return b"NIL"
    parts = [
        b"("
        + nstring_for_humans(a.name)
        + b" "
        + nstring_nolf(a.route)
        + b" "
        + nstring_nolf(a.mailbox)
        + b" "
        + nstring_nolf(a.host)
        + b")"
        for a in addrs
    ]
    return b"(" + b"".join(parts) + b")"


def envelope_fields(fields: list[tuple[bytes, bytes]]) -> dict[bytes, list[Address] | None]:
    """Parsed address headers with the RFC 9051 defaults for sender and reply-to applied."""
    lists = {name: _addresses(fields, name) for name in _ADDR_FIELDS}
    for name in (b"sender", b"reply-to"):
        if not lists[name]:
            lists[name] = lists[b"from"]
    return lists


def envelope(fields: list[tuple[bytes, bytes]]) -> bytes:
    """The parenthesised ENVELOPE for a header (``Part.fields`` of a message)."""
    lists = envelope_fields(fields)
    out = [
        nstring_nolf(H.last_value(fields, b"date")),
        nstring_for_humans(H.last_value(fields, b"subject", keep_folding=True)),
    ]
    out.extend(render_addresses(lists[name]) for name in _ADDR_FIELDS)
    out.append(nstring_nolf(H.last_value(fields, b"in-reply-to")))
    out.append(nstring_nolf(H.last_value(fields, b"message-id")))
    return b"(" + b" ".join(out) + b")"
