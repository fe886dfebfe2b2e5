"""The layering rules of docs/architecture.md, checked on every module's imports.

A frontend talks to the store only through its API (so the store can change underneath),
sans-I/O cores stay free of sockets and the event loop (so they can be tested with bytes), and
the two access protocols never lean on each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mailhub"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _modules(prefix: str) -> list[Path]:
    root = PACKAGE / prefix
    if root.suffix == ".py":
        return [root] if root.exists() else []
    return sorted(root.rglob("*.py"))


def _offenders(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in _modules(prefix):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    return bad


RULES = [
    # (modules, imports they must not use, why)
    ("imap", ("mailhub.store.maildir", "mailhub.pop3"), "IMAP uses the store API only"),
    ("pop3", ("mailhub.store.maildir", "mailhub.imap"), "POP3 uses the store API only"),
    ("ingest", ("mailhub.store.maildir", "mailhub.imap", "mailhub.pop3"), "one delivery path"),
    (
        "store",
        ("mailhub.imap", "mailhub.pop3", "mailhub.ingest", "mailhub.auth", "mailhub.net"),
        "the store is protocol-neutral",
    ),
    ("imap/proto", ("asyncio", "ssl", "socket", "mailhub.store", "mailhub.net"), "sans-I/O"),
    ("pop3/proto.py", ("asyncio", "ssl", "socket", "mailhub.store", "mailhub.net"), "sans-I/O"),
    ("auth/sasl.py", ("asyncio", "ssl", "socket", "mailhub.store", "mailhub.net"), "sans-I/O"),
    ("mime", ("asyncio", "mailhub.store", "mailhub.net", "mailhub.imap"), "pure parsing"),
]


@pytest.mark.parametrize(("prefix", "forbidden", "why"), RULES, ids=[r[0] for r in RULES])
def test_layering(prefix: str, forbidden: tuple[str, ...], why: str) -> None:
    assert _modules(prefix), f"no modules under mailhub/{prefix}"
    assert _offenders(prefix, forbidden) == [], why


def test_aiosmtpd_only_in_ingest() -> None:
    bad = [
        p
        for p in _modules("")
        if "ingest" not in p.parts
        and any(n == "aiosmtpd" or n.startswith("aiosmtpd.") for n in _imports(p))
    ]
    assert bad == []
