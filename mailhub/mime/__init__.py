"""MIME structure, sections and text: protocol-neutral message parsing for IMAP and SEARCH."""
