"""Any-state and not-authenticated commands: CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN,
AUTHENTICATE, plus ENABLE, COMPRESS and NAMESPACE (RFC 9051 §6.1-6.2, RFC 2971, RFC 5161,
RFC 4978, RFC 2342, RFC 4959 SASL-IR)."""

from __future__ import annotations

import asyncio
import base64

from mailhub.auth import sasl
from mailhub.imap.proto import AuthResponse, Code, ResponseCode, State
from mailhub.imap.proto import commands as c
from mailhub.imap.proto.responses import (
    EnabledResponse,
    IdResponse,
    NamespaceResponse,
    Tagged,
    Untagged,
)
from mailhub.imap.session import CommandError, Session
from mailhub.store.model import QuotaLimits

# ENABLE-able extensions (RFC 5161 §3.1) and the spelling ``* ENABLED`` echoes.
ENABLEABLE = {
    "CONDSTORE": "CONDSTORE",
    "QRESYNC": "QRESYNC",
    "IMAP4REV2": "IMAP4rev2",
    "UTF8=ACCEPT": "UTF8=ACCEPT",
}


async def handle_capability(session: Session, cmd: c.Capability) -> Tagged:
    """RFC 9051 §6.1.1."""
    await session.send(session.capability_response())
    return session.ok(cmd, "CAPABILITY completed")


async def handle_noop(session: Session, cmd: c.Noop) -> Tagged:
    """RFC 9051 §6.1.2: the dispatcher reports pending mailbox changes afterwards."""
    return session.ok(cmd, "NOOP completed")


async def handle_logout(session: Session, cmd: c.Logout) -> Tagged:
    """RFC 9051 §6.1.3: ``* BYE`` then the tagged OK, then the connection closes."""
    await session.send(Untagged("BYE", "Logging out"))
    session.closing = True
    session.state = State.LOGOUT
    return session.ok(cmd, "LOGOUT completed")


async def handle_id(session: Session, cmd: c.Id) -> Tagged:
    """RFC 2971: log what the client says it is (useful for client-specific bug reports)."""
    if cmd.params:
        info = {k.lower(): v for k, v in cmd.params}
        session.client_id = " ".join(
            str(info[k]) for k in ("name", "version", "os") if info.get(k)
        )[:200]
        session.log.info("client ID: %s", session.client_id)
    await session.send(IdResponse((("name", "mailhub"), ("version", session.implementation[8:]))))
    return session.ok(cmd, "ID completed")


async def handle_starttls(session: Session, cmd: c.StartTls) -> Tagged:
    """RFC 9051 §6.2.1: OK, then the handshake; input pipelined before it is discarded."""
    conn = session.conn
    if conn.secure:
        conn.parser.resume()
        return session.bad(cmd, "TLS is already active")
    if session.ctx.tls.server_context() is None:
        conn.parser.resume()
        return session.no(cmd, "TLS is not available")
    conn.pause_reading()
    session.after_reply = conn.start_tls
    return session.ok(cmd, "Begin TLS negotiation now")


async def _login(session: Session, tag: str, username: str, password: str) -> Tagged:
    """Check the password, open the account's store, enter the authenticated state."""
    rec = await session.ctx.directory.authenticate(username, password)
    if rec is None:
        session.failed_logins += 1
        session.log.warning("login failed for %r from %s", username[:100], session.conn.peer_ip)
        await asyncio.sleep(session.settings.limits.failed_login_delay)
        return Tagged(
            tag, "NO", "Authentication failed", ResponseCode.of(Code.AUTHENTICATIONFAILED)
        )
    session.account = await session.ctx.store.open_account(
        rec.address, QuotaLimits(rec.quota_bytes, rec.quota_messages)
    )
    session.address = rec.address
    session.state = State.AUTHENTICATED
    session.log.info("logged in as %s", rec.address)
    return Tagged(tag, "OK", "Logged in", ResponseCode.capability(session.capabilities()))


def _privacy_required(session: Session, tag: str) -> Tagged:
    return Tagged(
        tag,
        "NO",
        "Cleartext authentication is disabled; use STARTTLS or the TLS port",
        ResponseCode.of(Code.PRIVACYREQUIRED),
    )


async def handle_login(session: Session, cmd: c.Login) -> Tagged:
    """RFC 9051 §6.2.3; refused on cleartext non-loopback connections (LOGINDISABLED)."""
    if not session.cleartext_auth_allowed():
        return _privacy_required(session, cmd.tag)
    return await _login(session, cmd.tag, cmd.username, cmd.password)


async def handle_authenticate(session: Session, cmd: c.Authenticate) -> Tagged:
    """RFC 9051 §6.2.2 with SASL-IR (RFC 4959): PLAIN and LOGIN through ``mailhub.auth.sasl``."""
    parser = session.conn.parser
    try:
        if not session.cleartext_auth_allowed():
            return _privacy_required(session, cmd.tag)
        try:
            mech = sasl.new_mechanism(cmd.mechanism)
        except sasl.SaslError:
            return session.no(cmd, "Unsupported authentication mechanism", Code.CANNOT)
        initial = None
        if cmd.initial_response is not None:
            initial = base64.b64encode(cmd.initial_response) if cmd.initial_response else b"="
        try:
            step = mech.start(initial)
            while isinstance(step, sasl.Challenge):
                await session.conn.write([b"+ " + step.data + b"\r\n"])
                await session.conn.flush()
                parser.expect_auth_response()
                ev = await session.conn.next_event(session.settings.limits.prelogin_timeout)
                if ev is None:
                    raise ConnectionError("connection closed during AUTHENTICATE")
                if not isinstance(ev, AuthResponse):
                    return session.bad(cmd, "Expected an AUTHENTICATE response")
                step = mech.respond(ev.line)
        except sasl.SaslError as exc:
            if exc.kind is sasl.SaslErrorKind.CANCELLED:
                return session.bad(cmd, "Authentication cancelled")
            session.failed_logins += 1
            return session.bad(cmd, str(exc))
        return await _login(session, cmd.tag, step.username, step.password)
    finally:
        parser.resume()


async def handle_enable(session: Session, cmd: c.Enable) -> Tagged:
    """RFC 5161; QRESYNC implies CONDSTORE (RFC 7162 §3.2.3); UTF8=ACCEPT and IMAP4rev2 switch
    mailbox names to UTF-8 from the next command on (RFC 6855 §3, RFC 9051 §6.3.1)."""
    newly: list[str] = []
    for cap in cmd.capabilities:
        key = cap.upper()
        if key in ENABLEABLE and key not in session.enabled:
            session.enabled.add(key)
            newly.append(ENABLEABLE[key])
    if "QRESYNC" in session.enabled:
        session.enabled.add("CONDSTORE")
    if session.utf8:
        session.conn.parser.utf8_names = True
    await session.send(EnabledResponse(tuple(newly)))
    return session.ok(cmd, "ENABLE completed")


async def handle_compress(session: Session, cmd: c.Compress) -> Tagged:
    """RFC 4978: DEFLATE from the byte after the tagged OK, in both directions."""
    conn = session.conn
    if conn.compressed:
        conn.parser.resume()
        return session.no(cmd, "Compression already active", Code.COMPRESSIONACTIVE)
    if cmd.mechanism != "DEFLATE":
        conn.parser.resume()
        raise CommandError("BAD", "Unknown compression mechanism")
    session.after_reply = conn.start_compress
    return session.ok(cmd, "DEFLATE active")


async def handle_namespace(session: Session, cmd: c.Namespace) -> Tagged:
    """RFC 2342 / RFC 9051 §6.3.10: one personal namespace, separator ``/``."""
    await session.send(NamespaceResponse())
    return session.ok(cmd, "NAMESPACE completed")
