"""IMAP wire rendering of message structure: ENVELOPE, BODY and BODYSTRUCTURE (RFC 9051 §7.5.2).

This package imports only :mod:`mailhub.mime`; it is sans-I/O and may be used from
``imap.proto`` or handlers alike.
"""

from mailhub.imap.render.bodystructure import body, bodystructure
from mailhub.imap.render.envelope import envelope

__all__ = ["body", "bodystructure", "envelope"]
