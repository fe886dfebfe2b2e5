"""Sans-I/O SASL PLAIN (RFC 4616) and LOGIN decoders shared by IMAP and POP3.

No sockets, no event loop: a frontend creates a mechanism, feeds it the client's lines
(the base64 text exactly as received, without CRLF) and gets back either a :class:`Challenge`
to send (already base64-encoded) or the decoded :class:`Credentials`. Anything malformed raises
:class:`SaslError` with a :class:`SaslErrorKind`, which the frontend maps to its own reply
(IMAP ``BAD``/``NO``, POP3 ``-ERR``). Checking the password is not done here.

Wire rules applied: the client cancels with a line ``*`` (RFC 9051 §6.2.2, RFC 5034 §4);
an initial response of ``=`` means an empty response (RFC 4959 §3, RFC 5034 §4); base64
must be strictly valid (RFC 4648, no whitespace or stray characters).
"""

from __future__ import annotations

import abc
import base64
import binascii
import enum
from dataclasses import dataclass

MECHANISMS: tuple[str, ...] = ("PLAIN", "LOGIN")
# RFC 4616 §2: authzid, authcid and passwd are each at most 255 octets. Be a little generous
# (long passphrases) but keep a bound so a client cannot make us decode megabytes.
MAX_FIELD = 1024
MAX_RESPONSE = 3 * MAX_FIELD + 2


class SaslErrorKind(enum.Enum):
    CANCELLED = "cancelled"  # the client sent "*"
    BAD_BASE64 = "bad_base64"  # not valid base64
    MALFORMED = "malformed"  # decoded, but not the mechanism's format (or not UTF-8)
    TOO_LONG = "too_long"  # a field over MAX_FIELD octets
    AUTHZID = "authzid"  # asked to act as another user (we do not support proxy auth)
    UNSUPPORTED = "unsupported"  # unknown mechanism name
    PROTOCOL = "protocol"  # a response after the exchange finished


class SaslError(Exception):
    """A failed SASL exchange; ``kind`` says why, ``str()`` is safe to log (no secrets)."""

    def __init__(self, kind: SaslErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the client claims: the login name and password (``authzid`` only if it differed
    from nothing; it is always equal to ``username`` when present, see RFC 4616 §2)."""

    username: str
    password: str
    authzid: str | None = None

    def __repr__(self) -> str:  # never let a password reach a log through repr()
        return f"Credentials(username={self.username!r}, password=<hidden>)"


@dataclass(frozen=True, slots=True)
class Challenge:
    """A server challenge, base64-encoded, to send after ``+ `` (IMAP, POP3)."""

    data: bytes


def decode_response(line: bytes) -> bytes:
    """Decode one client response line (base64); ``*`` cancels, ``=`` is empty."""
    line = line.rstrip(b"\r\n")
    if line == b"*":
        raise SaslError(SaslErrorKind.CANCELLED, "authentication cancelled by the client")
    if line == b"=":
        return b""
    if len(line) > (MAX_RESPONSE * 4) // 3 + 4:
        raise SaslError(SaslErrorKind.TOO_LONG, "SASL response too long")
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise SaslError(SaslErrorKind.BAD_BASE64, "invalid base64 in SASL response") from None


def encode_challenge(data: bytes) -> bytes:
    """Base64 of a challenge (an empty challenge encodes as the empty string)."""
    return base64.b64encode(data)


def _text(field: bytes, what: str, *, controls: bool = False) -> str:
    if len(field) > MAX_FIELD:
        raise SaslError(SaslErrorKind.TOO_LONG, f"{what} too long")
    try:
        text = field.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError(SaslErrorKind.MALFORMED, f"{what} is not UTF-8") from None
    if not controls and any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise SaslError(SaslErrorKind.MALFORMED, f"{what} contains control characters")
    return text


def same_identity(a: str, b: str) -> bool:
    """Whether an authzid names the login identity (domain part compared case-insensitively)."""
    la, _, da = a.rpartition("@")
    lb, _, db = b.rpartition("@")
    return (la.casefold(), da.lower()) == (lb.casefold(), db.lower())


def parse_plain(message: bytes) -> Credentials:
    """Decode a PLAIN message: ``[authzid] NUL authcid NUL passwd`` (RFC 4616 §2).

    An authzid is accepted only when it names the authenticating user itself: mailhub has
    no administrators who may log in as someone else, so anything else is refused rather than
    silently ignored.
    """
    parts = message.split(b"\x00")
    if len(parts) != 3:
        raise SaslError(SaslErrorKind.MALFORMED, "PLAIN message needs exactly two NUL separators")
    authzid = _text(parts[0], "authorization identity")
    username = _text(parts[1], "user name")
    password = _text(parts[2], "password", controls=True)
    if not username:
        raise SaslError(SaslErrorKind.MALFORMED, "empty user name")
    if not password:
        raise SaslError(SaslErrorKind.MALFORMED, "empty password")
    if authzid and not same_identity(authzid, username):
        raise SaslError(SaslErrorKind.AUTHZID, "authorization identity differs from the user")
    return Credentials(username, password, authzid or None)


class Mechanism(abc.ABC):
    """One SASL exchange. ``start`` then ``respond`` until a :class:`Credentials` comes out."""

    name = ""

    def __init__(self) -> None:
        self._done = False

    @abc.abstractmethod
    def start(self, initial: bytes | None = None) -> Challenge | Credentials:
        """Begin; ``initial`` is the SASL-IR/AUTH initial response as sent (base64)."""

    @abc.abstractmethod
    def respond(self, line: bytes) -> Challenge | Credentials:
        """Feed one client line (base64 text, CRLF optional)."""

    def _finish(self, creds: Credentials) -> Credentials:
        self._done = True
        return creds

    def _check_open(self) -> None:
        if self._done:
            raise SaslError(SaslErrorKind.PROTOCOL, "SASL exchange already finished")


class PlainMechanism(Mechanism):
    """RFC 4616: one message, sent as the initial response or after an empty challenge."""

    name = "PLAIN"

    def start(self, initial: bytes | None = None) -> Challenge | Credentials:
        self._check_open()
        if initial is None:
            return Challenge(b"")
        return self._finish(parse_plain(decode_response(initial)))

    def respond(self, line: bytes) -> Challenge | Credentials:
        self._check_open()
        return self._finish(parse_plain(decode_response(line)))


class LoginMechanism(Mechanism):
    """The obsolete but ubiquitous LOGIN mechanism (draft-murchison-sasl-login): the server
    asks ``Username:`` then ``Password:``, each answer base64-encoded. Outlook and many
    phones still offer only this one."""

    name = "LOGIN"
    USERNAME_PROMPT = Challenge(encode_challenge(b"Username:"))
    PASSWORD_PROMPT = Challenge(encode_challenge(b"Password:"))

    def __init__(self) -> None:
        super().__init__()
        self._username: str | None = None

    def start(self, initial: bytes | None = None) -> Challenge | Credentials:
        self._check_open()
        if initial is None:
            return self.USERNAME_PROMPT
        return self.respond(initial)

    def respond(self, line: bytes) -> Challenge | Credentials:
        self._check_open()
        data = decode_response(line)
        if self._username is None:
            username = _text(data, "user name")
            if not username:
                raise SaslError(SaslErrorKind.MALFORMED, "empty user name")
            self._username = username
            return self.PASSWORD_PROMPT
        password = _text(data, "password", controls=True)
        if not password:
            raise SaslError(SaslErrorKind.MALFORMED, "empty password")
        return self._finish(Credentials(self._username, password))


def new_mechanism(name: str) -> Mechanism:
    """A fresh exchange for ``name`` (case-insensitive); raises UNSUPPORTED for others."""
    upper = name.upper()
    if upper == "PLAIN":
        return PlainMechanism()
    if upper == "LOGIN":
        return LoginMechanism()
    raise SaslError(SaslErrorKind.UNSUPPORTED, f"unsupported SASL mechanism {name[:40]!r}")
