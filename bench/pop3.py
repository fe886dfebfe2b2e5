"""POP3 speed: mailhub against Debian's Dovecot pop3d over the same 10,000-message INBOX.

Usage::

    python bench/pop3.py [--messages 10000] [--dele 1000] [--rounds 5] [--json out.json]

Builds one Maildir INBOX (``--messages`` messages of 2-28 KB, LF line endings, some lines
starting with "." so byte-stuffing is exercised, ``S=``/``W=`` sizes in the file names as both
servers write them), copies it to a mailhub account and to a Dovecot account, starts
``mailhub serve`` (POP3 only) and ``dovecot`` (protocols = pop3, a private config on loopback,
``pop3_uidl_format`` at its default) on free ports, opens one untimed session on each (so both
have built their index), then measures with the same small socket client:

1. STAT, LIST and UIDL right after login (median of ``--rounds`` sessions, and the first,
   cold session on its own; login timed apart);
2. RETR of every message in one session (8 commands in flight, RFC 2449 PIPELINING), as MB/s
   of message octets;
3. DELE of the first ``--dele`` messages and QUIT (the UPDATE state), in seconds.

Ratios are mailhub / Dovecot for times (lower is better) and for MB/s (higher is better).
Run as root (Dovecot drops to its own users). The closing report of the POP3 issue quotes the
output of a full run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import DovecotDaemon, MailhubServer

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "bench.test"
USER = f"pop@{DOMAIN}"
PASSWORD = "bench-password"
WINDOW = 8


def build_maildir(path: Path, count: int) -> int:
    """Write the shared INBOX; returns its total CRLF size."""
    rng = random.Random(1939)
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    words = [
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
        "consectetur",
        "adipiscing",
        "elit",
        "sed",
        "do",
        "eiusmod",
        "tempor",
        "incididunt",
        "ut",
        "labore",
        "et",
        "dolore",
        "magna",
    ]
    total = 0
    base = 1_700_000_000
    for i in range(count):
        size = rng.randint(2000, 28400)
        head = (
            f"Return-Path: <sender{i % 97}@remote.test>\nFrom: Sender {i % 97} "
            f"<sender{i % 97}@remote.test>\nTo: {USER}\nSubject: bench message {i}\n"
            f"Date: Thu, 26 Nov 2026 12:00:00 +0000\nMessage-ID: <b{i}@remote.test>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
        )
        lines = [head]
        used = len(head)
        while used < size:
            line = " ".join(rng.choice(words) for _ in range(11))
            if rng.random() < 0.02:
                line = "." + line
            lines.append(line + "\n")
            used += len(line) + 1
        data = "".join(lines).encode()
        crlf = len(data) + data.count(b"\n")
        total += crlf
        name = f"{base + i}.M{i}P1.bench,S={len(data)},W={crlf}:2,"
        (path / "cur" / name).write_bytes(data)
        os.utime(path / "cur" / name, (base + i, base + i))
    return total


class Client:
    """A minimal POP3 client: status lines and multi-line bodies, with pipelining."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buf = b""
        greeting = self.line()
        assert greeting.startswith(b"+OK"), greeting

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def cmd(self, text: str) -> bytes:
        self.sock.sendall(text.encode() + b"\r\n")
        reply = self.line()
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"{text.split()[0]}: {reply!r}")
        return reply

    def multi(self, text: str) -> bytes:
        """A multi-line command; returns the body up to and including the terminator."""
        self.cmd(text)
        parts = [self.buf]
        self.buf = b""
        tail = (b"\r\n" + parts[0])[-5:]  # the body may be just ".\r\n"
        while tail != b"\r\n.\r\n":
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            parts.append(chunk)
            tail = (tail + chunk)[-5:]
        return b"".join(parts)

    def pipelined(self, commands: list[str], multiline: bool) -> int:
        """Send ``commands`` with WINDOW in flight; returns the bytes received.

        Responses are counted by their ends: "CRLF.CRLF" cannot occur inside a byte-stuffed
        body, and single-line replies end at their one CRLF. ``carry`` keeps the last bytes of
        the previous read so an end split across two reads is counted once.
        """
        marker = b"\r\n.\r\n" if multiline else b"\r\n"
        sent = done = received = 0
        carry = b""
        first = [c.encode() + b"\r\n" for c in commands[:WINDOW]]
        self.sock.sendall(b"".join(first))
        sent = len(first)
        data, self.buf = self.buf, b""
        while done < len(commands):
            if not data:
                data = self.sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("server closed the connection")
            received += len(data)
            window = carry + data
            done += window.count(marker)  # carry is shorter than the marker: no double count
            carry = window[-(len(marker) - 1) :]
            data = b""
            batch = []
            while sent < len(commands) and sent - done < WINDOW:
                batch.append(commands[sent].encode() + b"\r\n")
                sent += 1
            if batch:
                self.sock.sendall(b"".join(batch))
        return received

    def close(self) -> None:
        self.sock.close()


def login(port: int) -> tuple[Client, float]:
    started = time.perf_counter()
    client = Client(port)
    client.cmd(f"USER {USER}")
    client.cmd(f"PASS {PASSWORD}")
    return client, time.perf_counter() - started


def measure(port: int, count: int, dele: int, rounds: int) -> dict[str, float]:
    warm, _ = login(port)  # untimed: both servers build or check their index here
    warm.cmd("STAT")
    warm.cmd("QUIT")
    warm.close()
    stats: dict[str, list[float]] = {"login": [], "stat": [], "list": [], "uidl": []}
    total = 0
    for _ in range(rounds):
        client, took = login(port)
        stats["login"].append(took)
        t = time.perf_counter()
        reply = client.cmd("STAT")
        stats["stat"].append(time.perf_counter() - t)
        n, total = (int(x) for x in reply.split()[1:3])
        assert n == count, reply
        t = time.perf_counter()
        client.multi("LIST")
        stats["list"].append(time.perf_counter() - t)
        t = time.perf_counter()
        client.multi("UIDL")
        stats["uidl"].append(time.perf_counter() - t)
        client.cmd("QUIT")
        client.close()
    out = {k: statistics.median(v) for k, v in stats.items()}
    # The first session after the warm-up is the cold one (nothing cached for LIST/UIDL yet).
    out.update({f"{k}_first": v[0] for k, v in stats.items()})
    client, _ = login(port)
    t = time.perf_counter()
    client.pipelined([f"RETR {i}" for i in range(1, count + 1)], multiline=True)
    took = time.perf_counter() - t
    out["retr_seconds"] = took
    out["retr_mb"] = total / 1e6
    out["retr_mb_s"] = total / 1e6 / took
    client.cmd("QUIT")  # no DELE: nothing changes
    client.close()
    client, _ = login(port)
    t = time.perf_counter()
    client.pipelined([f"DELE {i}" for i in range(1, dele + 1)], multiline=False)
    client.cmd("QUIT")
    out["dele_quit"] = time.perf_counter() - t
    client.close()
    client, _ = login(port)
    left = int(client.cmd("STAT").split()[1])
    assert left == count - dele, f"{left} messages left after deleting {dele} of {count}"
    client.cmd("QUIT")
    client.close()
    return out


class Mailhub(MailhubServer):
    listener = "--pop3-port"

    def start(self, inbox: Path) -> None:
        self.add_account(USER, PASSWORD, inbox)
        self.launch()


DOVECOT_CONF = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{base}/mail/%d/%n
first_valid_uid = 1
mail_uid = nobody
mail_gid = nogroup
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={base}/mail/%d/%n
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
}}
"""


class Dovecot(DovecotDaemon):
    def start(self, inbox: Path) -> None:
        self.add_account(USER, inbox)
        self.launch(DOVECOT_CONF.format(base=self.dir, port=self.port, password=PASSWORD))


def report(results: dict[str, dict[str, float]]) -> str:
    rows = [
        ("login (ms)", "login", 1000.0, False),
        ("STAT (ms)", "stat", 1000.0, False),
        ("LIST (ms)", "list", 1000.0, False),
        ("UIDL (ms)", "uidl", 1000.0, False),
        ("LIST first (ms)", "list_first", 1000.0, False),
        ("UIDL first (ms)", "uidl_first", 1000.0, False),
        ("RETR all (MB/s)", "retr_mb_s", 1.0, True),
        ("RETR all (s)", "retr_seconds", 1.0, False),
        ("DELE+QUIT (s)", "dele_quit", 1.0, False),
    ]
    names = list(results)
    out = [
        f"{'':18}"
        + "".join(f"{n:>12}" for n in names)
        + ("   mailhub/dovecot" if len(names) == 2 else "")
    ]
    for label, key, scale, _higher in rows:
        values = [results[n][key] * scale for n in names]
        line = f"{label:18}" + "".join(f"{v:12.2f}" for v in values)
        if len(names) == 2 and values[1]:
            line += f"   {values[0] / values[1]:8.2f}"
        out.append(line)
    first = results[names[0]]
    out.append(f"(RETR volume: {first['retr_mb']:.1f} MB of message octets)")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--dele", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=("mailhub", "dovecot"), help="run one server")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mailhub-pop3-bench-"))
    os.chmod(base, 0o755)  # dovecot's mail user (nobody) must reach its mail directory
    servers: list[Mailhub | Dovecot] = []
    if args.only != "dovecot":
        servers.append(Mailhub(base))
    if args.only != "mailhub":
        if shutil.which("dovecot") is None:
            print("dovecot not installed; skipping it", file=sys.stderr)
        else:
            servers.append(Dovecot(base))
    results: dict[str, dict[str, float]] = {}
    try:
        inbox = base / "inbox"
        t = time.perf_counter()
        size = build_maildir(inbox, args.messages)
        print(
            f"built {args.messages} messages ({size / 1e6:.1f} MB CRLF) in "
            f"{time.perf_counter() - t:.1f}s",
            flush=True,
        )
        for server in servers:
            try:
                server.start(inbox)
                print(f"measuring {server.name}...", flush=True)
                results[server.name] = measure(server.port, args.messages, args.dele, args.rounds)
            finally:
                server.stop()
        print(report(results))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
