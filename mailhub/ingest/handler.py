"""The aiosmtpd handler: envelope policy for LMTP and inbound SMTP.

aiosmtpd calls ``handle_<VERB>(server, session, envelope, ...)`` and sends the string it
returns. Policy lives here, protocol mechanics in ``smtp.py``/``lmtp.py``:

- RCPT is resolved at once through the shared :class:`DeliveryAgent` (unknown users, disabled
  accounts, full mailboxes are refused per recipient, before any data is sent);
- inbound SMTP accepts only the household's domains and never relays (550 5.7.1);
- replies carry RFC 3463 enhanced status codes (RFC 2034), which EHLO/LHLO advertise together
  with PIPELINING (RFC 2920; aiosmtpd reads commands one line at a time, so pipelined commands
  already work, it just does not say so).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from aiosmtpd.smtp import Envelope, Session

from mailhub import metrics
from mailhub.config import Settings
from mailhub.errors import MailError, MailErrorKind
from mailhub.ingest.delivery import (
    DeliveryAgent,
    ReceivedInfo,
    Recipient,
    RecipientResult,
    reply_for,
    split_address,
)

log = logging.getLogger("mailhub.ingest")

_SIZE_OPTION = "SIZE="


def new_queue_id() -> str:
    """A short id for one transaction: in the Received header, the reply and the log line."""
    return secrets.token_hex(6).upper()


class IngestEnvelope(Envelope):
    """aiosmtpd's envelope plus mailhub's transaction id, the SIZE the client declared, and
    each accepted recipient as RCPT resolved it (DATA delivers to exactly that, without a
    second directory lookup)."""

    def __init__(self) -> None:
        super().__init__()
        self.queue_id: str = ""
        self.declared_size: int | None = None
        self.resolved: dict[str, Recipient] = {}


class IngestHandler:
    """Hooks shared by the LMTP and SMTP listeners; ``relay_check`` is on for inbound SMTP."""

    def __init__(
        self,
        agent: DeliveryAgent,
        settings: Settings,
        *,
        relay_check: bool,
        max_recipients: int | None = None,
    ) -> None:
        self.agent = agent
        self.settings = settings
        self.relay_check = relay_check
        self.max_recipients = max_recipients or settings.smtp.max_recipients

    # -- greeting -----------------------------------------------------------------------------

    async def handle_EHLO(
        self,
        server: Any,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """RFC 5321 §4.1.1.1 (and LHLO, RFC 2033 §4.1): advertise PIPELINING/ENHANCEDSTATUSCODES.

        The new-style hook must record the client's name itself (aiosmtpd leaves it to us).
        """
        session.host_name = hostname
        kept = [r for r in responses[:-1] if not r[4:].upper().startswith("AUTH")]
        return [*kept, "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_NOOP(self, server: Any, session: Session, envelope: Envelope, arg: str) -> str:
        """RFC 5321 §4.1.1.9."""
        return "250 2.0.0 Ok"

    async def handle_RSET(self, server: Any, session: Session, envelope: Envelope) -> str:
        """RFC 5321 §4.1.1.5."""
        return "250 2.0.0 Ok"

    async def handle_QUIT(self, server: Any, session: Session, envelope: Envelope) -> str:
        """RFC 5321 §4.1.1.10."""
        return "221 2.0.0 Bye"

    async def handle_VRFY(
        self, server: Any, session: Session, envelope: Envelope, addr: str
    ) -> str:
        """RFC 5321 §3.5.3: we never confirm addresses (no directory harvesting)."""
        return "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery"

    async def handle_exception(self, error: Exception) -> str:
        """A bug in a hook: log it for the operator, tell the client only to retry."""
        log.error("ingest session error", exc_info=error)
        return "451 4.3.0 Internal error, please try again later"

    # -- transaction --------------------------------------------------------------------------

    async def handle_MAIL(
        self,
        server: Any,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        """RFC 5321 §4.1.1.2: start a transaction (the null sender "<>" is kept as "<>")."""
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        if isinstance(envelope, IngestEnvelope):
            envelope.queue_id = new_queue_id()
            for option in mail_options:
                if option.upper().startswith(_SIZE_OPTION):
                    value = option[len(_SIZE_OPTION) :]
                    envelope.declared_size = int(value) if value.isdigit() else None
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self,
        server: Any,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """RFC 5321 §4.1.1.3 (RFC 2033 §4.2 for LMTP): accept only deliverable recipients."""
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        if not address.isascii() and not envelope.smtp_utf8:
            return "553 5.6.7 Non-ASCII address requires SMTPUTF8"  # RFC 6531 §3.5
        try:
            rcpt = await self.agent.resolve(address)
            size = envelope.declared_size if isinstance(envelope, IngestEnvelope) else None
            await self.agent.check_quota(rcpt, size)
        except MailError as exc:
            unknown = exc.kind in (MailErrorKind.NOTFOUND, MailErrorKind.BADNAME)
            if self.relay_check and unknown and not self.is_local(address):
                log.info("relay attempt from %r refused: %s", session.peer, address)
                return f"550 5.7.1 <{address}> Relaying denied"
            return reply_for(exc, self.settings, address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        if isinstance(envelope, IngestEnvelope):
            envelope.resolved[address] = rcpt
        return f"250 2.1.5 <{rcpt.address}> Ok"

    def is_local(self, address: str) -> bool:
        """Whether the address belongs to a domain this server receives mail for."""
        try:
            _, domain = split_address(address)
        except MailError:
            return False
        domain = domain.rstrip(".")
        local = {d.lower().rstrip(".") for d in self.settings.smtp.local_domains}
        local.update(d.lower() for d in self.settings.delivery.catch_all)
        for rec in self.agent.directory.list():
            for addr in (rec.address, *rec.aliases):
                local.add(addr.rpartition("@")[2].lower())
        return domain in local

    async def deliver(
        self,
        session: Session,
        envelope: IngestEnvelope,
        content: bytes,
        protocol: str,
    ) -> list[RecipientResult]:
        """Hand the received message to the delivery agent, one copy per accepted RCPT."""
        peer = session.peer
        peer_ip = peer[0] if isinstance(peer, tuple) and peer else None
        received = ReceivedInfo(
            protocol=protocol,
            helo=session.host_name or None,
            peer_ip=peer_ip,
            queue_id=envelope.queue_id or None,
        )
        results = await self.agent.deliver(
            content,
            envelope.mail_from,
            list(envelope.rcpt_tos),
            received=received,
            resolved=envelope.resolved,
        )
        ok = sum(1 for r in results if r.ok)
        label = "lmtp" if protocol.upper().startswith("LMTP") else "smtp"  # ESMTPSA -> smtp
        metrics.delivery(label, True, ok)
        metrics.delivery(label, False, len(results) - ok)
        return results
