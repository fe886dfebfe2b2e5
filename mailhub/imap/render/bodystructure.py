"""BODY and BODYSTRUCTURE (RFC 9051 §7.5.2 ``body``) rendered from a :class:`Part` tree.

BODYSTRUCTURE carries the extension data (md5, disposition, language, location for leaves;
parameters, disposition, language, location for multiparts), BODY does not. Both are always
syntactically valid: missing pieces become NIL or defaults (text/plain; charset=us-ascii,
7bit). Where RFC 9051 leaves choices open we match Dovecot 2.3, recorded in
tests/mime/fixtures, so clients see what they already see from Dovecot.
"""

from __future__ import annotations

from mailhub.imap.render.envelope import envelope
from mailhub.imap.render.quote import nstring, string
from mailhub.mime.structure import Part, default_params

_EMPTY_ENVELOPE = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
_EMPTY_TEXT = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
_EMPTY_TEXT_EXT = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'


def _params(params: list[tuple[bytes, bytes]]) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(string(k) + b" " + string(v) for k, v in params) + b")"


def _is_default_text(p: Part) -> bool:
    """text/plain; charset=us-ascii in any case: Dovecot reports its canonical lowercase form."""
    return (
        p.type.lower() == b"text"
        and p.subtype.lower() == b"plain"
        and len(p.params) == 1
        and p.params[0][0].lower() == b"charset"
        and p.params[0][1].lower() == b"us-ascii"
    )


def _type_fields(p: Part) -> list[bytes]:
    if not p.explicit_type or _is_default_text(p):
        if p.type.lower() == b"message":
            return [b'"message" "rfc822" NIL']
        return [b'"text" "plain" ("charset" "us-ascii")']
    if p.message is not None:  # RFC 9051 media-message; Dovecot sends it in lowercase
        return [b'"message" "rfc822"', _params(p.params)]
    return [string(p.type), string(p.subtype), _params(default_params(p))]


def _disposition(p: Part) -> bytes:
    d = p.disposition
    if d is None:
        return b"NIL"
    return b"(" + string(d[0]) + b" " + _params(d[1]) + b")"


def _language(p: Part) -> bytes:
    langs = p.language
    if not langs:
        return b"NIL"
    return b"(" + b" ".join(string(x) for x in langs) + b")"


def _render(p: Part, ext: bool) -> bytes:
    if p.is_multipart:
        kids = b"".join(_render(c, ext) for c in p.children) or (
            _EMPTY_TEXT_EXT if ext else _EMPTY_TEXT
        )
        out = [kids, string(p.subtype)]
        if ext:
            out += [_params(p.params), _disposition(p), _language(p), nstring(p.location)]
        return b"(" + b" ".join(out) + b")"
    fields = _type_fields(p)
    enc = p.encoding
    fields += [
        nstring(p.content_id),
        nstring(p.description),
        string(enc) if enc is not None else b'"7bit"',
        b"%d" % p.body_size,
    ]
    ltype = p.type.lower()
    if ltype == b"text":
        fields.append(b"%d" % p.lines)
    elif ltype == b"message" and p.subtype.lower() == b"rfc822":
        if p.message is not None:
            fields += [envelope(p.message.fields), _render(p.message, ext)]
        else:
            fields += [_EMPTY_ENVELOPE, _EMPTY_TEXT_EXT if ext else _EMPTY_TEXT]
        fields.append(b"%d" % p.lines)
    if ext:
        fields += [nstring(p.md5), _disposition(p), _language(p), nstring(p.location)]
    return b"(" + b" ".join(fields) + b")"


def bodystructure(root: Part) -> bytes:
    """FETCH BODYSTRUCTURE value: the body structure with extension data."""
    return _render(root, True)


def body(root: Part) -> bytes:
    """FETCH BODY value (non-extensible BODYSTRUCTURE)."""
    return _render(root, False)
