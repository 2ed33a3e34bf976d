"""Store upkeep on a timer, off the request path.

Qdrant Edge truncates its write-ahead log only when a shard is flushed, and every user-state
write appends the whole document (~15 KB) to it: measured here, 5,000 writes grew the log by
~75 MB, and a flush brought it back to ~40 MB. A server that never flushed would grow its
data folder by gigabytes a day. A flush blocks writers for ~60 ms, so it runs every
``SUMO_FLUSH_SECONDS`` in a worker thread rather than per request. The server backend's
flush is a no-op (Qdrant manages its own log).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from indexer.errors import StoreUnavailable
from indexer.store.base import Store

log = logging.getLogger("sumo.maintenance")


async def flush_periodically(store: Store, every_s: float) -> None:
    """Flush ``store`` every ``every_s`` seconds until cancelled. A store that is down is
    tried again next time: flushing is upkeep, never a reason to stop serving."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await run_in_threadpool(store.flush)
        except StoreUnavailable as exc:
            log.warning("store flush skipped: %s", exc)
