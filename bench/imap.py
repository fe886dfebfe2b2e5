"""IMAP speed and memory: mailhub against Debian's Dovecot imapd over the same Maildirs.

Usage::

    python bench/imap.py [--big 100000] [--env 10000] [--clients 1,10,50] [--seconds 5]
                         [--rounds 3] [--idle 5000] [--json out.json] [--only mailhub|dovecot]

Builds one Maildir++ tree per account (``bench@bench.test`` holds ``big`` with ``--big``
small messages and ``env`` with ``--env`` realistic ones; ``userN@bench.test`` hold 300
messages each for the mixed workload), copies it to mailhub and to a Dovecot started by the
benchmark (``protocols = imap``, private config, loopback, static passdb), and measures with
the same asyncio socket client:

1. mixed workload: 1, 10, 50 concurrent clients for ``--seconds`` each, on separate accounts
   and then all on one shared mailbox; ops/s and p99 latency. Both servers run at once and
   take turns, ``--rounds`` runs each (the first server alternates), and the report gives the
   median and every round's ratio: this machine is shared, and a burst of someone else's
   load then lands on both servers instead of on one. An op is one of FETCH
   (ENVELOPE FLAGS), FETCH BODY.PEEK[], UID STORE +/-FLAGS, SEARCH UNSEEN, STATUS, NOOP,
   UID FETCH 1:* (FLAGS);
2. SELECT and ``UID FETCH 1:* (FLAGS)`` on the ``--big`` folder (median of 3 after one
   untimed warm-up that lets both servers build their index);
3. ``FETCH 1:* (ENVELOPE)`` on the ``--env`` folder (first, then warm);
4. ``--idle`` connections in IDLE on one mailbox: server memory (PSS summed over every
   server process) per connection, measured from the first tenth of them to all, and the
   time until one APPENDed message reached all.

Ratios are mailhub / Dovecot: for times and memory lower is better, for ops/s higher.
The client runs in this one Python process, so at high rates it may be the bottleneck for
both servers (the ratios stay meaningful). Run as root (Dovecot drops privileges).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import DovecotDaemon, MailhubServer

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "bench.test"
BIG_USER = f"bench@{DOMAIN}"
PASSWORD = "bench-password"
PER_USER = 300


# ------------------------------------------------------------------------------- data


def _message(i: int, rng: random.Random, small: bool) -> bytes:
    head = (
        f"Return-Path: <s{i % 97}@remote.test>\nFrom: Sender {i % 97} <s{i % 97}@remote.test>\n"
        f"To: Bench <bench@{DOMAIN}>\nCc: Other <o{i % 13}@remote.test>\n"
        f"Subject: bench message {i} about {rng.choice(['lunch', 'report', 'trip'])}\n"
        f"Date: Thu, 26 Nov 2026 12:{i % 60:02d}:00 +0000\nMessage-ID: <b{i}@remote.test>\n"
        f"In-Reply-To: <b{max(0, i - 1)}@remote.test>\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
    )
    body = "hello\n" if small else ("lorem ipsum dolor sit amet " * rng.randint(20, 200)) + "\n"
    return (head + body).encode()


def write_folder(path: Path, count: int, small: bool, seed: int) -> None:
    rng = random.Random(seed)
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    base = 1_700_000_000
    for i in range(count):
        data = _message(i, rng, small)
        flags = "S" if rng.random() < 0.7 else ""
        name = f"{base + i}.M{i}P{seed}.bench,S={len(data)}:2,{flags}"
        (path / "cur" / name).write_bytes(data)
        os.utime(path / "cur" / name, (base + i, base + i))
    if path.name.startswith("."):
        (path / "maildirfolder").touch()


def build(base: Path, big: int, env: int, users: int) -> dict[str, Path]:
    """One Maildir++ per account, keyed by address."""
    out: dict[str, Path] = {}
    root = base / "src" / "bench"
    write_folder(root, 10, small=True, seed=1)
    write_folder(root / ".big", big, small=True, seed=2)
    write_folder(root / ".env", env, small=False, seed=3)
    out[BIG_USER] = root
    for u in range(users):
        r = base / "src" / f"user{u}"
        write_folder(r, PER_USER, small=False, seed=100 + u)
        out[f"user{u}@{DOMAIN}"] = r
    return out


# ------------------------------------------------------------------------------- client


class Client:
    """A small asyncio IMAP client: one command at a time, literals skipped over."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r = reader
        self.w = writer
        self.n = 0

    @classmethod
    async def connect(cls, port: int, user: str) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        c = cls(reader, writer)
        await c.r.readline()
        await c.cmd(f'LOGIN "{user}" "{PASSWORD}"')
        return c

    async def line(self) -> bytes:
        ln = await self.r.readline()
        if not ln:
            raise ConnectionError("server closed the connection")
        while ln.endswith(b"}\r\n"):
            size = int(ln[ln.rindex(b"{") + 1 : -3].rstrip(b"+"))
            await self.r.readexactly(size)
            ln = await self.r.readline()
        return ln

    async def cmd(self, text: str) -> list[bytes]:
        self.n += 1
        tag = f"t{self.n}".encode()
        self.w.write(tag + b" " + text.encode() + b"\r\n")
        out = []
        while True:
            ln = await self.line()
            if ln.startswith(tag + b" "):
                if not ln.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text[:40]}: {ln!r}")
                return out
            out.append(ln)

    async def close(self) -> None:
        try:
            self.w.write(b"z LOGOUT\r\n")
            self.w.close()
        except (OSError, RuntimeError):
            pass


async def mixed(port: int, clients: int, seconds: float, shared: bool) -> dict[str, float]:
    users = [f"user0@{DOMAIN}" if shared else f"user{i}@{DOMAIN}" for i in range(clients)]
    conns = [await Client.connect(port, u) for u in users]
    for c in conns:
        await c.cmd("SELECT INBOX")
    lat: list[float] = []
    stop = time.monotonic() + seconds

    async def run(c: Client, seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            n = rng.randint(1, PER_USER)
            op = rng.choice(
                (
                    f"FETCH {n} (ENVELOPE FLAGS)",
                    f"FETCH {n} (BODY.PEEK[])",
                    f"UID STORE {n} +FLAGS (\\Flagged)",
                    f"UID STORE {n} -FLAGS (\\Flagged)",
                    "SEARCH UNSEEN",
                    "STATUS INBOX (MESSAGES UNSEEN)",
                    "NOOP",
                    "UID FETCH 1:* (FLAGS)",
                )
            )
            t = time.perf_counter()
            await c.cmd(op)
            lat.append(time.perf_counter() - t)

    t0 = time.monotonic()
    await asyncio.gather(*(run(c, i) for i, c in enumerate(conns)))
    took = time.monotonic() - t0
    for c in conns:
        await c.close()
    lat.sort()
    return {"ops_s": len(lat) / took, "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000}


async def big_ops(port: int) -> dict[str, float]:
    c = await Client.connect(port, BIG_USER)
    await c.cmd("SELECT big")  # warm-up: both servers build or check their index
    await c.cmd("UID FETCH 1:* (FLAGS)")
    sel, fl = [], []
    for _ in range(3):
        t = time.perf_counter()
        await c.cmd("SELECT big")
        sel.append(time.perf_counter() - t)
        t = time.perf_counter()
        await c.cmd("UID FETCH 1:* (FLAGS)")
        fl.append(time.perf_counter() - t)
    await c.cmd("SELECT env")
    t = time.perf_counter()
    await c.cmd("FETCH 1:* (ENVELOPE)")
    env_first = time.perf_counter() - t
    t = time.perf_counter()
    await c.cmd("FETCH 1:* (ENVELOPE)")
    env_warm = time.perf_counter() - t
    await c.close()
    return {
        "select_big_s": statistics.median(sel),
        "fetch_flags_big_s": statistics.median(fl),
        "fetch_envelope_first_s": env_first,
        "fetch_envelope_s": env_warm,
    }


def rss_kb(pids: list[int]) -> int:
    """Proportional set size (PSS) summed over ``pids``: pages shared between Dovecot's
    processes are counted once overall, not once per process as RSS would."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


async def idle_test(port: int, count: int, pids: Callable[[], list[int]]) -> dict[str, float]:
    """Memory is the growth from the first tenth of the connections to all of them: the
    cost of one more connection, not of the server's first logins (module imports, thread
    pools), and not flattered by memory an earlier phase freed and the first ones reuse."""
    sem = asyncio.Semaphore(50)

    async def one() -> Client:
        async with sem:
            c = await Client.connect(port, BIG_USER)
            await c.cmd("SELECT INBOX")
            c.w.write(b"i IDLE\r\n")
            assert (await c.line()).startswith(b"+")
            return c

    warm = max(1, count // 10)
    conns = list(await asyncio.gather(*(one() for _ in range(warm))))
    await asyncio.sleep(1)
    before = rss_kb(pids())
    conns += await asyncio.gather(*(one() for _ in range(count - warm)))
    await asyncio.sleep(2)
    after = rss_kb(pids())
    writer = await Client.connect(port, BIG_USER)
    msg = b"Subject: idle\r\n\r\nhi\r\n"

    async def wait_exists(c: Client) -> float:
        while True:
            ln = await c.line()
            if b"EXISTS" in ln:
                return time.perf_counter()

    waits = [asyncio.ensure_future(wait_exists(c)) for c in conns]
    t0 = time.perf_counter()
    writer.w.write(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    done = await asyncio.wait_for(asyncio.gather(*waits), 120)
    reach = max(done) - t0
    for c in conns:
        c.w.close()
    writer.w.close()
    return {
        "idle_kb_per_conn": (after - before) / max(1, count - warm),
        "idle_reach_all_s": reach,
        "idle_connections": float(count),
    }


# ------------------------------------------------------------------------------- servers


class Mailhub(MailhubServer):
    listener = "--imap-port"

    def start(self, trees: dict[str, Path]) -> None:
        for address, tree in trees.items():
            self.add_account(address, PASSWORD, tree)
        self.launch("[limits]\nmax_connections_per_ip = 100000\nfailed_login_delay = 0\n")

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc else []


DOVECOT_CONF = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{base}/mail/%d/%n
first_valid_uid = 1
mail_uid = nobody
mail_gid = nogroup
default_client_limit = 20000
default_process_limit = 20000
default_vsz_limit = 0
protocol imap {{
  mail_max_userip_connections = 100000
}}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={base}/mail/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  process_min_avail = 2
  service_count = 0
  client_limit = 20000
}}
service imap {{
  process_limit = 20000
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
}}
"""


class Dovecot(DovecotDaemon):
    def start(self, trees: dict[str, Path]) -> None:
        for address, tree in trees.items():
            self.add_account(address, tree)
        self.launch(DOVECOT_CONF.format(base=self.dir, port=self.port, password=PASSWORD))

    def pids(self) -> list[int]:
        """The master and all its descendants (login, imap, auth... processes)."""
        children: dict[int, list[int]] = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
        out, todo = [], [self.master()]
        while todo:
            p = todo.pop()
            out.append(p)
            todo += children.get(p, [])
        return out


# ------------------------------------------------------------------------------- main


async def mixed_rounds(
    servers: list[Mailhub | Dovecot], args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """The mixed workload, each configuration ``--rounds`` times per server, the servers
    taking turns (and swapping who goes first each round), so a burst of load from anything
    else on the machine lands on both rather than on whichever ran during it."""
    out: dict[str, dict[str, float]] = {s.name: {} for s in servers}
    for shared in (False, True):
        for n in args.clients:
            key = f"{'shared' if shared else 'sep'}{n}"
            runs: dict[str, list[dict[str, float]]] = {s.name: [] for s in servers}
            for round_no in range(args.rounds):
                order = servers if round_no % 2 == 0 else servers[::-1]
                for server in order:
                    runs[server.name].append(await mixed(server.port, n, args.seconds, shared))
            for name, rs in runs.items():
                out[name][f"{key}_ops_s"] = statistics.median(r["ops_s"] for r in rs)
                out[name][f"{key}_p99_ms"] = statistics.median(r["p99_ms"] for r in rs)
                for i, r in enumerate(rs):
                    out[name][f"{key}_ops_s_round{i}"] = r["ops_s"]
            shown = "  ".join(f"{name} " + "/".join(f"{r['ops_s']:.0f}" for r in rs)
                              for name, rs in runs.items())  # fmt: skip
            print(f"  mixed {key} ops/s by round: {shown}", flush=True)
    return out


async def measure_alone(server: Mailhub | Dovecot, args: argparse.Namespace) -> dict[str, float]:
    """The measurements that load one server at a time: big-folder commands and IDLE."""
    out: dict[str, float] = {}
    if "big" in args.phases:
        out.update(await big_ops(server.port))
        print(f"  {server.name} big-folder ops done: {out}", flush=True)
    if args.idle and "idle" in args.phases:
        out.update(await idle_test(server.port, args.idle, server.pids))
        print(
            f"  {server.name} idle: {out['idle_kb_per_conn']:.0f} KB/conn, "
            f"reach {out['idle_reach_all_s']:.2f}s",
            flush=True,
        )
    return out


def report(results: dict[str, dict[str, float]], clients: list[int], rounds: int) -> str:
    rows: list[tuple[str, str, bool]] = []
    for shared in ("sep", "shared"):
        for n in clients:
            what = "separate accounts" if shared == "sep" else "one shared mailbox"
            rows.append((f"{n} clients, {what}: ops/s", f"{shared}{n}_ops_s", True))
            rows.append((f"{n} clients, {what}: p99 ms", f"{shared}{n}_p99_ms", False))
    rows += [
        ("SELECT big folder (s)", "select_big_s", False),
        ("UID FETCH 1:* (FLAGS) big (s)", "fetch_flags_big_s", False),
        ("FETCH 1:* (ENVELOPE) first (s)", "fetch_envelope_first_s", False),
        ("FETCH 1:* (ENVELOPE) warm (s)", "fetch_envelope_s", False),
        ("KB per IDLE connection", "idle_kb_per_conn", False),
        ("new mail reaches all IDLE (s)", "idle_reach_all_s", False),
    ]
    names = list(results)
    out = [
        f"{'':44}"
        + "".join(f"{n:>12}" for n in names)
        + ("   mailhub/dovecot" if len(names) == 2 else "")
    ]
    for label, key, _higher in rows:
        if not all(key in results[n] for n in names):
            continue
        values = [results[n][key] for n in names]
        line = f"{label:44}" + "".join(f"{v:12.3f}" for v in values)
        if len(names) == 2 and values[1]:
            line += f"   {values[0] / values[1]:8.2f}"
            each = [f"{key}_round{i}" for i in range(rounds)]
            if all(k in results[n] for n in names for k in each):
                ratios = [results[names[0]][k] / results[names[1]][k] for k in each]
                line += "   (rounds: " + ", ".join(f"{r:.2f}" for r in ratios) + ")"
        out.append(line)
    out.append("mixed ops/s are medians of the rounds; the ratio column divides the medians.")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--env", type=int, default=10_000)
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--seconds", type=float, default=5.0, help="per mixed run")
    parser.add_argument("--rounds", type=int, default=3, help="mixed runs per server")
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--only", choices=("mailhub", "dovecot"))
    parser.add_argument("--phases", default="big,mixed,idle", help="comma-separated subset")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.clients = [int(x) for x in args.clients.split(",")]
    args.phases = set(args.phases.split(","))
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.idle * 2 + 100 > hard:
        args.idle = max(0, (hard - 100) // 2)
        print(f"file descriptor limit: IDLE test with {args.idle} connections", file=sys.stderr)
    base = Path(tempfile.mkdtemp(prefix="mailhub-imap-bench-"))
    os.chmod(base, 0o755)
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
        t = time.perf_counter()
        trees = build(base, args.big, args.env, max(args.clients))
        print(f"built mailboxes in {time.perf_counter() - t:.1f}s", flush=True)
        try:
            for server in servers:
                server.start(trees)
            if "mixed" in args.phases:
                print(f"mixed workload, {args.rounds} rounds, servers taking turns", flush=True)
                for name, values in asyncio.run(mixed_rounds(servers, args)).items():
                    results.setdefault(name, {}).update(values)
            for server in servers:
                print(f"measuring {server.name} alone...", flush=True)
                results.setdefault(server.name, {}).update(asyncio.run(measure_alone(server, args)))
        finally:
            for server in servers:
                server.stop()
        print(report(results, args.clients, args.rounds))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
