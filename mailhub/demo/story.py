"""The demo's story: two IMAP devices in sync, and a POP3 desktop under two policies.

It follows the seed document: IMAP keeps every device and the server in step (a message read
on one device is read on the other; a message moved to a folder leaves INBOX everywhere), while
POP3 downloads to one device and deletes the server copy unless the account says otherwise
(Gmail's "keep a copy" setting, here ``--pop3-on-delete keep``). Every claim the narrative
makes is checked against what the server actually sent; a step that does not happen as
described raises DemoError instead of printing a story that did not occur.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from typing import NamedTuple

from mailhub.demo.wire import DemoError, Endpoint, ImapClient, LmtpClient, Pop3Client

DEVICES = {
    "mta": "Mail arrives (LMTP, as from Postfix)",
    "phone": "Phone (IMAP, in IDLE)",
    "laptop": "Laptop (IMAP)",
    "desktop": "Desktop (POP3)",
    "operator": "Operator (shell)",
}


class Line(NamedTuple):
    device: str
    direction: str  # C/S client/server, c/s message content, $ shell command, O its output
    text: str
    at: float  # seconds since the demo started


@dataclass
class Step:
    title: str
    story: str
    lines: list[Line] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # what was observed, in words
    seconds: float = 0.0


@dataclass
class Target:
    user: str
    password: str
    imap: Endpoint
    pop3: Endpoint
    lmtp: Endpoint | None
    private: bool
    # Switches the account's POP3 delete policy; returns the shell lines that show it.
    set_policy: Callable[[str], list[str]] | None = None


MAIL = [
    ("Grandma <grandma@example.net>", "Dinner on Sunday?", "Shall we say one o'clock?"),
    (
        "City Power <billing@power.example>",
        "Your November electricity bill",
        "Amount due: 48.20 EUR by 15 December.",
    ),
    ("Sam <sam@example.org>", "Photos from the trip", "The album link is below. Enjoy!"),
    ("Book Club <club@example.org>", "Next meeting: Thursday", "We read chapter 4 next."),
    (
        "Parcel Service <track@parcel.example>",
        "Your parcel is on its way",
        "Expected delivery: tomorrow.",
    ),
]


def message(run_id: str, user: str, sender: str, subject: str, body: str) -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {user}",
        f"Subject: {subject}",
        f"Date: {format_datetime(datetime.now(UTC))}",
        f"Message-ID: {make_msgid('demo')}",
        f"X-Mailhub-Demo: {run_id}",
        "",
        body,
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


class Demo:
    def __init__(self, target: Target, run_id: str, echo: Callable[[Step], None]) -> None:
        self.t = target
        self.run_id = run_id
        self.echo = echo
        self.steps: list[Step] = []
        self.step: Step | None = None
        self.exists = 0  # the phone's view of INBOX's message count
        self.uids: dict[str, int] = {}  # subject -> UID
        self.t0 = time.monotonic()

    def record(self, device: str, direction: str, text: str) -> None:
        assert self.step is not None
        self.step.lines.append(Line(device, direction, text, time.monotonic() - self.t0))

    def begin(self, title: str, story: str) -> Step:
        self.step = Step(title, story)
        self.started = time.monotonic()
        return self.step

    def end(self) -> None:
        assert self.step is not None
        self.step.seconds = time.monotonic() - self.started
        self.steps.append(self.step)
        self.echo(self.step)

    def shell(self, lines: list[str]) -> None:
        """The operator's command (first line) and its output."""
        for i, ln in enumerate(lines):
            self.record("operator", "$" if i == 0 else "O", ln)

    # -- helpers ---------------------------------------------------------------------------------

    def _exists_from(self, lines: list[str]) -> int | None:
        counts = [int(m.group(1)) for ln in lines if (m := re.match(r"\* (\d+) EXISTS", ln))]
        return counts[-1] if counts else None

    def deliver(self, items: list[tuple[str, str, str]]) -> None:
        if self.t.lmtp is not None:
            mta = LmtpClient(self.record, "mta", self.t.lmtp)
            for sender, subject, body in items:
                mta.deliver(
                    sender.split("<")[1].rstrip(">"),
                    self.t.user,
                    message(self.run_id, self.t.user, sender, subject, body),
                )
            mta.command("QUIT")
            mta.close()
            return
        # A real server without an LMTP port given: the mail comes in by IMAP APPEND.
        self.append(items)

    def append(self, items: list[tuple[str, str, str]]) -> None:
        mta = ImapClient(self.record, "mta", self.t.imap, self.t.password)
        mta.login(self.t.user, self.t.password)
        for sender, subject, body in items:
            data = message(self.run_id, self.t.user, sender, subject, body)
            mta.tag_no += 1
            tag = f"m{mta.tag_no}"
            mta.send_line(f"{tag} APPEND INBOX {{{len(data)}}}")
            if not mta.read_line().startswith("+"):
                raise DemoError("the server refused APPEND")
            mta.send_raw(data + b"\r\n")
            while not (line := mta.read_response_line()).startswith(tag + " "):
                pass
            if not line.startswith(f"{tag} OK"):
                raise DemoError(f"APPEND failed: {line}")
        mta.command("LOGOUT")
        mta.close()

    def wait_exists(self, imap: ImapClient, want: int) -> float:
        started = time.monotonic()
        while self.exists < want:
            (line,) = imap.expect(r"^\* \d+ EXISTS")
            self.exists = int(line.split()[1])
        return time.monotonic() - started

    def demo_uids(self, imap: ImapClient) -> list[int]:
        lines = imap.command(f'UID SEARCH HEADER X-Mailhub-Demo "{self.run_id}"')
        found = [ln for ln in lines if ln.startswith("* SEARCH")]
        return [int(x) for x in found[0].split()[2:]] if found else []

    def pop3_download(self, desktop: Pop3Client, delete: bool) -> list[str]:
        """What a POP3 client does: STAT, LIST, UIDL, RETR each, DELE each; returns the UIDLs."""
        desktop.command("STAT")
        desktop.command("LIST", multi=True)
        uidl = desktop.command("UIDL", multi=True)[1:]
        ours = []
        for entry in uidl:
            num = entry.split()[0]
            if self.t.private:
                ours.append(entry)
                continue
            # On a real account, touch only the messages this demo delivered.
            head = desktop.command(f"TOP {num} 0", multi=True)
            if any(h == f"X-Mailhub-Demo: {self.run_id}" for h in head):
                ours.append(entry)
        for entry in ours:
            desktop.command(f"RETR {entry.split()[0]}", multi=True)
            if delete:
                desktop.command(f"DELE {entry.split()[0]}")
        return ours

    # -- the story ------------------------------------------------------------------------------

    def run(self) -> list[Step]:
        t = self.t
        s = self.begin(
            "A phone and a laptop connect over IMAP",
            "Both devices log in to the same account and open INBOX. The phone then enters "
            "IDLE (RFC 2177): it sends nothing more and waits for the server to tell it about "
            "changes, as a phone does to save its battery.",
        )
        phone = ImapClient(self.record, "phone", t.imap, t.password)
        phone.login(t.user, t.password)
        self.exists = self._exists_from(phone.command("SELECT INBOX")) or 0
        phone.idle()
        laptop = ImapClient(self.record, "laptop", t.imap, t.password)
        laptop.login(t.user, t.password)
        laptop.command("SELECT INBOX")
        s.seen.append(f"Server greeting: {phone.greeting}")
        self.end()

        s = self.begin(
            "Three messages arrive",
            "The mail server hands three messages to mailhub. The idle phone is told at once "
            "(untagged EXISTS); the laptop learns it at its next command (NOOP), and lists them.",
        )
        base = self.exists
        self.deliver(MAIL[:3])
        took = self.wait_exists(phone, base + 3)
        s.seen.append(f"The idle phone saw the new mail {took * 1000:.0f} ms after delivery.")
        laptop.command("NOOP")
        uids = self.demo_uids(laptop)
        if len(uids) != 3:
            raise DemoError(f"expected 3 demo messages in INBOX, found {len(uids)}")
        laptop.command(
            f"UID FETCH {','.join(map(str, uids))} (FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])"
        )
        self.uids = {subject: uid for (_f, subject, _b), uid in zip(MAIL, uids, strict=False)}
        self.end()

        s = self.begin(
            "Read on the laptop: read on the phone",
            "The laptop opens the first message (FETCH BODY[], which sets \\Seen). The server "
            "tells the idle phone with an untagged FETCH of the new flags: the message turns "
            "read on the phone without the phone asking.",
        )
        laptop.command(f"UID FETCH {uids[0]} (BODY[])")
        start = time.monotonic()
        (line,) = phone.expect(r"^\* \d+ FETCH \(.*\\Seen")
        s.seen.append(f"Phone got `{line}` after {(time.monotonic() - start) * 1000:.0f} ms.")
        self.end()

        s = self.begin(
            "Read on the phone: read on the laptop",
            "The phone leaves IDLE (DONE), opens the third message, and goes back to IDLE. "
            "The laptop's next command brings it the flag change.",
        )
        phone.done()
        phone.command(f"UID FETCH {uids[2]} (BODY[])")
        phone.idle()
        noop = laptop.command("NOOP")
        if not any(re.match(r"\* \d+ FETCH \(.*\\Seen", ln) for ln in noop):
            raise DemoError("the laptop was not told that the phone read the message")
        s.seen.append("Laptop: " + " ".join(ln for ln in noop if ln.startswith("* ")))
        self.end()

        s = self.begin(
            "Moved to a folder on the laptop: moved on the phone",
            'The laptop files the bill in a folder "Bills" (UID MOVE, RFC 6851). The idle '
            "phone is told the message left INBOX (EXPUNGE), and when it looks, the folder "
            "holds it.",
        )
        try:
            laptop.command('CREATE "Bills"')
        except DemoError as exc:
            if "ALREADYEXISTS" not in str(exc):
                raise
        laptop.command(f'UID MOVE {uids[1]} "Bills"')
        (line,) = phone.expect(r"^\* \d+ EXPUNGE")
        self.exists -= 1
        phone.done()
        status = phone.command('STATUS "Bills" (MESSAGES UNSEEN)')
        phone.idle()
        s.seen.append(f"Phone got `{line}`; then `{status[0]}`.")
        self.end()

        s = self.begin(
            "The desktop downloads over POP3 (policy: delete)",
            "A desktop mail program logs in over POP3, which sees INBOX only (the bill in "
            '"Bills" is not offered). It downloads each message (RETR), deletes it (DELE) '
            "and quits; the deletions happen at QUIT (RFC 1939 section 6). The server copies "
            "are gone: both IMAP devices are told (EXPUNGE).",
        )
        if not t.private and t.set_policy is not None:
            self.shell(t.set_policy("delete"))
        desktop = Pop3Client(self.record, "desktop", t.pop3, t.password)
        desktop.login(t.user, t.password)
        first = self.pop3_download(desktop, delete=True)
        desktop.command("QUIT")
        desktop.close()
        try:
            gone = phone.expect(r"^\* \d+ EXPUNGE", count=len(first))
        except DemoError as exc:
            if t.private or t.set_policy is not None:
                raise
            raise DemoError(
                f"{exc}: is the account's POP3 policy `delete`? Give the demo "
                "--data-dir (the server's) so that it can set it"
            ) from None
        self.exists -= len(gone)
        noop = laptop.command("NOOP")
        s.seen.append(
            f"POP3 downloaded and deleted {len(first)} messages; the phone got "
            f"{len(gone)} EXPUNGE, the laptop "
            f"{sum(1 for ln in noop if ln.endswith('EXPUNGE'))}."
        )
        self.end()

        if t.set_policy is None:
            self.finish(phone, laptop)
            return self.steps

        s = self.begin(
            "The operator sets the account's POP3 policy to keep",
            "Like Gmail's \"keep Gmail's copy in the Inbox\", the account now keeps what POP3 "
            "downloads: DELE+QUIT leaves the message in INBOX, marked \\Seen. No restart: the "
            "running server reloads the accounts file.",
        )
        self.shell(t.set_policy("keep"))
        self.end()

        s = self.begin(
            "Two more messages; the desktop downloads again (policy: keep)",
            "The desktop does exactly what it did before (RETR, DELE, QUIT). This time the "
            "server keeps its copies: the IMAP devices see them turn read (FETCH FLAGS), and "
            "no EXPUNGE.",
        )
        base = self.exists
        self.deliver(MAIL[3:])
        self.wait_exists(phone, base + 2)
        desktop = Pop3Client(self.record, "desktop", t.pop3, t.password)
        desktop.login(t.user, t.password)
        second = self.pop3_download(desktop, delete=True)
        desktop.command("QUIT")
        desktop.close()
        seen = phone.expect(r"^\* \d+ FETCH \(.*\\Seen", count=len(second))
        extra = phone.drain()
        if any(ln.endswith("EXPUNGE") for ln in extra):
            raise DemoError("under keep, the phone was told of an EXPUNGE")
        laptop.command("NOOP")  # brings the laptop's view up to date (EXISTS, flags)
        kept = self.demo_uids(laptop)
        laptop.command(f"UID FETCH {','.join(map(str, kept))} (FLAGS)")
        s.seen.append(
            f"POP3 'deleted' {len(second)} messages; the phone got {len(seen)} "
            f"FETCH (FLAGS (\\Seen)) and no EXPUNGE; INBOX still holds them."
        )
        self.end()

        s = self.begin(
            "The desktop checks again",
            "With the scope `all`, a later POP3 session offers the kept messages again, under "
            "the same UIDLs, so the client knows it has them and downloads nothing.",
        )
        desktop = Pop3Client(self.record, "desktop", t.pop3, t.password)
        desktop.login(t.user, t.password)
        again = desktop.command("UIDL", multi=True)[1:]
        desktop.command("QUIT")
        desktop.close()
        same = {e.split()[1] for e in second} <= {e.split()[1] for e in again}
        if not same:
            raise DemoError("the kept messages changed UIDL")
        s.seen.append("The kept messages have the same UIDLs as in the previous session.")
        self.end()
        self.finish(phone, laptop)
        return self.steps

    def finish(self, phone: ImapClient, laptop: ImapClient) -> None:
        self.begin("Everyone logs out", "The phone leaves IDLE and both IMAP devices log out.")
        if self.t.set_policy is not None:
            self.shell(self.t.set_policy("restore"))
        phone.done()
        phone.command("LOGOUT")
        laptop.command("LOGOUT")
        phone.close()
        laptop.close()
        self.end()
