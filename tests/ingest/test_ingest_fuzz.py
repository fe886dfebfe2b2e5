"""Random command lines against the live listeners: always a reply line, never a dead server."""

from __future__ import annotations

import re
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_harness import DOMAIN, IngestServer, RawClient

_REPLY = re.compile(r"^[2-5]\d\d[ -]")
_VERBS = ["MAIL FROM:", "RCPT TO:", "DATA", "RSET", "NOOP", "VRFY", "HELP", "LHLO", "EHLO",
          "HELO", "BDAT", "AUTH", "STARTTLS", "XCLIENT", ""]  # fmt: skip

_lines = st.tuples(
    st.sampled_from(_VERBS),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
        max_size=80,
    ),
).map(lambda t: (t[0] + t[1]).encode("utf-8", "surrogateescape"))


def _check(srv: IngestServer, port: int, lhlo: str, raw: Callable[..., RawClient]) -> None:
    @settings(
        max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(st.lists(_lines, min_size=1, max_size=6))
    def session(lines: list[bytes]) -> None:
        client = raw(port)
        assert client.reply()[0].startswith("220")
        for line in lines:
            if line.upper().startswith((b"DATA", b"STARTTLS", b"BDAT", b"AUTH")):
                continue  # these change the stream's framing; covered by their own tests
            client.send(line + b"\r\n")
            replies = client.reply()
            for reply in replies:
                assert _REPLY.match(reply), reply
                assert "Traceback" not in reply and "Error: (" not in reply, reply
            if replies[-1].startswith(("421", "502 5.5.1 Too many")):
                # aiosmtpd's budget for unknown commands: a proper goodbye, then close.
                assert client.file.readline() == b""
                client.close()
                return
        assert client.cmd("RSET")[0].startswith("250")
        assert client.cmd(lhlo + " fuzz.test")[-1].startswith("250")
        client.close()

    session()
    # Still serving mail afterwards.
    client = raw(port)
    client.reply()
    client.cmd(lhlo + " fuzz.test")
    client.cmd("MAIL FROM:<s@remote.test>")
    assert client.cmd(f"RCPT TO:<alice@{DOMAIN}>")[0].startswith("250")


def test_fuzz_lmtp_commands(server: IngestServer, raw: Callable[..., RawClient]) -> None:
    _check(server, server.lmtp_port, "LHLO", raw)


def test_fuzz_smtp_commands(server: IngestServer, raw: Callable[..., RawClient]) -> None:
    _check(server, server.smtp_port, "EHLO", raw)
