"""Recording protocol clients for the demo: every byte sent and received becomes a transcript line.

The demo's promise is that what it shows is what went over the wire, so these clients are tiny
blocking socket clients (not imaplib/poplib, which hide the exchange and, in 3.11, lack IDLE)
that write each line to the story as it is sent or read. The only change made to the record is
redaction: the password in LOGIN, PASS and AUTH lines is replaced by asterisks before the line is
stored, so no transcript, terminal or HTML page ever holds it.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

REDACTED = "********"
# (device, direction, text): "C" client, "S" server; "c"/"s" are lines of a message's content
# (a body sent with DATA or APPEND, an IMAP literal, a RETR/TOP answer), which the outputs fold.
Recorder = Callable[[str, str, str], None]


class DemoError(Exception):
    """A step did not go as the protocol says it should (one line for the operator)."""


@dataclass
class Endpoint:
    host: str
    port: int
    tls: ssl.SSLContext | None = None  # implicit TLS (993/995 role)
    starttls: ssl.SSLContext | None = None  # upgrade with STARTTLS / STLS after the greeting


class LineConn:
    """A CRLF line connection whose every line lands in the transcript of ``device``."""

    def __init__(
        self, record: Recorder, device: str, ep: Endpoint, secret: str | None, timeout: float = 10.0
    ) -> None:
        self.record = record
        self.device = device
        self.secret = secret
        self.timeout = timeout
        self.host = ep.host
        try:
            raw = socket.create_connection((ep.host, ep.port), timeout=timeout)
        except OSError as exc:
            raise DemoError(f"{device}: cannot connect to {ep.host}:{ep.port}: {exc}") from None
        self.sock: socket.socket = raw
        if ep.tls is not None:
            self.sock = ep.tls.wrap_socket(raw, server_hostname=ep.host)
        self.buf = b""

    # -- raw I/O -------------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        if self.secret:
            text = text.replace(self.secret, REDACTED)
        return text

    def send_line(self, text: str, shown: str | None = None) -> None:
        """Send ``text`` + CRLF; ``shown`` is the redacted form for the transcript."""
        self.sock.sendall(text.encode("utf-8") + b"\r\n")
        self.record(self.device, "C", self.redact(shown if shown is not None else text))

    def send_raw(self, data: bytes) -> None:
        """Send a block (a message body); each of its lines is recorded."""
        self.sock.sendall(data)
        for line in data.decode("utf-8", "replace").split("\r\n")[:-1]:
            self.record(self.device, "C" if line == "." else "c", self.redact(line))

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError from None
        if not chunk:
            raise DemoError(f"{self.device}: the server closed the connection")
        self.buf += chunk

    def read_line(self, timeout: float | None = None, direction: str = "S") -> str:
        """One line without its CRLF (raises TimeoutError when none arrives in time)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, _, self.buf = self.buf.partition(b"\r\n")
        text = line.decode("utf-8", "replace")
        if text == "." and direction == "s":
            direction = "S"  # the end of a multi-line answer is protocol, not content
        self.record(self.device, direction, self.redact(text))
        return text

    def read_bytes(self, n: int, timeout: float | None = None) -> bytes:
        """An IMAP literal's ``n`` bytes, recorded line by line."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        lines = data.decode("utf-8", "replace").split("\r\n")
        if lines and lines[-1] == "":
            lines.pop()
        for line in lines:
            self.record(self.device, "s", self.redact(line))
        return data

    def upgrade(self, ctx: ssl.SSLContext) -> None:
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.host)
        self.record(self.device, "S", "[TLS handshake done: the lines below are encrypted]")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


_LITERAL = re.compile(r"\{(\d+)\+?\}$")


class ImapClient(LineConn):
    """An IMAP client that can sit in IDLE and wait for the untagged lines a change causes."""

    def __init__(self, record: Recorder, device: str, ep: Endpoint, secret: str | None) -> None:
        super().__init__(record, device, ep, secret)
        self.tag_no = 0
        self.greeting = self.read_line()
        if not self.greeting.startswith("* OK"):
            raise DemoError(f"{device}: unexpected IMAP greeting {self.greeting!r}")
        if ep.starttls is not None:
            self.command("STARTTLS")
            self.upgrade(ep.starttls)

    def _next_tag(self) -> str:
        self.tag_no += 1
        return f"{self.device[0].lower()}{self.tag_no}"

    def read_response_line(self, timeout: float | None = None) -> str:
        """A line, with any literals it carries read in full (FETCH BODY[] sends one)."""
        line = self.read_line(timeout)
        while (m := _LITERAL.search(line)) is not None:
            self.read_bytes(int(m.group(1)), timeout)
            line = self.read_line(timeout)
        return line

    def command(self, text: str, shown: str | None = None, timeout: float = 10.0) -> list[str]:
        """Send a tagged command and read up to its tagged reply; ``NO``/``BAD`` raise."""
        tag = self._next_tag()
        self.send_line(f"{tag} {text}", f"{tag} {shown}" if shown else None)
        lines = []
        while True:
            line = self.read_response_line(timeout)
            lines.append(line)
            if line.startswith(tag + " "):
                if not line.startswith(f"{tag} OK"):
                    raise DemoError(f"{self.device}: {self.redact(text.split()[0])} failed: {line}")
                return lines

    def login(self, user: str, password: str) -> None:
        self.command(f"LOGIN {quote(user)} {quote(password)}", f"LOGIN {quote(user)} {REDACTED}")

    def idle(self) -> None:
        self.idle_tag = self._next_tag()
        self.send_line(f"{self.idle_tag} IDLE")
        line = self.read_line()
        if not line.startswith("+"):
            raise DemoError(f"{self.device}: IDLE refused: {line}")

    def done(self) -> list[str]:
        self.send_line("DONE")
        lines = []
        while True:
            line = self.read_response_line()
            lines.append(line)
            if line.startswith(self.idle_tag + " "):
                return lines

    def expect(self, pattern: str, count: int = 1, timeout: float = 5.0) -> list[str]:
        """Read untagged lines (while idling) until ``count`` of them match ``pattern``."""
        rx = re.compile(pattern)
        found: list[str] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            try:
                line = self.read_response_line(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise DemoError(
                    f"{self.device}: no untagged {pattern!r} within {timeout:g} s "
                    f"(saw {len(found)} of {count})"
                ) from None
            if rx.search(line):
                found.append(line)
        return found

    def drain(self, wait: float = 0.2) -> list[str]:
        """Whatever else has already arrived (the rest of a burst of untagged lines)."""
        lines = []
        while True:
            try:
                lines.append(self.read_response_line(wait))
            except TimeoutError:
                return lines


class Pop3Client(LineConn):
    def __init__(self, record: Recorder, device: str, ep: Endpoint, secret: str | None) -> None:
        super().__init__(record, device, ep, secret)
        self.greeting = self.read_line()
        if not self.greeting.startswith("+OK"):
            raise DemoError(f"{device}: unexpected POP3 greeting {self.greeting!r}")
        if ep.starttls is not None:
            self.command("STLS")
            self.upgrade(ep.starttls)

    def command(self, text: str, multi: bool = False, shown: str | None = None) -> list[str]:
        """Send a command; with ``multi`` read the dot-terminated body (RFC 1939 section 3)."""
        self.send_line(text, shown)
        status = self.read_line()
        if not status.startswith("+OK"):
            raise DemoError(f"{self.device}: {text.split()[0]} failed: {status}")
        lines = [status]
        content = "s" if text.split()[0] in ("RETR", "TOP") else "S"
        if multi:
            while True:
                line = self.read_line(direction=content)
                if line == ".":
                    break
                lines.append(line[1:] if line.startswith("..") else line)
        return lines

    def login(self, user: str, password: str) -> None:
        self.command(f"USER {user}")
        self.command(f"PASS {password}", shown=f"PASS {REDACTED}")


class LmtpClient(LineConn):
    """The MTA's side of LMTP (RFC 2033): what Postfix does when it hands mail to mailhub."""

    def __init__(self, record: Recorder, device: str, ep: Endpoint) -> None:
        super().__init__(record, device, ep, None)
        self.reply()
        self.command("LHLO demo.invalid")

    def reply(self) -> str:
        while True:
            line = self.read_line()
            if len(line) < 4 or line[3] != "-":
                if line[:1] not in ("2", "3"):
                    raise DemoError(f"{self.device}: {line}")
                return line

    def command(self, text: str) -> str:
        self.send_line(text)
        return self.reply()

    def deliver(self, sender: str, rcpt: str, message: bytes) -> None:
        self.command(f"MAIL FROM:<{sender}>")
        self.command(f"RCPT TO:<{rcpt}>")
        self.command("DATA")
        body = b"\r\n".join(
            b"." + ln if ln.startswith(b".") else ln for ln in message.split(b"\r\n")
        )
        self.send_raw(body.rstrip(b"\r\n") + b"\r\n.\r\n")
        self.reply()  # one reply per accepted recipient (RFC 2033 section 4.2)


def quote(text: str) -> str:
    """An IMAP quoted string (RFC 9051 section 4.3)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
