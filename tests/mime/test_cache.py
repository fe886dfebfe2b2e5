"""The index cache of rendered structure values."""

from __future__ import annotations

import pathlib

from hypothesis import given, settings
from hypothesis import strategies as st

from mailhub.imap.render.cache import (
    CACHE_KEY,
    StructureValues,
    pack,
    render_all,
    structure_values,
    unpack,
)

CORPUS = pathlib.Path(__file__).parent / "corpus"


class DictCache:
    """An in-memory stand-in for Mailbox.get_cached/set_cached (pure unit test, no store)."""

    def __init__(self) -> None:
        self.values: dict[tuple[int, str], bytes] = {}
        self.sets = 0

    async def get_cached(self, uid: int, key: str) -> bytes | None:
        return self.values.get((uid, key))

    async def set_cached(self, uid: int, key: str, value: bytes) -> None:
        self.sets += 1
        self.values[uid, key] = value


@settings(max_examples=200, deadline=None)
@given(st.binary(), st.binary(), st.binary(), st.binary())
def test_pack_roundtrip(e: bytes, b: bytes, s: bytes, t: bytes) -> None:
    v = StructureValues(e, b, s, t)
    assert unpack(pack(v)) == v
    assert unpack(pack(v)[:-1] if (e or b or s or t) else b"x") is None


def test_unpack_rejects_foreign() -> None:
    assert unpack(None) is None
    assert unpack(b"") is None
    assert unpack(b"MHS0" + b"\x00" * 16) is None
    assert unpack(b"MHS1" + b"\x00" * 12) is None  # the older three-value format


async def test_structure_values_caches() -> None:
    data = (CORPUS / "04-nested-rfc822.eml").read_bytes()
    cache = DictCache()
    loads = 0

    async def load() -> bytes:
        nonlocal loads
        loads += 1
        return data

    first = await structure_values(cache, 7, load)
    second = await structure_values(cache, 7, load)
    assert first == second == render_all(data)
    assert loads == 1 and cache.sets == 1
    assert (7, CACHE_KEY) in cache.values
    assert first.bodystructure.startswith(b'(("text" "plain"')
    tree = first.part_tree()
    assert tree is not None and tree.message is None and len(tree.children) == 2
    assert tree.children[1].message is not None
