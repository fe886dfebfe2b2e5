"""Any-state and not-authenticated commands against a real server: CAPABILITY, NOOP, LOGOUT,
ID, LOGIN, AUTHENTICATE (PLAIN/LOGIN, SASL-IR), STARTTLS, implicit TLS, ENABLE, NAMESPACE,
state checks, LOGINDISABLED for cleartext from non-loopback (through a trusted PROXY)."""

from __future__ import annotations

import base64
import imaplib
import socket
import time
from collections.abc import Callable

import pytest
from imap_raw import RawImap
from mailhub_proc import MailhubServer

from mailhub.net.proxy import encode_v1, encode_v2


def test_greeting_and_capability_before_login(raw: Callable[..., RawImap]) -> None:
    c = raw(login=False)
    assert c.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    out = c.cmd("a CAPABILITY")
    caps = out[0].split()
    assert out[-1] == b"a OK CAPABILITY completed"
    for cap in (
        b"IMAP4rev1",
        b"IMAP4rev2",
        b"STARTTLS",
        b"AUTH=PLAIN",
        b"AUTH=LOGIN",
        b"SASL-IR",
        b"LITERAL+",
        b"ID",
        b"ENABLE",
        b"IDLE",
    ):
        assert cap in caps
    assert b"LOGINDISABLED" not in caps  # loopback may log in in cleartext
    assert b"CONDSTORE" not in caps  # post-login extensions only after login


def test_capability_after_login_lists_every_extension(raw: Callable[..., RawImap]) -> None:
    c = raw()
    caps = c.cmd("a CAPABILITY")[0].split()[2:]
    want = [
        "IMAP4rev1",
        "IMAP4rev2",
        "IDLE",
        "NAMESPACE",
        "UIDPLUS",
        "MOVE",
        "UNSELECT",
        "CHILDREN",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "SPECIAL-USE",
        "CREATE-SPECIAL-USE",
        "ESEARCH",
        "SEARCHRES",
        "ENABLE",
        "ID",
        "LITERAL+",
        "SASL-IR",
        "STATUS=SIZE",
        "MULTIAPPEND",
        "BINARY",
        "UTF8=ACCEPT",
        "QUOTA",
        "COMPRESS=DEFLATE",
        "CONDSTORE",
        "QRESYNC",
        "SORT",
        "SORT=DISPLAY",
        "ESORT",
        "THREAD=REFERENCES",
        "THREAD=ORDEREDSUBJECT",
        "WITHIN",
        "XLIST",
    ]
    for cap in want:
        assert cap.encode() in caps, cap
    assert any(c_.startswith(b"APPENDLIMIT=") for c_ in caps)
    assert b"STARTTLS" not in caps and b"AUTH=PLAIN" not in caps


def test_login_ok_and_failure(raw: Callable[..., RawImap], server: MailhubServer) -> None:
    c = raw(login=False)
    bad = c.cmd(f'a LOGIN "{server.user}" "wrong"')
    assert bad[-1] == b"a NO [AUTHENTICATIONFAILED] Authentication failed"
    ok = c.cmd(f'b LOGIN "{server.user}" "{server.password}"')
    assert ok[-1].startswith(b"b OK [CAPABILITY IMAP4rev1")
    again = c.cmd(f'c LOGIN "{server.user}" "{server.password}"')
    assert again[-1].startswith(b"c BAD")  # not allowed once authenticated
    assert "login failed for 'alice@example.com'" in server.log


def test_authenticate_plain_with_and_without_initial_response(
    raw: Callable[..., RawImap], server: MailhubServer
) -> None:
    token = base64.b64encode(f"\0{server.user}\0{server.password}".encode()).decode()
    c = raw(login=False)
    out = c.cmd(f"a AUTHENTICATE PLAIN {token}")
    assert out[-1].startswith(b"a OK")
    d = raw(login=False)
    d.send(b"b AUTHENTICATE PLAIN\r\n")
    assert d.line() == b"+ "
    out = d.cmd(token, tag="b")
    assert out[-1].startswith(b"b OK")
    e = raw(login=False)
    e.send(b"c AUTHENTICATE PLAIN\r\n")
    assert e.line() == b"+ "
    assert e.cmd("*", tag="c")[-1].startswith(b"c BAD")
    assert e.cmd("d NOOP")[-1] == b"d OK NOOP completed"  # the connection goes on


def test_authenticate_login_mechanism(raw: Callable[..., RawImap], server: MailhubServer) -> None:
    c = raw(login=False)
    c.send(b"a AUTHENTICATE LOGIN\r\n")
    assert c.line() == b"+ " + base64.b64encode(b"Username:")
    c.send(base64.b64encode(server.user.encode()) + b"\r\n")
    assert c.line() == b"+ " + base64.b64encode(b"Password:")
    out = c.cmd(base64.b64encode(server.password.encode()), tag="a")
    assert out[-1].startswith(b"a OK")
    f = raw(login=False)
    assert f.cmd("b AUTHENTICATE CRAM-MD5")[-1].startswith(b"b NO")


def test_imaplib_starttls_and_implicit_tls(server: MailhubServer) -> None:
    c = imaplib.IMAP4(server.host, server.ports["imap"])
    c.starttls(ssl_context=server.ssl_context())
    assert "STARTTLS" not in c.capabilities
    c.login(server.user, server.password)
    assert c.select("INBOX")[0] == "OK"
    c.logout()
    s = imaplib.IMAP4_SSL(server.host, server.ports["imaps"], ssl_context=server.ssl_context())
    assert "STARTTLS" not in s.capabilities
    s.login(server.user, server.password)
    assert s.noop()[0] == "OK"
    s.logout()


def test_starttls_discards_pipelined_plaintext(server: MailhubServer) -> None:
    """Commands pipelined after STARTTLS must not run after the handshake (CVE-2011-0411)."""
    c = RawImap(server.host, server.ports["imap"])
    c.send(b"a STARTTLS\r\nb LOGIN alice@example.com x\r\n")
    assert c.line() == b"a OK Begin TLS negotiation now"
    c.sock = server.ssl_context().wrap_socket(c.sock, server_hostname="localhost")
    out = c.cmd("c NOOP")
    assert out == [b"c OK NOOP completed"]
    assert c.cmd("d STARTTLS")[-1].startswith(b"d BAD")


def test_state_checks_in_every_state(raw: Callable[..., RawImap]) -> None:
    c = raw(login=False)
    for cmd in ("SELECT INBOX", 'LIST "" *', "ENABLE CONDSTORE", "FETCH 1 FLAGS", "EXPUNGE"):
        assert c.cmd("x " + cmd)[-1].startswith(b"x BAD"), cmd
    c.login("alice@example.com", "alice-Secret-42")
    for cmd in (
        "FETCH 1 FLAGS",
        "STORE 1 +FLAGS (\\Seen)",
        "EXPUNGE",
        "CLOSE",
        "UNSELECT",
        "CHECK",
        "COPY 1 Trash",
        "MOVE 1 Trash",
        "UID EXPUNGE 1",
        "STARTTLS",
    ):
        assert c.cmd("y " + cmd)[-1].startswith(b"y BAD"), cmd
    assert c.cmd("z SELECT INBOX")[-1].startswith(b"z OK")
    assert c.cmd("w ENABLE CONDSTORE")[-1].startswith(b"w BAD")  # RFC 5161: not when selected
    for cmd in ("CAPABILITY", "NOOP", "ID NIL"):
        assert c.cmd("v " + cmd)[-1].startswith(b"v OK"), cmd


def test_noop_logout_id_namespace(raw: Callable[..., RawImap]) -> None:
    c = raw()
    assert c.cmd("a NOOP") == [b"a OK NOOP completed"]
    out = c.cmd('b ID ("name" "test" "version" "1")')
    assert out[0].startswith(b'* ID ("name" "mailhub" "version" ')
    assert c.cmd("c NAMESPACE")[0] == b'* NAMESPACE (("" "/")) NIL NIL'
    out = c.cmd("d LOGOUT")
    assert out == [b"* BYE Logging out", b"d OK LOGOUT completed"]
    with pytest.raises((ConnectionError, OSError)):
        c.line(timeout=5)


def test_enable(raw: Callable[..., RawImap]) -> None:
    c = raw()
    out = c.cmd("a ENABLE CONDSTORE FOO")
    assert out[0] == b"* ENABLED CONDSTORE"
    out = c.cmd("b ENABLE QRESYNC IMAP4rev2 CONDSTORE")
    assert out[0] == b"* ENABLED QRESYNC IMAP4rev2"
    assert c.cmd("c ENABLE UTF8=ACCEPT")[0] == b"* ENABLED UTF8=ACCEPT"


def test_bye_after_repeated_protocol_errors(mailhub_factory: Callable[..., MailhubServer]) -> None:
    server = mailhub_factory(config={"limits": {"max_protocol_errors": 3}})
    c = RawImap(server.host, server.ports["imap"])
    c.send(b"a FOO\r\nb BAR\r\nc BAZ\r\nd NOOP\r\n")
    lines = [c.line() for _ in range(4)]
    assert lines[0].startswith(b"a BAD") and lines[2].startswith(b"c BAD")
    assert lines[3].startswith(b"* BYE")
    with pytest.raises((ConnectionError, OSError)):
        c.line(timeout=5)


def test_prelogin_timeout(mailhub_factory: Callable[..., MailhubServer]) -> None:
    server = mailhub_factory(config={"limits": {"prelogin_timeout": 1.0}})
    c = RawImap(server.host, server.ports["imap"])
    assert c.line(timeout=10).startswith(b"* BYE")


def test_commands_keep_a_connection_past_the_timeout(
    mailhub_factory: Callable[..., MailhubServer],
) -> None:
    """The read deadline moves with every command (regression guard for the lazily re-armed
    timer): 2.5 s of NOOPs under a 1 s timeout, then silence ends it."""
    server = mailhub_factory(config={"limits": {"prelogin_timeout": 1.0}})
    c = RawImap(server.host, server.ports["imap"])
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < 2.5:
        n += 1
        assert c.cmd(f"n{n} NOOP")[-1].startswith(f"n{n} OK".encode())
        time.sleep(0.3)
    t = time.monotonic()
    assert c.line(timeout=10).startswith(b"* BYE")
    assert 0.5 < time.monotonic() - t < 5


def test_cleartext_login_refused_from_non_loopback_via_proxy(
    mailhub_factory: Callable[..., MailhubServer],
) -> None:
    server = mailhub_factory(config={"trusted_proxies": ["127.0.0.0/8"]})
    hdr = encode_v1(("203.0.113.9", 40000), ("192.0.2.1", 143))
    c = RawImap(server.host, server.ports["imap"], prefix=hdr)
    caps = c.cmd("a CAPABILITY")[0].split()
    assert b"LOGINDISABLED" in caps and b"AUTH=PLAIN" not in caps
    out = c.cmd(f'b LOGIN "{server.user}" "{server.password}"')
    assert out[-1].startswith(b"b NO [PRIVACYREQUIRED]")
    token = base64.b64encode(f"\0{server.user}\0{server.password}".encode()).decode()
    assert c.cmd(f"c AUTHENTICATE PLAIN {token}")[-1].startswith(b"c NO [PRIVACYREQUIRED]")
    # after STARTTLS the same client may log in
    c.send(b"d STARTTLS\r\n")
    assert c.line().startswith(b"d OK")
    c.sock = server.ssl_context().wrap_socket(c.sock, server_hostname="localhost")
    assert c.cmd(f'e LOGIN "{server.user}" "{server.password}"')[-1].startswith(b"e OK")
    # PROXY v2 over the implicit-TLS port: the header precedes the handshake
    hdr2 = encode_v2(("198.51.100.7", 50000), ("192.0.2.1", 993))
    t = RawImap(server.host, server.ports["imaps"], prefix=hdr2, tls=server.ssl_context())
    assert t.cmd(f'f LOGIN "{server.user}" "{server.password}"')[-1].startswith(b"f OK")
    server.wait_for_log(r"imap 198\.51\.100\.7:50000: logged in")


def test_untrusted_peer_proxy_header_is_not_believed(server: MailhubServer) -> None:
    """Without trusted_proxies a PROXY line is just a bad command, not an address."""
    c = RawImap(server.host, server.ports["imap"])
    c.send(encode_v1(("203.0.113.9", 1), ("192.0.2.1", 143)))
    assert c.line().startswith(b"PROXY BAD") or c.line().startswith(b"* BAD")
    assert c.cmd(f'a LOGIN "{server.user}" "{server.password}"')[-1].startswith(b"a OK")


def test_connection_limit_per_ip(mailhub_factory: Callable[..., MailhubServer]) -> None:
    server = mailhub_factory(config={"limits": {"max_connections_per_ip": 2}})
    a = RawImap(server.host, server.ports["imap"])
    b = RawImap(server.host, server.ports["imap"])
    s = socket.create_connection((server.host, server.ports["imap"]), timeout=5)
    assert s.recv(200).startswith(b"* BYE [UNAVAILABLE]")
    s.close()
    a.close()
    b.close()
