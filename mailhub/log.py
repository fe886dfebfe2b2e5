"""Logging for operators: one line per event, text by default or JSON, with connection context.

Frontends set :data:`conn_id` and :data:`user` (contextvars) when a connection starts and when a
login succeeds; every record logged inside that connection's task then carries them, without
passing a logger around. Logs go to stderr (systemd, containers and the test fixture all read
it). Never log passwords or message bodies: log the address, the client IP and the outcome.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import sys
import time
from typing import TextIO

from mailhub.config import LogSettings

conn_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("conn_id", default=None)
user: contextvars.ContextVar[str | None] = contextvars.ContextVar("user", default=None)
peer: contextvars.ContextVar[str | None] = contextvars.ContextVar("peer", default=None)

_counter = itertools.count(1)


def new_conn_id(proto: str) -> str:
    """A short id unique in this process (``imap-17``), set into :data:`conn_id` too."""
    cid = f"{proto}-{next(_counter)}"
    conn_id.set(cid)
    return cid


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.conn_id = conn_id.get()
        record.user = user.get()
        record.peer = peer.get()
        return True


class TextFormatter(logging.Formatter):
    """``2026-01-02T03:04:05Z INFO  mailhub.imap [imap-3 me@x 1.2.3.4] message``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z"
        ctx = [
            v
            for v in (
                getattr(record, "conn_id", None),
                getattr(record, "user", None),
                getattr(record, "peer", None),
            )
            if v
        ]
        tag = f" [{' '.join(ctx)}]" if ctx else ""
        line = f"{ts} {record.levelname:<7} {record.name}{tag} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("conn_id", "user", "peer"):
            value = getattr(record, key, None)
            if value:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Install the one handler on the root logger (idempotent: replaces an earlier one)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_mailhub", False):
            root.removeHandler(old)
    handler._mailhub = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.level)
    # aiosmtpd logs every connection at INFO under "mail.log"; keep it for debugging only.
    logging.getLogger("mail.log").setLevel(
        logging.DEBUG if settings.level == "DEBUG" else logging.WARNING
    )
