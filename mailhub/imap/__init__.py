"""mailhub's IMAP frontend (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1 with extensions).

Layers, bottom up:

* :mod:`mailhub.imap.proto` - the sans-I/O parser and response encoder;
* :mod:`mailhub.imap.session` - the per-connection state machine, the one dispatcher (state
  checks through ``proto.REGISTRY``), the one MailErrorKind -> response code table, and the
  handler contract every ``mailhub.imap.handlers`` module follows;
* :mod:`mailhub.imap.selected` - the selected mailbox's sequence numbers and the pending
  changes from the store's change bus, reported only where the RFCs allow;
* :mod:`mailhub.imap.handlers` - one module per command family;
* :mod:`mailhub.imap.server` - asyncio streams glue: listeners, TLS, PROXY protocol,
  COMPRESS, timeouts, output streaming.
"""
