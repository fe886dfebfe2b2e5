"""Every RFC 1939 / 2449 / 5034 / 6856 command against a running server, with stdlib poplib."""

from __future__ import annotations

import base64
import poplib
import socket
import time

import pytest
from pop3_helpers import PASSWORD, Pop3Env, make_message

from mailhub.store.flags import SEEN


def raw(env: Pop3Env) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", env.port), timeout=30)
    assert sock.recv(1024).startswith(b"+OK")
    return sock


def exchange(sock: socket.socket, data: bytes, until: bytes = b"\r\n") -> bytes:
    sock.sendall(data)
    out = b""
    while not out.endswith(until):
        chunk = sock.recv(65536)
        if not chunk:
            break
        out += chunk
    return out


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture
def bob(pop3env: Pop3Env) -> str:
    return pop3env.add_user("bob@example.org")


def test_greeting_and_capa_before_login(pop3env: Pop3Env) -> None:
    client = pop3env.connect()
    assert client.getwelcome().startswith(b"+OK")
    caps = client.capa()
    for name in (
        "TOP",
        "UIDL",
        "USER",
        "SASL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "EXPIRE",
        "IMPLEMENTATION",
        "STLS",
        "UTF8",
    ):
        assert name in caps, name
    assert "PLAIN" in caps["SASL"]
    assert caps["EXPIRE"] == ["NEVER"]
    assert "LOGIN-DELAY" not in caps
    client.quit()


def test_capa_after_login_drops_auth_and_stls(pop3env: Pop3Env, bob: str) -> None:
    client = pop3env.login()
    caps = client.capa()
    assert "USER" not in caps and "STLS" not in caps and "SASL" not in caps
    assert caps["EXPIRE"] == ["NEVER"]
    assert "TOP" in caps and "UIDL" in caps
    client.quit()


def test_user_pass_and_stat_list_uidl_retr(pop3env: Pop3Env, bob: str) -> None:
    bodies = [
        make_message(f"m{i}", body="line one\n.dotted line\n..two dots\nend\n") for i in range(3)
    ]
    uids = [pop3env.deliver(bob, b) for b in bodies]
    box = pop3env.mailbox(bob)
    client = pop3env.login()
    count, size = client.stat()
    assert count == 3
    assert size == sum(len(crlf(b)) for b in bodies)
    resp, listing, _ = client.list()
    assert resp.startswith(b"+OK")
    assert listing == [b"%d %d" % (i + 1, len(crlf(b))) for i, b in enumerate(bodies)]
    assert client.list(2).split() == [b"+OK", b"2", str(len(crlf(bodies[1]))).encode()]
    resp, uidls, _ = client.uidl()
    expected = [f"{n} {uid:08x}{box.uidvalidity:08x}".encode() for n, uid in enumerate(uids, 1)]
    assert uidls == expected
    assert client.uidl(3).split()[1:] == expected[2].split()
    resp, lines, _octets = client.retr(1)
    assert resp.startswith(b"+OK")
    # poplib strips the stuffing; the client sees the exact CRLF message.
    assert b"\r\n".join(lines) + b"\r\n" == crlf(bodies[0])
    client.quit()


def test_retr_wire_form_is_dot_stuffed(pop3env: Pop3Env, bob: str) -> None:
    pop3env.deliver(bob, b"Subject: dots\n\n.\n.x\nplain\n")
    sock = raw(pop3env)
    exchange(sock, f"USER {bob}\r\n".encode())
    exchange(sock, f"PASS {PASSWORD}\r\n".encode())
    out = exchange(sock, b"RETR 1\r\n", until=b"\r\n.\r\n")
    size = len(b"Subject: dots\r\n\r\n.\r\n.x\r\nplain\r\n")
    assert out == b"+OK %d octets\r\nSubject: dots\r\n\r\n..\r\n..x\r\nplain\r\n.\r\n" % size
    sock.close()


def test_top(pop3env: Pop3Env, bob: str) -> None:
    pop3env.deliver(bob, b"Subject: t\nX-A: b\n\nl1\nl2\nl3\n")
    client = pop3env.login()
    _, lines, _ = client.top(1, 0)
    assert lines == [b"Subject: t", b"X-A: b", b""]
    _, lines, _ = client.top(1, 2)
    assert lines == [b"Subject: t", b"X-A: b", b"", b"l1", b"l2"]
    _, lines, _ = client.top(1, 99)
    assert lines[-1] == b"l3"
    client.quit()
    # TOP does not count as downloading: no \Seen.
    infos = pop3env.call(pop3env.mailbox(bob).snapshot()).messages
    assert SEEN not in infos[0].flags


def test_dele_rset_noop_quit(pop3env: Pop3Env, bob: str) -> None:
    for i in range(3):
        pop3env.deliver(bob, make_message(f"m{i}"))
    client = pop3env.login()
    assert client.dele(2).startswith(b"+OK")
    assert client.stat()[0] == 2
    _, listing, _ = client.list()
    assert [x.split()[0] for x in listing] == [b"1", b"3"]
    with pytest.raises(poplib.error_proto, match="already deleted"):
        client.dele(2)
    with pytest.raises(poplib.error_proto, match="already deleted"):
        client.retr(2)
    with pytest.raises(poplib.error_proto):
        client.list(2)
    assert client.rset().startswith(b"+OK")
    assert client.stat()[0] == 3
    assert client.noop().startswith(b"+OK")
    client.dele(1)
    assert client.quit().startswith(b"+OK")
    snap = pop3env.call(pop3env.mailbox(bob).snapshot())
    assert len(snap.messages) == 2


def test_bad_message_numbers(pop3env: Pop3Env, bob: str) -> None:
    pop3env.deliver(bob, make_message("only"))
    client = pop3env.login()
    for call in (
        lambda: client.retr(2),
        lambda: client.dele(5),
        lambda: client.list(9),
        lambda: client.uidl(2),
        lambda: client.top(3, 1),
    ):
        with pytest.raises(poplib.error_proto, match="No such message"):
            call()
    for line in (b"RETR 0", b"RETR x", b"DELE", b"TOP 1", b"LIST 1 2", b"FROB"):
        with pytest.raises(poplib.error_proto, match="-ERR"):
            client._shortcmd(line.decode())
    assert client.stat()[0] == 1
    client.quit()


def test_commands_in_wrong_state(pop3env: Pop3Env, bob: str) -> None:
    client = pop3env.connect()
    for cmd in ("STAT", "LIST", "UIDL", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1"):
        with pytest.raises(poplib.error_proto, match="not valid in this state"):
            client._shortcmd(cmd)
    with pytest.raises(poplib.error_proto, match="USER first"):
        client.pass_("x")
    client.user(bob)
    client.pass_(PASSWORD)
    for cmd in (f"USER {bob}", "PASS x", "AUTH PLAIN", "STLS"):
        with pytest.raises(poplib.error_proto, match="not valid in this state"):
            client._shortcmd(cmd)
    client.quit()


def test_wrong_password_gets_auth_code_and_delay(pop3env: Pop3Env, bob: str) -> None:
    client = pop3env.connect()
    client.user(bob)
    started = time.monotonic()
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
        client.pass_("wrong")
    assert time.monotonic() - started >= 0.05
    client.user("nobody@example.org")
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
        client.pass_(PASSWORD)
    client.user(bob)
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
        client.pass_("wrong again")
    # Third failure: the server hangs up.
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        client.noop()


def test_disabled_account_and_disabled_pop3(pop3env: Pop3Env) -> None:
    pop3env.add_user("off@example.org", enabled=False)
    client = pop3env.connect()
    client.user("off@example.org")
    with pytest.raises(poplib.error_proto, match=r"\[SYS/PERM\]"):
        client.pass_(PASSWORD)
    client.quit()
    pop3env.directory.update("off@example.org", enabled=False)
    client = pop3env.connect()
    client.user("off@example.org")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.pass_(PASSWORD)


def test_auth_plain_initial_response(pop3env: Pop3Env, bob: str) -> None:
    pop3env.deliver(bob, make_message("x"))
    token = base64.b64encode(f"\0{bob}\0{PASSWORD}".encode()).decode()
    client = pop3env.connect()
    assert client._shortcmd(f"AUTH PLAIN {token}").startswith(b"+OK")
    assert client.stat()[0] == 1
    client.quit()


def test_auth_plain_with_continuation_and_cancel(pop3env: Pop3Env, bob: str) -> None:
    sock = raw(pop3env)
    assert exchange(sock, b"AUTH PLAIN\r\n") == b"+ \r\n"
    assert exchange(sock, b"*\r\n").startswith(b"-ERR")
    assert exchange(sock, b"AUTH PLAIN\r\n") == b"+ \r\n"
    token = base64.b64encode(f"{bob}\0{bob}\0{PASSWORD}".encode())
    assert exchange(sock, token + b"\r\n").startswith(b"+OK")
    assert exchange(sock, b"STAT\r\n") == b"+OK 0 0\r\n"
    sock.close()


def test_auth_bad_input(pop3env: Pop3Env, bob: str) -> None:
    sock = raw(pop3env)
    assert exchange(sock, b"AUTH CRAM-MD5\r\n").startswith(b"-ERR")
    assert exchange(sock, b"AUTH PLAIN !!notbase64\r\n").startswith(b"-ERR [AUTH]")
    other = base64.b64encode(f"alice@example.org\0{bob}\0{PASSWORD}".encode())
    assert exchange(sock, b"AUTH PLAIN " + other + b"\r\n").startswith(b"-ERR [AUTH]")
    listing = exchange(sock, b"AUTH\r\n", until=b"\r\n.\r\n")
    assert listing.startswith(b"+OK") and b"PLAIN\r\n" in listing
    sock.close()


def test_auth_login_mechanism(pop3env: Pop3Env, bob: str) -> None:
    sock = raw(pop3env)
    assert exchange(sock, b"AUTH LOGIN\r\n").startswith(b"+ ")
    assert exchange(sock, base64.b64encode(bob.encode()) + b"\r\n").startswith(b"+ ")
    assert exchange(sock, base64.b64encode(PASSWORD.encode()) + b"\r\n").startswith(b"+OK")
    sock.close()


def test_utf8_command_and_utf8_password(pop3env: Pop3Env) -> None:
    pop3env.directory.add("zoe@example.org", "pässwörd")
    sock = raw(pop3env)
    assert exchange(sock, b"UTF8\r\n").startswith(b"+OK")
    assert exchange(sock, b"USER zoe@example.org\r\n").startswith(b"+OK")
    assert exchange(sock, "PASS pässwörd\r\n".encode()).startswith(b"+OK")
    sock.close()


def test_quit_in_authorization_state(pop3env: Pop3Env) -> None:
    client = pop3env.connect()
    assert client.quit().startswith(b"+OK")


def test_pipelining(pop3env: Pop3Env, bob: str) -> None:
    for i in range(3):
        pop3env.deliver(bob, make_message(f"p{i}"))
    sock = raw(pop3env)
    batch = (
        f"USER {bob}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST\r\nRETR 1\r\nDELE 1\r\n"
        "RSET\r\nUIDL 2\r\nQUIT\r\n"
    ).encode()
    sock.sendall(batch)
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        out += chunk
    statuses = [line for line in out.split(b"\r\n") if line.startswith((b"+OK", b"-ERR"))]
    assert len(statuses) == 9
    assert all(s.startswith(b"+OK") for s in statuses)
    assert statuses[2] == b"+OK 3 %d" % pop3env.with_mailbox(bob, lambda b: _total(b))
    assert out.endswith(b"\r\n")


async def _total(box: object) -> int:
    snap = await box.snapshot()  # type: ignore[attr-defined]
    return sum(m.size for m in snap.messages)


def test_large_message_streams(pop3env: Pop3Env, bob: str) -> None:
    line = b"." + b"x" * 98 + b"\n"
    body = b"Subject: big\n\n" + line * 40000  # ~4 MB, many stuffed lines
    pop3env.deliver(bob, body)
    client = pop3env.login()
    _resp, lines, _octets = client.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == crlf(body)
    _, lines, _ = client.top(1, 3)
    assert lines == [b"Subject: big", b"", line[:-1], line[:-1], line[:-1]]
    client.quit()
