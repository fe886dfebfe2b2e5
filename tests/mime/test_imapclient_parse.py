"""Our ENVELOPE/BODYSTRUCTURE read back by a real client's parser (PyPI imapclient).

imapclient is what many Python mail tools use; its FETCH response parser must accept every
value we render (literals included) and see the same subject and structure.
"""

from __future__ import annotations

import pathlib
import re

import pytest
from imapclient.response_parser import parse_fetch_response

from mailhub.imap.render import bodystructure, envelope
from mailhub.mime import headers as H
from mailhub.mime.structure import parse

CORPUS = sorted((pathlib.Path(__file__).parent / "corpus").glob("*.eml"))


def as_imaplib_lines(resp: bytes) -> list[bytes | tuple[bytes, bytes]]:
    """Split a response at its literals the way imaplib hands them to imapclient."""
    out: list[bytes | tuple[bytes, bytes]] = []
    pos = 0
    while m := re.compile(rb"\{(\d+)\}\r\n").search(resp, pos):
        n = int(m.group(1))
        out.append((resp[pos : m.end() - 2], resp[m.end() : m.end() + n]))
        pos = m.end() + n
    out.append(resp[pos:])
    return out


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_imapclient_reads_our_values(path: pathlib.Path) -> None:
    data = path.read_bytes()
    root = parse(data)
    resp = b"1 (ENVELOPE " + envelope(root.fields) + b" BODYSTRUCTURE " + bodystructure(root)
    parsed = parse_fetch_response(as_imaplib_lines(resp + b")"))
    env = parsed[1][b"ENVELOPE"]
    subject = H.last_value(root.fields, b"subject", keep_folding=True)
    if subject is None:
        assert env.subject is None
    else:
        assert env.subject == b" ".join(subject.split())
    bs = parsed[1][b"BODYSTRUCTURE"]
    assert bs.is_multipart == root.is_multipart
    if root.is_multipart:
        assert len(bs[0]) == len(root.children)
        assert bs[1].lower() == root.subtype.lower()
    else:
        assert bs[0].lower() == (root.type.lower() if root.explicit_type else b"text")
