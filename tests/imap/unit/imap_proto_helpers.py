"""Helpers shared by the imap.proto unit tests: feed bytes, collect events."""

from __future__ import annotations

from mailhub.imap.proto import (
    NEED_DATA,
    PAUSED,
    CommandParser,
    Event,
    Limits,
    NeedContinuation,
    ParseError,
)
from mailhub.imap.proto.commands import Command


def events(data: bytes, *, limits: Limits | None = None, utf8: bool = False) -> list[Event]:
    """All events from ``data`` fed in one piece (continuations included, PAUSED resumed)."""
    p = CommandParser(limits)
    p.utf8_names = utf8
    p.feed(data)
    out: list[Event] = []
    while True:
        ev = p.next_event()
        if ev is NEED_DATA:
            return out
        if ev is PAUSED:
            p.resume()
            continue
        out.append(ev)


def parse(line: bytes, *, utf8: bool = False, limits: Limits | None = None) -> Command:
    """The single command in ``line`` (continuation requests skipped); fails otherwise."""
    evs = [e for e in events(line, utf8=utf8, limits=limits) if not isinstance(e, NeedContinuation)]
    assert len(evs) == 1, evs
    assert isinstance(evs[0], Command), evs[0]
    return evs[0]


def error(line: bytes, *, utf8: bool = False, limits: Limits | None = None) -> ParseError:
    """The single ParseError produced by ``line``."""
    evs = [e for e in events(line, utf8=utf8, limits=limits) if not isinstance(e, NeedContinuation)]
    assert len(evs) == 1, evs
    assert isinstance(evs[0], ParseError), evs[0]
    return evs[0]
