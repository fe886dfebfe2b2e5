"""LMTP delivery rate: mailhub against Debian's Dovecot LMTP, same messages, one run.

Usage::

    python bench/ingest.py [--messages 500] [--rounds 3] [--grow-to 10000] [--step 1000]
                           [--size 10240]

Starts ``mailhub serve`` (LMTP only) and ``dovecot`` (protocols = lmtp, a private config on
loopback, mail owned by ``nobody``) side by side on free ports in a temporary directory, then:

1. messages/s for 1 and for 10 concurrent LMTP senders of ``--size``-byte messages, one
   recipient each, into a fresh account, ``--rounds`` times; the report gives the median of
   the rounds and each round's ratio;
2. how the single-sender rate changes as one INBOX grows to ``--grow-to`` messages (measured
   every ``--step``; the target is a flat line).

The two servers take turns at every measurement (which goes first alternates), because this
machine is shared: a burst of outside load then slows both rather than one.

The client is a small pipelining asyncio LMTP client (MAIL, RCPT and DATA in one write, then
the body), so the client costs little next to the servers. Both servers fsync each message
before acknowledging it (Dovecot's default ``mail_fsync = optimized`` fsyncs saved mail).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import DovecotDaemon, MailhubServer

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "bench.test"
Results = dict[str, dict[str, list[tuple[int, float]]]]


def make_message(size: int, n: int) -> bytes:
    head = (
        f"From: sender@remote.test\r\nTo: user@{DOMAIN}\r\nSubject: bench {n}\r\n"
        f"Message-ID: <bench-{n}-{time.time_ns()}@remote.test>\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


def dot_stuff(data: bytes) -> bytes:
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data.replace(b"\r\n.", b"\r\n..") + b".\r\n"


class LmtpClient:
    """One LMTP connection; ``send`` delivers one message to one recipient."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.retries = 0

    @classmethod
    async def connect(cls, port: int) -> LmtpClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        await client.reply()
        writer.write(b"LHLO bench.test\r\n")
        await client.reply()
        return client

    async def reply(self) -> str:
        while True:
            line = (await self.reader.readline()).decode()
            if not line:
                raise ConnectionError("server closed the connection")
            if len(line) < 4 or line[3] != "-":
                return line.strip()

    async def send(self, rcpt: str, wire: bytes) -> None:
        self.writer.write(
            f"MAIL FROM:<sender@remote.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode()
        )
        for expect in ("250", "250", "354"):
            got = await self.reply()
            if not got.startswith(expect):
                raise RuntimeError(f"expected {expect}, got {got!r}")
        self.writer.write(wire)
        got = await self.reply()
        if got.startswith("4"):
            self.retries += 1
            await asyncio.sleep(0.05)
            await self.send(rcpt, wire)  # a temporary failure: retry, as an MTA would
        elif not got.startswith("250"):
            raise RuntimeError(f"delivery failed: {got!r}")

    async def close(self) -> None:
        self.writer.write(b"QUIT\r\n")
        with contextlib.suppress(ConnectionError):
            await self.reply()
        self.writer.close()


async def run_senders(port: int, rcpt: str, count: int, senders: int, size: int) -> float:
    """Deliver ``count`` messages over ``senders`` connections; returns messages/s."""
    wires = [dot_stuff(make_message(size, n)) for n in range(count)]
    clients = [await LmtpClient.connect(port) for _ in range(senders)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for wire in wires:
        queue.put_nowait(wire)

    async def worker(client: LmtpClient) -> None:
        while not queue.empty():
            await client.send(rcpt, queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    elapsed = time.perf_counter() - started
    for c in clients:
        await c.close()
    retries = sum(c.retries for c in clients)
    if retries:
        print(f"  ({retries} temporary failures retried)", flush=True)
    return count / elapsed


class Mailhub(MailhubServer):
    listener = "--lmtp-port"

    def start(self, accounts: list[str]) -> None:
        for local in accounts:
            self.add_account(f"{local}@{DOMAIN}", "bench-password")
        self.launch()


DOVECOT_CONF = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
mail_location = maildir:{base}/mail/%d/%n
first_valid_uid = 1
mail_uid = nobody
mail_gid = nogroup
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={base}/mail/%d/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
  unix_listener lmtp {{
    mode = 0600
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
}}
"""


class Dovecot(DovecotDaemon):
    def start(self, accounts: list[str]) -> None:
        # Dovecot's LMTP creates each account's Maildir on first delivery.
        self.launch(DOVECOT_CONF.format(base=self.dir, port=self.port))


async def warm_up(server: Mailhub | Dovecot, accounts: list[str], size: int) -> None:
    """The first delivery to an account creates its Maildir: not timed."""
    for local in accounts:
        await run_senders(server.port, f"{local}@{DOMAIN}", 1, 1, size)


async def interleaved(servers: list[Mailhub | Dovecot], args: argparse.Namespace) -> Results:
    """Every measurement runs on each server in turn, alternating which goes first, so a burst
    of load from other work on this shared machine hits both servers rather than one."""
    results: Results = {s.name: {"one": [], "ten": [], "growth": []} for s in servers}
    for round_no in range(args.rounds):
        order = servers if round_no % 2 == 0 else servers[::-1]
        for what, senders, count in (("one", 1, args.messages), ("ten", 10, args.messages * 2)):
            for server in order:
                # a fresh account per round: Dovecot slows as a folder grows, and the growth
                # phase below is where folder size is measured
                rate = await run_senders(
                    server.port, f"{what}{round_no}@{DOMAIN}", count, senders, args.size
                )
                results[server.name][what].append((round_no, rate))
                print(f"  round {round_no + 1}: {server.name} {senders:>2} sender(s): "
                      f"{rate:7.1f} msg/s", flush=True)  # fmt: skip
    have = 0
    step_no = 0
    while have < args.grow_to:
        have += args.step
        order = servers if step_no % 2 == 0 else servers[::-1]
        for server in order:
            rate = await run_senders(server.port, f"grow@{DOMAIN}", args.step, 1, args.size)
            results[server.name]["growth"].append((have, rate))
            print(f"  {server.name}: INBOX at {have:>6}: {rate:7.1f} msg/s", flush=True)
        step_no += 1
    return results


def report(results: Results) -> None:
    print("\nLMTP delivery, messages/s (higher is better); each figure is the median of the rounds")
    print(f"{'server':<10}{'1 sender':>10}{'10 senders':>12}   per round (1 sender / 10 senders)")
    for name, res in results.items():
        one = [r for _, r in res["one"]]
        ten = [r for _, r in res["ten"]]
        rounds = ", ".join(f"{a:.0f}/{b:.0f}" for a, b in zip(one, ten, strict=True))
        print(
            f"{name:<10}{statistics.median(one):>10.1f}{statistics.median(ten):>12.1f}   {rounds}"
        )
    if len(results) == 2:
        mh, dc = results["mailhub"], results["dovecot"]
        for what in ("one", "ten"):
            ratios = [a / b for (_, a), (_, b) in zip(mh[what], dc[what], strict=True)]
            shown = ", ".join(f"{r:.2f}" for r in ratios)
            print(f"ratio mailhub/dovecot, {what:>3}: median {statistics.median(ratios):.2f} "
                  f"(rounds: {shown})")  # fmt: skip
    print("\nINBOX growth (size: msg/s)")
    for name, res in results.items():
        growth = res["growth"]
        print(f"{name:<10}" + ", ".join(f"{n}: {r:.0f}" for n, r in growth))
        if len(growth) >= 2:
            first, last = growth[0][1], growth[-1][1]
            print(f"{'':<10}growth: last step runs at {100 * last / first:.0f}% of the first")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500, help="messages per rate test")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the rate tests")
    parser.add_argument("--grow-to", type=int, default=10_000, help="INBOX size to grow to")
    parser.add_argument("--step", type=int, default=1000, help="messages per growth step")
    parser.add_argument("--size", type=int, default=10 * 1024, help="message size in bytes")
    parser.add_argument("--only", choices=("mailhub", "dovecot"), help="run one server")
    args = parser.parse_args()
    accounts = [f"{w}{r}" for r in range(args.rounds) for w in ("one", "ten")] + ["grow"]
    with tempfile.TemporaryDirectory(prefix="mailhub-bench-") as tmp:
        base = Path(tmp)
        os.chmod(base, 0o755)  # dovecot's mail user (nobody) must reach its mail directory
        servers: list[Mailhub | Dovecot] = []
        if args.only != "dovecot":
            servers.append(Mailhub(base))
        if args.only != "mailhub":
            if shutil.which("dovecot") is None:
                print("dovecot not installed; skipping it", file=sys.stderr)
            else:
                servers.append(Dovecot(base))
        try:
            for server in servers:
                server.start(accounts)
                print(f"{server.name}: LMTP on 127.0.0.1:{server.port}", flush=True)

            async def run() -> Results:
                for server in servers:
                    await warm_up(server, accounts, args.size)
                return await interleaved(servers, args)

            results = asyncio.run(run())
        finally:
            for server in servers:
                server.stop()
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
