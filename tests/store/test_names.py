"""Pure tests: folder names, file names, modified UTF-7."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhub import mutf7
from mailhub.errors import MailError, MailErrorKind
from mailhub.store.maildir import account_dir, filename, layout


@given(st.text())
def test_mutf7_round_trip(text: str) -> None:
    encoded = mutf7.encode(text)
    assert encoded.isascii()
    assert mutf7.decode(encoded) == text


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_mutf7_decoder_never_crashes(text: str) -> None:
    with contextlib.suppress(mutf7.MUTF7Error):
        mutf7.decode(text)


@pytest.mark.parametrize(
    ("text", "encoded"),
    [("Entwürfe", "Entw&APw-rfe"), ("a&b", "a&-b"), ("日本語", "&ZeVnLIqe-")],
)
def test_mutf7_known_values(text: str, encoded: str) -> None:
    assert mutf7.encode(text) == encoded
    assert mutf7.decode(encoded) == text


@pytest.mark.parametrize("bad", ["&Jjo!", "&U,BTFw-&ZeVnLIqe-x&", "&AGE-"])
def test_mutf7_rejects_malformed(bad: str) -> None:
    with pytest.raises(mutf7.MUTF7Error):
        mutf7.decode(bad)


def test_folder_dirs_match_dovecot_maildirplusplus(tmp_path: Path) -> None:
    assert layout.folder_dir(tmp_path, "INBOX") == tmp_path
    assert layout.folder_dir(tmp_path, "Entwürfe/2024") == tmp_path / ".Entw&APw-rfe.2024"
    assert layout.name_of_dir(".Entw&APw-rfe.2024") == "Entwürfe/2024"
    assert layout.canonical("inbox") == "INBOX"
    assert layout.canonical("iNbOx/Sub") == "INBOX/Sub"


@pytest.mark.parametrize(
    "bad", ["", "..", "a/../b", "a/", "/a", "a.b", "a\\b", "x\x00y", "tab\there", "~root"]
)
def test_names_that_could_escape_are_refused(bad: str) -> None:
    with pytest.raises(MailError) as info:
        layout.canonical(bad)
    assert info.value.kind is MailErrorKind.BADNAME


@given(st.lists(st.text(min_size=1).filter(lambda s: "/" not in s), min_size=1, max_size=4))
def test_valid_names_stay_inside_the_account(parts: list[str]) -> None:
    name = "/".join(parts)
    try:
        canonical = layout.canonical(name)
    except MailError:
        return
    root = Path("/srv/mail/a")
    path = layout.folder_dir(root, canonical)
    assert path.parent == root
    assert path.name.startswith(".") or path == root
    assert layout.name_of_dir(path.name) == canonical or canonical == "INBOX"


@pytest.mark.parametrize("bad", ["a/b@x.org", "..@x.org", "a@..", "noat", "@x.org", "a@x/y"])
def test_addresses_that_could_escape_are_refused(bad: str) -> None:
    with pytest.raises(MailError):
        account_dir(Path("/srv/mail"), bad)


def test_file_names_carry_uid_and_sizes() -> None:
    base = filename.new_base(42, 100, 104)
    parsed = filename.parse(filename.build(base, "FS"))
    assert (parsed.uid, parsed.size, parsed.crlf_size, parsed.letters) == (42, 100, 104, "FS")
    assert parsed.base == base
    dovecot = filename.parse("1795733768.M463108P12880.vm,S=16,W=19:2,Fb")
    assert (dovecot.uid, dovecot.size, dovecot.crlf_size, dovecot.letters) == (None, 16, 19, "Fb")


@given(st.text())
def test_file_name_parser_never_crashes(name: str) -> None:
    parsed = filename.parse(name)
    assert name.startswith(parsed.base)
