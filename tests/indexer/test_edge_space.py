"""Qdrant Edge gives back what document rewrites and deletions leave on disk: the store
flushes its documents shard every ``FLUSH_BYTES`` written (space of old versions reused)
and vacuums deleted documents at each flush."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from indexer.store import edge
from indexer.store.edge import DOCUMENTS_DIR, EdgeStore

BODY = {"record": os.urandom(75_000).hex()[:100_000]}  # ~100 KB, as a heavy user's was


def disk(folder: Path) -> int:
    """Bytes allocated on disk (files are sparse: their length says little)."""
    return sum(f.stat().st_blocks * 512 for f in folder.rglob("*") if f.is_file())


def rewrite(store: EdgeStore, keys: int, writes: int) -> None:
    versions = dict.fromkeys(range(keys), 0)
    for k in range(writes):
        key = k % keys
        versions[key] = store.put_document("users", f"u{key}", BODY,
                                           expected_version=versions[key]).version


@pytest.mark.parametrize("flush_bytes", [2 << 20, 1 << 40])
def test_rewrites_leave_bounded_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      flush_bytes: int) -> None:
    monkeypatch.setattr(edge, "FLUSH_BYTES", flush_bytes)
    with EdgeStore(tmp_path) as store:
        rewrite(store, keys=2, writes=300)  # 30 MB written
        segments = disk(tmp_path / "sumo_items" / DOCUMENTS_DIR / "segments")
        assert store.get_document("users", "u1").body == BODY  # type: ignore[union-attr]
    if flush_bytes < 1 << 30:
        assert segments < 8 << 20  # the 2 MB between flushes, plus the live documents
    else:
        assert segments > 24 << 20  # without the flushes: nearly everything written


def test_deleted_documents_are_vacuumed(tmp_path: Path) -> None:
    folder = tmp_path / "sumo_items" / DOCUMENTS_DIR / "segments"
    with EdgeStore(tmp_path) as store:
        rewrite(store, keys=100, writes=100)  # 10 MB of live documents
        store.flush()
        full = disk(folder)
        for k in range(80):
            assert store.delete_document("users", f"u{k}")
        store.flush()
        left = sorted(d.key for d in store.scroll_documents("users"))
        assert left == sorted(f"u{k}" for k in range(80, 100))
    assert disk(folder) < full / 2


class _LandsThenFails:
    """The documents shard, except that a write lands and then reports an error (a crash
    between the engine's write and its answer)."""

    def __init__(self, shard: object) -> None:
        self._shard = shard

    def __getattr__(self, name: str) -> object:
        return getattr(self._shard, name)

    def update(self, operation: object) -> None:
        self._shard.update(operation)  # type: ignore[attr-defined]
        raise RuntimeError("the write landed, its answer did not")


def test_compare_and_set_stays_exact_after_a_write_of_unknown_outcome(tmp_path: Path) -> None:
    # The store remembers the versions it wrote instead of reading them back; after a write
    # whose outcome it cannot know, it must read the stored version again.
    with EdgeStore(tmp_path) as store:
        store.put_document("users", "u", {"n": 1}, expected_version=0)
        docs = store._docs
        store._docs = _LandsThenFails(docs)  # type: ignore[assignment]
        with pytest.raises(RuntimeError):
            store.put_document("users", "u", {"n": 2}, expected_version=1)
        store._docs = docs
        stored = store.get_document("users", "u")
        assert stored is not None and (stored.version, stored.body) == (2, {"n": 2})
        assert store.put_document("users", "u", {"n": 3}, expected_version=2).version == 3
