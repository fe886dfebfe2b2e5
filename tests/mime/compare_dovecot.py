"""Compare our FETCH answers with Dovecot's for every message file in a directory.

    /work/venv/bin/python tests/mime/compare_dovecot.py DIR [--binary]

Each file is taken as one message (line ends normalised to CRLF, as the store serves them),
APPENDed to a PREAUTH Dovecot (see make_fixtures.py) and fetched item by item; differences
are printed and counted. Used to widen the check beyond the committed corpus, e.g. with
CPython's Lib/test/test_email/data (65 files: all equal except one documented deviation).
BINARY items are skipped unless ``--binary`` is given: we decode malformed parts leniently
where Dovecot answers NO [PARSE], and Dovecot 2.3.19's imap process was seen to exit on one
BINARY[] request of that corpus.
"""

from __future__ import annotations

import collections
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from make_fixtures import Dovecot, _status, items_for  # noqa: E402
from test_dovecot_fixtures import render_item  # noqa: E402


def main(src: pathlib.Path, binary: bool) -> int:
    msgs = [
        (f.name, f.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        for f in sorted(src.iterdir())
        if f.is_file()
    ]
    dv = Dovecot()
    diffs: collections.Counter[str] = collections.Counter()
    try:
        appended = []
        for name, data in msgs:
            _, tagged = dv.command(b"APPEND INBOX {%d+}\r\n" % len(data) + data)
            if _status(tagged).startswith("OK"):
                appended.append((name, data))
            else:
                print(f"-- {name}: Dovecot refused the APPEND ({tagged!r}), skipped")
        msgs = appended
        dv.command(b"SELECT INBOX")
        for i, (name, data) in enumerate(msgs, 1):
            for item in items_for(data):
                if item.startswith("BINARY") and not binary:
                    continue
                untagged, tagged = dv.command(b"FETCH %d (%s)" % (i, item.encode()))
                prefix = b"* %d FETCH (" % i
                resp = [u for u in untagged if u.startswith(prefix)]
                theirs = resp[0][len(prefix) : -3] if resp else b""
                status, ours = render_item(data, item)
                if status != _status(tagged) or (status == "OK" and ours != theirs):
                    diffs[item.split("[")[0]] += 1
                    print(f"== {name} {item}\n  dovecot {theirs[:300]!r}\n  ours    {ours[:300]!r}")
    finally:
        dv.close()
    print(f"{len(msgs)} messages, differences: {dict(diffs) or 'none'}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1]), "--binary" in sys.argv[2:]))
