"""SASL PLAIN (RFC 4616) and LOGIN decoders: examples plus hypothesis properties."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailhub.auth.sasl import (
    Challenge,
    Credentials,
    LoginMechanism,
    PlainMechanism,
    SaslError,
    SaslErrorKind,
    decode_response,
    new_mechanism,
    parse_plain,
)


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_plain_initial_response() -> None:
    creds = PlainMechanism().start(b64(b"\x00tim\x00tanstaaftanstaaf"))
    assert creds == Credentials("tim", "tanstaaftanstaaf")


def test_plain_rfc4616_example_with_authzid() -> None:
    # RFC 4616 §4: authzid "Ursel", authcid "Kurt" is a request to act as someone else.
    with pytest.raises(SaslError) as info:
        parse_plain(b"Ursel\x00Kurt\x00xipj3plmq")
    assert info.value.kind is SaslErrorKind.AUTHZID
    # The same identity as authzid is fine (Thunderbird and others send it).
    creds = parse_plain(b"kurt@Example.org\x00kurt@example.ORG\x00pw")
    assert creds.username == "kurt@example.ORG" and creds.authzid == "kurt@Example.org"


def test_plain_empty_challenge_then_response() -> None:
    mech = new_mechanism("plain")
    assert mech.start(None) == Challenge(b"")
    assert mech.respond(b64(b"\x00u@x.org\x00p w") + b"\r\n") == Credentials("u@x.org", "p w")
    with pytest.raises(SaslError) as info:
        mech.respond(b64(b"\x00u\x00p"))
    assert info.value.kind is SaslErrorKind.PROTOCOL


def test_login_exchange() -> None:
    mech = new_mechanism("LOGIN")
    first = mech.start()
    assert isinstance(first, Challenge) and base64.b64decode(first.data) == b"Username:"
    second = mech.respond(b64(b"me@x.org"))
    assert isinstance(second, Challenge) and base64.b64decode(second.data) == b"Password:"
    assert mech.respond(b64("pässwörd".encode())) == Credentials("me@x.org", "pässwörd")


def test_login_with_initial_response() -> None:
    mech = LoginMechanism()
    assert mech.start(b64(b"me")) == LoginMechanism.PASSWORD_PROMPT
    assert mech.respond(b64(b"pw")) == Credentials("me", "pw")


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b"*", SaslErrorKind.CANCELLED),
        (b"not base64!", SaslErrorKind.BAD_BASE64),
        (b"AAA", SaslErrorKind.BAD_BASE64),
        (b64(b"no-nuls"), SaslErrorKind.MALFORMED),
        (b64(b"\x00\x00pw"), SaslErrorKind.MALFORMED),
        (b64(b"\x00user\x00"), SaslErrorKind.MALFORMED),
        (b64(b"\x00a\x00b\x00c"), SaslErrorKind.MALFORMED),
        (b64(b"\x00\xff\xfe\x00pw"), SaslErrorKind.MALFORMED),
        (b64(b"\x00us\ter\x00pw"), SaslErrorKind.MALFORMED),
        (b64(b"\x00" + b"u" * 5000 + b"\x00pw"), SaslErrorKind.TOO_LONG),
        (b"=", SaslErrorKind.MALFORMED),
    ],
)
def test_plain_rejects(line: bytes, kind: SaslErrorKind) -> None:
    with pytest.raises(SaslError) as info:
        PlainMechanism().start(line)
    assert info.value.kind is kind
    assert "pw" not in str(info.value)


def test_unknown_mechanism() -> None:
    with pytest.raises(SaslError) as info:
        new_mechanism("CRAM-MD5")
    assert info.value.kind is SaslErrorKind.UNSUPPORTED


def test_credentials_repr_hides_password() -> None:
    assert "hunter2" not in repr(Credentials("u", "hunter2"))


def test_equals_sign_is_empty_response() -> None:
    assert decode_response(b"=") == b""


# -- properties --------------------------------------------------------------------------------

_name = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\x00"),
    min_size=1,
    max_size=60,
)
_password = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=60,
)


@given(_name, _password, st.booleans())
def test_plain_roundtrip(user: str, password: str, with_authzid: bool) -> None:
    authzid = user if with_authzid else ""
    msg = f"{authzid}\x00{user}\x00{password}".encode()
    creds = PlainMechanism().start(b64(msg))
    assert creds == Credentials(user, password, authzid or None)


@given(_name, _password)
def test_login_roundtrip(user: str, password: str) -> None:
    mech = LoginMechanism()
    mech.start()
    mech.respond(b64(user.encode()))
    assert mech.respond(b64(password.encode())) == Credentials(user, password)


@given(st.binary(max_size=300))
def test_plain_arbitrary_bytes_only_raise_sasl_error(data: bytes) -> None:
    for line in (data, b64(data)):
        try:
            result = PlainMechanism().start(line)
        except SaslError:
            continue
        assert isinstance(result, Credentials)
        assert result.username and result.password


@given(st.lists(st.binary(max_size=80), max_size=4))
def test_login_arbitrary_lines_only_raise_sasl_error(lines: list[bytes]) -> None:
    mech = LoginMechanism()
    mech.start()
    for line in lines:
        try:
            out = mech.respond(line)
        except SaslError:
            return
        if isinstance(out, Credentials):
            return
        assert isinstance(out, Challenge)


@given(_name, _name)
def test_foreign_authzid_always_refused(authzid: str, user: str) -> None:
    from mailhub.auth.sasl import same_identity

    msg = f"{authzid}\x00{user}\x00pw".encode()
    try:
        creds = parse_plain(msg)
    except SaslError as exc:
        assert exc.kind is SaslErrorKind.AUTHZID
        assert not same_identity(authzid, user)
    else:
        assert same_identity(authzid, user)
        assert creds.username == user
