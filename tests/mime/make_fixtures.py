"""Regenerate tests/mime/fixtures/*.json: what Dovecot answers for each corpus message.

Run as root on a machine with Debian's dovecot-imapd::

    /work/venv/bin/python tests/mime/make_fixtures.py

Dovecot's ``imap`` binary is run in PREAUTH mode over a pipe with a private config and a
throw-away Maildir (no daemon, no port, no auth setup needed). Every corpus message is
APPENDed, then FETCHed item by item; the fixture keeps each untagged FETCH response's inside
(the text between ``* n FETCH (`` and the final ``)``) and the tagged status, so the tests can
compare our rendering byte for byte. The items per message come from our own part numbering
(``mailhub.mime.sections.part_numbers``), plus a few sections that do not exist.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from mailhub.mime.sections import part_numbers  # noqa: E402
from mailhub.mime.structure import parse  # noqa: E402

IMAP_BIN = "/usr/lib/dovecot/imap"

CONFIG = """base_dir = {tmp}/run
log_path = {tmp}/dovecot.log
protocols = imap
ssl = no
mail_location = maildir:{tmp}/mail
first_valid_uid = 0
first_valid_gid = 0
mail_uid = dovecot
mail_gid = dovecot
default_internal_user = dovecot
default_login_user = dovenull
"""


def items_for(data: bytes) -> list[str]:
    """The FETCH items to record for one message."""
    items = [
        "ENVELOPE",
        "BODYSTRUCTURE",
        "BODY",
        "RFC822.SIZE",
        "BODY.PEEK[]",
        "BODY.PEEK[HEADER]",
        "BODY.PEEK[TEXT]",
        "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]",
        "BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM)]",
        "BODY.PEEK[]<10.20>",
        "BODY.PEEK[TEXT]<5>",
        "BINARY.PEEK[]",
        "BODY.PEEK[99]",
        "BODY.PEEK[1.2.3]",
    ]
    for num, part in part_numbers(parse(data)):
        s = ".".join(str(n) for n in num)
        items += [f"BODY.PEEK[{s}]", f"BODY.PEEK[{s}.MIME]"]
        if part.message is not None:
            items += [
                f"BODY.PEEK[{s}.HEADER]",
                f"BODY.PEEK[{s}.TEXT]",
                f"BODY.PEEK[{s}.HEADER.FIELDS (SUBJECT)]",
            ]
        elif not part.is_multipart:
            items += [f"BINARY.PEEK[{s}]", f"BINARY.SIZE[{s}]"]
            if len(num) == 1:
                items.append(f"BODY.PEEK[{s}.HEADER]")
    return items


class Dovecot:
    """A PREAUTH Dovecot imap process talking over pipes."""

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="mailhub-dovecot-")
        os.chmod(self.tmp, 0o777)
        conf = pathlib.Path(self.tmp, "dovecot.conf")
        conf.write_text(CONFIG.format(tmp=self.tmp))
        os.makedirs(f"{self.tmp}/mail")
        shutil.chown(f"{self.tmp}/mail", "dovecot", "dovecot")
        self.proc = subprocess.Popen(
            [IMAP_BIN, "-c", str(conf)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"USER": "root", "HOME": self.tmp, "PATH": "/usr/bin:/bin"},
        )
        self.n = 0
        self._line()  # * PREAUTH

    def _line(self) -> bytes:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("dovecot closed the connection")
        while m := re.search(rb"\{(\d+)\}\r\n$", line):
            line += self.proc.stdout.read(int(m.group(1)))
            line += self.proc.stdout.readline()
        return line

    def command(self, cmd: bytes) -> tuple[list[bytes], bytes]:
        assert self.proc.stdin is not None
        self.n += 1
        tag = b"t%d" % self.n
        self.proc.stdin.write(tag + b" " + cmd + b"\r\n")
        self.proc.stdin.flush()
        untagged: list[bytes] = []
        while True:
            line = self._line()
            if line.startswith(tag + b" "):
                return untagged, line
            untagged.append(line)

    def close(self) -> None:
        try:
            self.command(b"LOGOUT")
        finally:
            self.proc.wait(10)
            shutil.rmtree(self.tmp, ignore_errors=True)


def _status(tagged: bytes) -> str:
    """``OK`` / ``NO [CODE]`` / ``BAD``, without Dovecot's timing text."""
    words = tagged.split(b" ", 2)
    out = words[1].decode()
    if len(words) > 2 and words[2].startswith(b"["):
        out += " " + words[2][: words[2].index(b"]") + 1].decode()
    return out


def main() -> None:
    corpus = sorted((HERE / "corpus").glob("*.eml"))
    out_dir = HERE / "fixtures"
    out_dir.mkdir(exist_ok=True)
    dv = Dovecot()
    try:
        for f in corpus:
            data = f.read_bytes()
            dv.command(b"APPEND INBOX {%d+}\r\n" % len(data) + data)
        dv.command(b"SELECT INBOX")
        for i, f in enumerate(corpus, 1):
            items: dict[str, dict[str, str]] = {}
            for item in items_for(f.read_bytes()):
                untagged, tagged = dv.command(b"FETCH %d (%s)" % (i, item.encode()))
                prefix = b"* %d FETCH (" % i
                resp = [u for u in untagged if u.startswith(prefix)]
                inner = resp[0][len(prefix) : -3] if resp else b""
                items[item] = {
                    "response": inner.decode("utf-8", "surrogateescape"),
                    "status": _status(tagged),
                }
            doc = {"message": f.name, "items": items}
            (out_dir / (f.stem + ".json")).write_text(json.dumps(doc, indent=1) + "\n")
            print(f"{f.name}: {len(items)} items")
    finally:
        dv.close()


if __name__ == "__main__":
    main()
