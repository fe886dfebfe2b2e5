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


_WANTED = frozenset((*_ADDR_FIELDS, b"date", b"subject", b"in-reply-to", b"message-id"))
# Rendered address lists by their raw header values: a mailbox has few correspondents, so
# the From/To/Cc of most messages were rendered before. Bounded; cleared when full.
_RENDERED: dict[tuple[bytes, ...], bytes] = {}
_RENDERED_MAX = 8192


def _rendered_list(values: list[bytes] | None) -> bytes:
    """``render_addresses`` of every address in ``values`` (one header's occurrences)."""
    if values is None:
        return b"NIL"
    key = tuple(values)
    out = _RENDERED.get(key)
    if out is None:
        addrs: list[Address] = []
        for v in values:
            addrs.extend(parse_addresses(H.unfold(v)))
        out = render_addresses(addrs)
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.clear()
        _RENDERED[key] = out
    return out


def envelope(fields: list[tuple[bytes, bytes]]) -> bytes:
    """The parenthesised ENVELOPE for a header (``Part.fields`` of a message).

    One pass over the fields (not one per ENVELOPE member); the same bytes as rendering
    :func:`envelope_fields` (tests/mime/test_fast_paths.py compares them).
    """
    found: dict[bytes, list[bytes]] = {}
    for n, v in fields:
        if n in _WANTED:
            have = found.get(n)
            if have is None:
                found[n] = [v]
            else:
                have.append(v)
    date = found.get(b"date")
    subject = found.get(b"subject")
    reply = found.get(b"in-reply-to")
    msgid = found.get(b"message-id")
    frm = _rendered_list(found.get(b"from"))
    sender = _rendered_list(found.get(b"sender"))
    reply_to = _rendered_list(found.get(b"reply-to"))
    out = [
        b"NIL" if date is None else nstring_nolf(H.unfold(date[-1])),
        b"NIL" if subject is None else nstring_for_humans(subject[-1].lstrip(b" \t")),
        frm,
        frm if sender == b"NIL" else sender,
        frm if reply_to == b"NIL" else reply_to,
        _rendered_list(found.get(b"to")),
        _rendered_list(found.get(b"cc")),
        _rendered_list(found.get(b"bcc")),
        b"NIL" if reply is None else nstring_nolf(H.unfold(reply[-1])),
        b"NIL" if msgid is None else nstring_nolf(H.unfold(msgid[-1])),
    ]
    return b"(" + b" ".join(out) + b")"
