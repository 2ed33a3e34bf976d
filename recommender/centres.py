"""Each region's nearest items, kept per process: a region centre answered without a search.

Every ``sumo`` request asks for the items nearest the likeliest regions' centres
(``recommender.regions``). Those answers change only when the items do, so they are found
once per region map by exact search and kept with their vectors (``NEAR`` per region, 28
MB at 512 dimensions for a full map of 256 regions); a request drops the user's seen items
from them and searches only when too few are left. The time saved pays for a wider search
beam on the queries that change with every request, which the graph answers poorly
(docs/research.md, "the approximate index").

Only a store that sees every write can vouch that its lists are current (``Store.revision``:
a folder this process alone opens); over a Qdrant server, which other processes write to,
every centre is searched.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from indexer.store.base import Hit, Store
from recommender.exclusion import SeenFilteringStore
from recommender.regions import RegionMap

log = logging.getLogger("sumo.regions")

NEAR = 48  # items kept per centre: a user sees ~5 per request, ~10 are asked for


@dataclass(frozen=True)
class CentreLists:
    version: str  # of the region map they answer for
    revision: int  # of the store when found
    near: Sequence[Sequence[Hit]]  # per region, nearest first, with vectors

    def answer(self, region: int, limit: int, exclude: Collection[str]) -> list[Hit] | None:
        """The ``limit`` items nearest ``region``'s centre that are not in ``exclude``, or
        ``None`` when the list has fewer left (the caller searches instead)."""
        kept = [h for h in self.near[region] if h.id not in exclude][:limit]
        return kept if len(kept) == limit else None


_cache: weakref.WeakKeyDictionary[Store, CentreLists] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def lists_for(store: Store, regions: RegionMap) -> CentreLists | None:
    """This process's lists for ``regions`` over ``store`` (found on first use and again
    after any write), or ``None`` when the store cannot vouch for them."""
    revision = store.revision
    if revision is None:
        return None
    while isinstance(store, SeenFilteringStore):  # every engine's wrapper shares its store's
        store = store.inner
    got = _cache.get(store)
    if got is None or got.version != regions.version or got.revision != revision:
        with _lock:  # one search of every centre at a time, however many requests wait
            got = _cache.get(store)
            if got is None or got.version != regions.version or got.revision != revision:
                got = _found(store, regions, revision)
                _cache[store] = got
    return got


def _found(store: Store, regions: RegionMap, revision: int) -> CentreLists:
    t0 = time.perf_counter()
    near = store.search_many(list(regions.centroids), NEAR, with_vectors=True, exact=True)
    log.info("nearest %d items of %d region centres in %.1f s", NEAR, regions.size,
             time.perf_counter() - t0)
    return CentreLists(regions.version, revision, tuple(tuple(hits) for hits in near))
