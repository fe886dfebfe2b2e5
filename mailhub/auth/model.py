"""The account record, as kept in the data directory's accounts file."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field


class Pop3DeleteAction(enum.Enum):
    """What DELE followed by a clean QUIT does (Gmail's POP settings are the model)."""

    DELETE = "delete"  # expunge from INBOX (RFC 1939's default)
    KEEP = "keep"  # leave in INBOX, marked \\Seen
    ARCHIVE = "archive"  # move to the account's Archive folder
    TRASH = "trash"  # move to the account's Trash folder


class Pop3Scope(enum.Enum):
    """Which INBOX messages a POP3 session offers."""

    ALL = "all"  # every message in INBOX (clients skip what they have by UIDL)
    SINCE_ENABLED = "since_enabled"  # only mail that arrived after POP3 was enabled
    NOT_RETRIEVED = "not_retrieved"  # only mail not yet downloaded (Gmail's behaviour)


class Pop3Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    on_delete: Pop3DeleteAction = Pop3DeleteAction.DELETE
    mark_seen_on_retr: bool = True
    scope: Pop3Scope = Pop3Scope.ALL
    # First INBOX UID offered under SINCE_ENABLED (UID_NEXT when POP3 was enabled).
    enabled_from_uid: int = 1


class AccountRecord(BaseModel):
    """One account. ``address`` is stored with its domain lower-cased."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    password_hash: str
    aliases: list[str] = Field(default_factory=list)
    quota_bytes: int | None = None
    quota_messages: int | None = None
    enabled: bool = True
    pop3: Pop3Policy = Field(default_factory=Pop3Policy)
