"""The embedded store's write-ahead log is truncated by the service's periodic flush, so a
long-running server does not grow its data folder with every user-state write."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from api_helpers import make_settings
from fastapi.testclient import TestClient

from indexer.store import edge
from indexer.store.edge import EdgeStore
from recommender.api.app import create_app
from recommender.api.maintenance import flush_periodically


def closed_wal_segments(root: Path) -> int:
    """Edge's full (32 MB, preallocated) log segments; a flush deletes all but the last."""
    return len(list(root.glob("**/documents/wal/closed-*")))


def segment_disk_bytes(root: Path) -> int:
    return sum(f.stat().st_blocks * 512 for f in root.glob("**/documents/segments/**/*")
               if f.is_file())


def rewrite(store: EdgeStore, version: int, times: int) -> int:
    body = {"blob": "x" * 15_000}  # about one user state
    for _ in range(times):
        version = store.put_document("users", "u", body, expected_version=version).version
    return version


class CountingEdgeStore(EdgeStore):
    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_periodic_flush_truncates_the_write_ahead_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store's own flush every FLUSH_BYTES written would truncate the log first.
    monkeypatch.setattr(edge, "FLUSH_BYTES", 1 << 40)
    with EdgeStore(tmp_path / "data") as store:
        rewrite(store, 0, 10_000)  # ~150 MB of log: several of Edge's 32 MB segments
        before = closed_wal_segments(tmp_path)

        async def run_a_while() -> None:
            task = asyncio.create_task(flush_periodically(store, 0.05))
            await asyncio.sleep(0.5)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        asyncio.run(run_a_while())
        after = closed_wal_segments(tmp_path)
        assert before >= 3 and after <= 1, (before, after)
        assert store.get_document("users", "u") is not None  # nothing lost by flushing


def test_flushes_let_old_user_states_space_be_reused(tmp_path: Path) -> None:
    # Each rewrite of a document leaves its old payload behind in the segment; Edge reuses
    # that space only after a flush (its optimizer does not compact it). Without the
    # flushes, the four rounds below take ~2.8x the first round's space (measured).
    with EdgeStore(tmp_path / "data") as store:
        version = rewrite(store, 0, 2500)
        store.flush()
        first = segment_disk_bytes(tmp_path)
        for _ in range(3):
            version = rewrite(store, version, 2500)
            store.flush()
        assert segment_disk_bytes(tmp_path) <= 1.3 * first


def test_the_app_flushes_on_a_timer_and_stops_at_shutdown(tmp_path: Path) -> None:
    store = CountingEdgeStore(tmp_path / "data")
    try:
        app = create_app(make_settings(tmp_path, flush_seconds=0.05), store=store)
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            time.sleep(0.4)
            during = store.flushes
        assert during >= 2
        time.sleep(0.2)
        assert store.flushes == during  # the timer ended with the app
    finally:
        store.close()


def test_zero_disables_the_timer(tmp_path: Path) -> None:
    store = CountingEdgeStore(tmp_path / "data")
    try:
        with TestClient(create_app(make_settings(tmp_path, flush_seconds=0), store=store)):
            time.sleep(0.2)
        assert store.flushes == 0
    finally:
        store.close()
