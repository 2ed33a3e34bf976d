"""Store upkeep on a timer, off the request path.

Every user-state write appends the whole document (~15 KB) to Qdrant Edge's write-ahead log
and to its payload storage, and Edge gives neither back until the shard is flushed
(``python research/bench_edge_docs.py``: 10,000 rewrites of 32 documents leave 146 MB of
segments and 144 MB of log without a flush; with a flush every 2,500 the segments stay at
37 MB, the space of old versions being reused, and the log keeps only its last full 32 MB
segment and the two open ones). A server that never flushed would grow its data folder by
gigabytes a day. A flush stalls writers (~10 ms plus ~1 ms per MB written since the last),
so the timed one runs every ``SUMO_FLUSH_SECONDS`` in a worker thread; between them the
writer that crosses each 4 MB of document writes flushes, a short stall that keeps the
space bounded however fast one user writes (``EdgeStore``, docs/store.md). The server
backend's flush is a no-op (Qdrant manages its own storage).

The region map the ``sumo`` policy searches over (``recommender.regions``) is rebuilt here
too when the collection has changed size by a quarter: a build takes seconds, so never in a
request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from indexer.errors import StoreUnavailable
from indexer.store.base import Store
from recommender import regions

log = logging.getLogger("sumo.maintenance")


async def flush_periodically(store: Store, every_s: float) -> None:
    """Flush ``store`` every ``every_s`` seconds until cancelled."""
    await _every(every_s, store.flush, "store flush")


async def refresh_regions_periodically(store: Store, every_s: float) -> None:
    """Look for a stale (or another replica's newer) region map every ``every_s`` seconds."""
    await _every(every_s, lambda: regions.refresh(store), "region map refresh")


async def _every(every_s: float, job: Callable[[], object], what: str) -> None:
    """Run blocking ``job`` in a worker thread every ``every_s`` seconds until cancelled. A
    store that is down is tried again next time: upkeep is never a reason to stop serving."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await run_in_threadpool(job)
        except StoreUnavailable as exc:
            log.warning("%s skipped: %s", what, exc)
