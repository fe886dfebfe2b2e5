"""Fixtures for the ingest tests; the harness itself is in ``ingest_harness``.

``make_server``/``server`` run the ingest listeners in-process (``build_context`` + each
frontend's ``start``, as ``serve`` does) on a background loop, because several tests need the
store itself: change-bus subscriptions, store-API readers, folder set-up. Tests of the shipped
``mailhub serve`` process use the shared ``mailhub_server`` fixture (``test_ingest_serve.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ingest_harness import DOMAIN, IngestServer, RawClient, settings_for, start_server, stop_server


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., IngestServer]]:
    """``make_server(frontends=("ingest",), **settings_overrides)`` -> a running server."""
    started: list[IngestServer] = []

    def make(frontends: tuple[str, ...] = ("ingest",), **overrides: object) -> IngestServer:
        data_dir = tmp_path / f"data{len(started)}"
        data_dir.mkdir()
        for attempt in range(3):
            settings = settings_for(data_dir, overrides)
            try:
                server = start_server(settings, frontends)
                break
            except OSError:  # a free port was taken meanwhile
                if attempt == 2:
                    raise
        started.append(server)
        return server

    yield make
    for server in started:
        stop_server(server)


@pytest.fixture
def server(make_server: Callable[..., IngestServer]) -> IngestServer:
    """A server with accounts alice (alias ali), bob, and carol (quota: 1 message)."""
    srv = make_server()
    srv.add_account("alice", aliases=[f"ali@{DOMAIN}"])
    srv.add_account("bob")
    srv.add_account("carol", quota_messages=1)
    return srv


@pytest.fixture
def raw() -> Iterator[Callable[[int | str], RawClient]]:
    clients: list[RawClient] = []

    def connect(port: int | str) -> RawClient:
        client = RawClient(port)
        clients.append(client)
        return client

    yield connect
    for c in clients:
        c.close()
