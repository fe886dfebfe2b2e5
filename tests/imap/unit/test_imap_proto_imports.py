"""The sans-I/O contract: imap.proto imports no event loop, sockets, TLS, store or net code."""

from __future__ import annotations

import ast
from pathlib import Path

import mailhub.imap.proto as proto

FORBIDDEN = (
    "asyncio",
    "ssl",
    "socket",
    "selectors",
    "uvloop",
    "mailhub.store",
    "mailhub.net",
    "aiofiles",
)


def test_proto_imports_nothing_forbidden() -> None:
    pkg = Path(proto.__file__).parent
    files = sorted(pkg.glob("*.py"))
    assert len(files) > 10
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN), (
                    path.name,
                    name,
                )
