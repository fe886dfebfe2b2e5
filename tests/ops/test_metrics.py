"""The metrics endpoint: Prometheus text from a real server after real POP3 and LMTP traffic."""

from __future__ import annotations

import poplib
import re
import smtplib
import socket
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mailhub_proc import MailhubServer, free_port

from mailhub.metrics import Counter, Histogram, Registry

_SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = _SAMPLE.match(line)
        assert m, f"not exposition format: {line!r}"
        values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return values


@pytest.fixture
def metrics_server(mailhub_factory: Callable[..., MailhubServer]) -> tuple[MailhubServer, int]:
    port = free_port()
    server = mailhub_factory(config={"metrics": {"enabled": True, "port": port}})
    server.wait_for_log(rf"metrics listening on 127\.0\.0\.1:{port}")
    return server, port


def test_metrics_count_real_traffic(metrics_server: tuple[MailhubServer, int]) -> None:
    server, port = metrics_server
    before = _scrape(port)
    assert before.get('mailhub_logins_total{protocol="pop3"}', 0) == 0

    lmtp = smtplib.LMTP("127.0.0.1", server.ports["lmtp"])
    lmtp.sendmail(
        "bob@example.net", [server.user, "nobody@example.com"], b"Subject: metrics\r\n\r\nhello\r\n"
    )
    lmtp.quit()

    bad = poplib.POP3("127.0.0.1", server.ports["pop3"])
    with pytest.raises(poplib.error_proto):
        bad.user(server.user)
        bad.pass_("wrong password")
    bad.close()
    pop = poplib.POP3("127.0.0.1", server.ports["pop3"])
    pop.user(server.user)
    pop.pass_(server.password)
    assert pop.stat()[0] == 1
    pop.retr(1)
    pop.quit()

    after = _scrape(port)
    assert after['mailhub_logins_total{protocol="pop3"}'] == 1
    assert after['mailhub_login_failures_total{protocol="pop3"}'] == 1
    assert after['mailhub_connections_total{protocol="pop3"}'] == 2
    assert after['mailhub_open_connections{protocol="pop3"}'] == 0
    assert after['mailhub_commands_total{protocol="pop3",command="RETR"}'] == 1
    assert after['mailhub_commands_total{protocol="pop3",command="STAT"}'] == 1
    assert after['mailhub_command_duration_seconds_count{protocol="pop3",command="RETR"}'] == 1
    retr_inf = 'mailhub_command_duration_seconds_bucket{protocol="pop3",command="RETR",le="+Inf"}'
    assert after[retr_inf] == 1
    assert after['mailhub_deliveries_total{protocol="lmtp",result="ok"}'] == 1
    assert after["mailhub_store_messages"] >= 1
    assert after["mailhub_store_bytes"] > 0
    assert after["mailhub_start_time_seconds"] > 1.7e9


def test_metrics_endpoint_http_errors(metrics_server: tuple[MailhubServer, int]) -> None:
    _, port = metrics_server
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=10)
    assert err.value.code == 404
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 405
    # Garbage and a silent client do not hurt the endpoint.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\x00\xff" * 5000 + b"\r\n\r\n")
        s.recv(100)
    assert _scrape(port)["mailhub_start_time_seconds"] > 0


def test_metrics_off_by_default(mailhub_server: MailhubServer) -> None:
    assert "metrics listening" not in mailhub_server.log


@given(st.lists(st.tuples(st.sampled_from(["a", 'b"\\\n']), st.floats(0, 100)), max_size=30))
def test_registry_render_is_consistent(observations: list[tuple[str, float]]) -> None:
    reg = Registry()
    count = reg.counter("x_total", "x", ("k",))
    hist = reg.histogram("h_seconds", "h", ("k",), buckets=(0.5, 5.0))
    for key, value in observations:
        count.inc(value, k=key)
        hist.observe(value, k=key)
    text = reg.render()
    assert text.count("# TYPE x_total counter") == 1
    for key in {k for k, _ in observations}:
        n = sum(1 for k, _ in observations if k == key)
        assert hist.count(k=key) == n
        assert isinstance(count, Counter) and isinstance(hist, Histogram)
    for line in text.splitlines():
        assert line.startswith("#") or _SAMPLE.match(line) or '\\"' in line, line
