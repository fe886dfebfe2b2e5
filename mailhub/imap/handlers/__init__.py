"""IMAP command handlers, one module per family. Each exposes ``async def handle_x(session,
cmd) -> Tagged``; see :mod:`mailhub.imap.session` for the contract."""
