"""Mail ingest: LMTP (RFC 2033) and inbound SMTP (RFC 5321) on aiosmtpd, and the delivery path.

``delivery`` is the one path into the store shared by LMTP, SMTP and ``mailhub deliver``;
``lmtp``/``smtp`` are the aiosmtpd protocol subclasses; ``handler`` holds the aiosmtpd hooks;
``server.start`` binds the listeners in the server's own event loop.
"""
