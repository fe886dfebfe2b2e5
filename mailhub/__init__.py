"""mailhub: IMAP and POP3 access to one Maildir++ mailstore, with LMTP/SMTP ingest."""

__version__ = "0.1.0"
