"""TLS (STLS and implicit), cleartext refusal, limits and timeouts, and a live-server fuzz."""

from __future__ import annotations

import poplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pop3_helpers import PASSWORD, Pop3Env, make_message

from mailhub.config import LimitSettings


def test_implicit_tls(pop3env: Pop3Env) -> None:
    user = pop3env.add_user()
    pop3env.deliver(user, make_message("secure"))
    client = poplib.POP3_SSL(
        "127.0.0.1", pop3env.tls_port, context=pop3env.client_tls_context(), timeout=30
    )
    caps = client.capa()
    assert "STLS" not in caps and "USER" in caps
    client.user(user)
    client.pass_(PASSWORD)
    assert client.stat()[0] == 1
    client.quit()


def test_stls_upgrade(pop3env: Pop3Env) -> None:
    user = pop3env.add_user()
    client = pop3env.connect()
    assert "STLS" in client.capa()
    client.stls(pop3env.client_tls_context())
    assert "STLS" not in client.capa()
    client.user(user)
    client.pass_(PASSWORD)
    assert client.stat() == (0, 0)
    client.quit()


def test_stls_discards_pipelined_plaintext(pop3env: Pop3Env) -> None:
    """Commands sent with STLS in one packet must not run after the handshake."""
    pop3env.add_user()
    sock = socket.create_connection(("127.0.0.1", pop3env.port), timeout=30)
    sock.recv(1024)
    sock.sendall(b"STLS\r\nUSER bob@example.org\r\n")
    reply = sock.recv(1024)
    assert reply == b"+OK Begin TLS negotiation now\r\n"
    tls = pop3env.client_tls_context().wrap_socket(sock, server_hostname="localhost")
    tls.sendall(f"PASS {PASSWORD}\r\n".encode())
    assert tls.recv(1024).startswith(b"-ERR")  # the injected USER was dropped
    tls.close()


@pytest.fixture(params=[False])
def remote_env(tmp_path: Path, ca: trustme.CA, request: pytest.FixtureRequest) -> Iterator[Pop3Env]:
    """A server that treats nobody as local: cleartext auth is refused unless the setting
    ``allow_cleartext_auth`` (the fixture's parameter) says otherwise."""
    env = Pop3Env(
        tmp_path / "d",
        ca,
        LimitSettings(failed_login_delay=0),
        {},
        allow_cleartext_auth=request.param,
    )
    env.data_dir.mkdir()
    env.start()
    import mailhub.pop3.server as srv

    original = srv._is_loopback
    srv._is_loopback = lambda ip: False  # as if the client came from another host
    try:
        yield env
    finally:
        srv._is_loopback = original
        env.shutdown()


def test_cleartext_auth_refused_for_remote_peer(remote_env: Pop3Env) -> None:
    user = remote_env.add_user()
    client = remote_env.connect()
    caps = client.capa()
    assert "USER" not in caps and "SASL" not in caps and "STLS" in caps
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\].*STLS"):
        client.user(user)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client._shortcmd("AUTH PLAIN AGJvYgBwdw==")
    client.stls(remote_env.client_tls_context())
    assert "USER" in client.capa()
    client.user(user)
    assert client.pass_(PASSWORD).startswith(b"+OK")
    client.quit()


def test_line_too_long_then_session_continues(pop3env: Pop3Env) -> None:
    sock = socket.create_connection(("127.0.0.1", pop3env.port), timeout=30)
    sock.recv(1024)
    sock.sendall(b"NOOP " + b"x" * 70000 + b"\r\nCAPA\r\n")
    out = b""
    while not out.endswith(b"\r\n.\r\n"):
        out += sock.recv(65536)
    assert out.startswith(b"-ERR Line too long\r\n+OK")
    sock.close()


@pytest.mark.parametrize("pop3_limits", [LimitSettings(max_protocol_errors=3)])
def test_too_many_bad_commands_closes(pop3env: Pop3Env) -> None:
    sock = socket.create_connection(("127.0.0.1", pop3env.port), timeout=30)
    sock.recv(1024)
    sock.sendall(b"FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n")
    out = b""
    while chunk := sock.recv(4096):
        out += chunk
    lines = out.split(b"\r\n")
    assert lines[2].startswith(b"-ERR Too many invalid commands")
    assert len([x for x in lines if x]) == 3  # closed before NOOP


@pytest.mark.parametrize(
    "pop3_limits", [LimitSettings(prelogin_timeout=0.5, pop3_idle_timeout=0.8)]
)
def test_prelogin_and_idle_timeouts(pop3env: Pop3Env) -> None:
    pop3env.add_user()
    sock = socket.create_connection(("127.0.0.1", pop3env.port), timeout=30)
    sock.recv(1024)
    started = time.monotonic()
    assert sock.recv(1024).startswith(b"-ERR Disconnected for inactivity")
    assert 0.4 < time.monotonic() - started < 5
    client = pop3env.login()
    time.sleep(0.4)  # less than the idle timeout, more than the pre-login one
    assert client.noop().startswith(b"+OK")
    time.sleep(1.2)
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        client.noop()


@pytest.mark.parametrize("pop3_limits", [LimitSettings(max_connections_per_ip=2)])
def test_connections_per_ip(pop3env: Pop3Env) -> None:
    a, b = pop3env.connect(), pop3env.connect()
    sock = socket.create_connection(("127.0.0.1", pop3env.port), timeout=30)
    assert sock.recv(1024).startswith(b"-ERR [SYS/TEMP]")
    sock.close()
    a.quit()
    time.sleep(0.1)
    c = pop3env.connect()
    c.quit()
    b.quit()


@pytest.mark.parametrize("pop3_settings_extra", [{"login_delay": 60}])
def test_login_delay(pop3env: Pop3Env, pop3_settings_extra: dict[str, Any]) -> None:
    user = pop3env.add_user()
    client = pop3env.connect()
    assert client.capa()["LOGIN-DELAY"] == ["60"]
    client.user(user)
    client.pass_(PASSWORD)
    client.quit()
    client = pop3env.connect()
    client.user(user)
    with pytest.raises(poplib.error_proto, match=r"\[LOGIN-DELAY\]"):
        client.pass_(PASSWORD)


_LINES = st.one_of(
    st.binary(max_size=80).map(lambda b: b.replace(b"\n", b"")),
    st.sampled_from(
        [
            b"RETR",
            b"TOP",
            b"LIST",
            b"UIDL",
            b"DELE",
            b"AUTH",
            b"PASS",
            b"USER",
            b"STAT",
            b"RSET",
            b"NOOP",
            b"CAPA",
            b"UTF8",
            b"STLS",
        ]
    ).flatmap(
        lambda verb: st.lists(
            st.one_of(st.integers(-2, 5).map(lambda i: str(i).encode()), st.binary(max_size=8)),
            max_size=3,
        ).map(lambda args: b" ".join([verb, *args]))
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_LINES, min_size=1, max_size=15))
def test_fuzz_live_server(pop3env: Pop3Env, lines: list[bytes]) -> None:
    """Random lines after login: every reply is a status line, and the server stays alive."""
    if pop3env.directory.lookup("bob@example.org") is None:
        pop3env.add_user()
        pop3env.deliver("bob@example.org", make_message("fuzz", body=".a\n..b\n"))
    sock = socket.create_connection(("127.0.0.1", pop3env.port), timeout=30)
    sock.recv(1024)
    sock.sendall(f"USER bob@example.org\r\nPASS {PASSWORD}\r\n".encode())
    sock.sendall(b"".join(line + b"\r\n" for line in lines))
    sock.shutdown(socket.SHUT_WR)
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    sock.close()
    assert out.startswith(b"+OK")
    assert b"Traceback" not in out
    # The server still serves a fresh client.
    client = pop3env.connect()
    assert client.capa()
    client.quit()


@pytest.mark.parametrize("remote_env", [True], indirect=True)
def test_cleartext_auth_allowed_by_setting(remote_env: Pop3Env) -> None:
    user = remote_env.add_user()
    client = remote_env.connect()
    assert "USER" in client.capa()
    client.user(user)
    assert client.pass_(PASSWORD).startswith(b"+OK")
    client.quit()
