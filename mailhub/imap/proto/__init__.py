"""mailhub's sans-I/O IMAP protocol core: bytes in, typed commands out; typed responses in,
bytes out. No sockets, no event loop, no store (h11 / aioquic shape, pymap-style typing).

Driving the parser (what ``mailhub/imap/server.py`` does)::

    parser = CommandParser(Limits(max_line_length=..., max_literal_size=appendlimit))
    parser.feed(await reader.read(65536))
    while True:
        ev = parser.next_event()
        if ev is NEED_DATA:
            break                                   # read more bytes, feed, loop again
        if ev is PAUSED:
            ...                                     # see "Modes" below
        elif isinstance(ev, NeedContinuation):
            write(b"+ Ready for literal data\\r\\n")  # synchronising literal: ask for it
        elif isinstance(ev, ParseError):
            write(to_bytes(error_response(ev)))     # BAD / NO [CANNOT|TOOBIG|BADCHARSET...]
        elif isinstance(ev, Command):
            spec = spec_for(ev)                     # REGISTRY row: states, seq flags, capability
            ...                                     # execute, write responses

Execute each command before asking for the next event: commands are parsed lazily, so
ENABLE UTF8=ACCEPT (set ``parser.utf8_names = True``) applies to the next pipelined
command, and mode switches below happen at the right byte.

Modes. After ``Idle``, ``Authenticate``, ``StartTls`` and ``Compress`` the parser returns
``PAUSED`` until the driver decides:

* IDLE: send ``+ idling``, call ``parser.start_idle()``; the next event is ``IdleDone(tag)``
  (or a ``ParseError`` for any other line; both end IDLE). Bytes after ``DONE`` (iOS
  pipelines its next command) stay buffered and parse normally. To refuse IDLE, ``resume()``.
* AUTHENTICATE: send ``+ <base64 challenge>`` (``Continuation(data=...)``), call
  ``parser.expect_auth_response()``; the next event is ``AuthResponse(tag, line)``
  (``.cancelled`` for ``*``, ``.decode()`` for the bytes). Repeat per challenge, then
  ``resume()``.
* STARTTLS: after the OK, ``parser.take_buffered()`` and *discard* the result (bytes sent
  before the handshake must not run), then wrap the socket.
* COMPRESS: after the OK, ``data = parser.take_buffered()`` is already deflated: inflate it
  and ``feed`` it back, like all later input.

Limits (:class:`Limits`) are enforced before anything is buffered: an over-long line gives
``ParseError(tag, "BAD", "TOOBIG", ...)`` and is skipped; an APPEND literal over the
APPENDLIMIT gives ``NO [TOOBIG]`` (do not send ``+``: the client will not send the data; a
non-synchronising one is read and discarded); any other over-large literal gives
``BAD [TOOBIG]``. ``Limits.max_nonsync_literal = 4096`` gives LITERAL- semantics. Mailbox
names that could escape the Maildir are refused as ``ParseError(tag, "NO", "CANNOT", ...)``.
The connection survives all of these, except that a rejected non-synchronising literal
larger than ``Limits.max_discard`` sets ``ParseError.fatal``: answer, send BYE and close
instead of reading gigabytes. Count BAD errors in the session to send BYE after too many.

Responses: build :mod:`.responses` objects (``Tagged``, ``Untagged``, ``FetchResponse``,
``ESearchResponse``, ``ListResponse``, ``VanishedResponse``, ...) with
:class:`~.codes.ResponseCode` codes and encode them with ``encode(resp, utf8=...)``: a list
of ``bytes`` and :class:`~.values.BodyRef` pieces. For a ``BodyRef`` write nothing yourself
but stream exactly ``ref.size`` bytes from ``ref.chunks()`` (an async iterator factory), so
a 50 MB body never sits in memory. ``to_bytes`` is the shortcut when no body is involved,
``encode_many`` coalesces a batch of untagged responses into few writes. Values already
rendered to wire bytes (``mailhub.imap.render``'s ENVELOPE / BODYSTRUCTURE) go in as
``Raw(data)``; mailbox names as ``MailboxName(name)`` so they follow the session's
mUTF-7 / UTF-8 mode; flags and sequence sets as ``Atom``.

Modules: :mod:`.tokens` (lexer), :mod:`.sequence` (sequence sets, ``$``), :mod:`.utf7`
(modified UTF-7), :mod:`.names` (mailbox/flag/date grammar and the name safety check),
:mod:`.commands` (command types + REGISTRY), :mod:`.search` / :mod:`.fetch` (SEARCH keys,
FETCH attributes), :mod:`.grammar*` (command grammar), :mod:`.parser` (framing),
:mod:`.events`, :mod:`.values` / :mod:`.responses` / :mod:`.codes` (encoder),
:mod:`.cmdencode` (commands back to bytes, for tests and test clients).
"""

from __future__ import annotations

from . import commands, fetch, search
from .codes import Code, ResponseCode
from .commands import REGISTRY, Command, CommandSpec, State, spec_for
from .events import NEED_DATA, PAUSED, AuthResponse, IdleDone, NeedContinuation, ParseError
from .fetch import FetchAtt, Section
from .names import format_date_time, normalize_inbox, validate_mailbox
from .parser import CommandParser, Event, Limits
from .responses import encode, encode_many, error_response, to_bytes
from .sequence import SequenceSet, format_numbers
from .values import Atom, BodyRef, Literal, MailboxName, Raw

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "REGISTRY",
    "Atom",
    "AuthResponse",
    "BodyRef",
    "Code",
    "Command",
    "CommandParser",
    "CommandSpec",
    "Event",
    "FetchAtt",
    "IdleDone",
    "Limits",
    "Literal",
    "MailboxName",
    "NeedContinuation",
    "ParseError",
    "Raw",
    "ResponseCode",
    "Section",
    "SequenceSet",
    "State",
    "commands",
    "encode",
    "encode_many",
    "error_response",
    "fetch",
    "format_date_time",
    "format_numbers",
    "normalize_inbox",
    "search",
    "spec_for",
    "to_bytes",
    "validate_mailbox",
]
