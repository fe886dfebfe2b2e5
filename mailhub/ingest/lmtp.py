"""LMTP (RFC 2033) on aiosmtpd, with one reply per accepted recipient after DATA.

aiosmtpd's own ``LMTP`` class only swaps EHLO for LHLO; its DATA still answers once
(aio-libs/aiosmtpd#517), which would make one full mailbox fail every recipient of a message.
Here DATA is mailhub's own (see :class:`mailhub.ingest.smtp.IngestProtocol`), and after the
final dot the server sends exactly one status line per RCPT it accepted, in RCPT order
(RFC 2033 §4.2), each with an RFC 3463 enhanced code and the recipient it concerns.
"""

from __future__ import annotations

from aiosmtpd.smtp import SMTP, syntax

from mailhub.ingest.delivery import RecipientResult, reply_for
from mailhub.ingest.handler import IngestEnvelope
from mailhub.ingest.smtp import IngestProtocol


class IngestLMTP(IngestProtocol):
    """The LMTP listener: LHLO instead of HELO/EHLO, per-recipient DATA replies."""

    protocol_name = "LMTP"

    @syntax("LHLO hostname")
    async def smtp_LHLO(self, arg: str) -> None:
        """RFC 2033 §4.1: LHLO is LMTP's EHLO (same extension list)."""
        await SMTP.smtp_EHLO(self, arg)

    async def smtp_HELO(self, hostname: str) -> None:
        """RFC 2033 §4.1: HELO is not an LMTP command."""
        await self.push('500 5.5.1 Error: command "HELO" not recognized, use LHLO')

    async def smtp_EHLO(self, hostname: str) -> None:
        """RFC 2033 §4.1: EHLO is not an LMTP command."""
        await self.push('500 5.5.1 Error: command "EHLO" not recognized, use LHLO')

    async def _reply_data_error(self, error: str, rcpts: list[str]) -> None:
        """A message refused as a whole (too big, line too long) still gets one reply per
        accepted recipient, or the client would wait for replies that never come."""
        await self.push("\r\n".join(error for _ in rcpts))

    async def _reply_data(self, results: list[RecipientResult], envelope: IngestEnvelope) -> None:
        """RFC 2033 §4.2: one reply per accepted RCPT, in order, sent in a single write."""
        settings = self.ingest.settings
        lines = []
        for result in results:
            if result.ok:
                # The UID lets an MTA log (and the tests) tie the ack to the stored copy.
                lines.append(
                    f"250 2.0.0 <{result.recipient}> {envelope.queue_id} Saved uid={result.uid}"
                )
            else:
                assert result.error is not None
                lines.append(reply_for(result.error, settings, result.recipient))
        await self.push("\r\n".join(lines))
