"""Each region's members, kept per process: the likeliest regions' items weighed whole.

``sumo`` values only the unseen items nearest a few query points per request (the
posterior's blend of centres, its likeliest mode's blend, the likeliest region's centre).
At 100k items a region holds ~390 of them and those points' nearest miss much of what the
posterior values most: an item at a region's edge, between two likely regions, is near
neither centre nor either blend. So a process that keeps the centre lists
(``recommender.centres``) also keeps, for every item, the region it belongs to (its
nearest centre), its similarity to its ``NEAREST`` nearest centres and its coordinates
along the map's main axes (what the direction hypothesis reads): 16 MB at 100k items
besides the ids. A request ranks every unseen member of the posterior's ``POOL_REGIONS``
likeliest regions by those (the expected dwell with every other region's interest taken
as unrelated: cheap, and close where it matters) and hands
the best ``POOL_PICKS``, with their vectors, to the exact valuation with the other
candidates (``recommender.policies.sumo``; docs/research.md, "the likeliest regions'
members").

As for the lists, only a store that sees every write can vouch that these are current
(``Store.revision``); over a Qdrant server every request does without.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from indexer.store.base import Store
from recommender.exclusion import SeenFilteringStore
from recommender.regions import RegionMap

log = logging.getLogger("sumo.regions")

NEAREST = 32  # centres whose similarity each item keeps: the rest count as unrelated
CHUNK = 8192  # items per block while finding them (a block's similarities: 8 MB at 256)


@dataclass(frozen=True)
class Members:
    version: str  # of the region map they belong to
    revision: int  # of the store when found
    ids: tuple[str, ...]  # row -> item id
    rows: tuple[NDArray[np.int32], ...]  # per region, the rows whose nearest centre it is
    near: NDArray[np.int16]  # (n, NEAREST): each row's nearest centres, nearest first
    sims: NDArray[np.float16]  # (n, NEAREST): its similarity to each of them
    coords: NDArray[np.float16]  # (n, axes): its coordinates along the map's main axes

    def pool(self, regions: NDArray[np.intp]) -> NDArray[np.int32]:
        """The rows of every member of ``regions``."""
        parts = [self.rows[int(r)] for r in regions]
        return np.concatenate(parts) if parts else np.zeros(0, np.int32)

    def nearest(self, rows: NDArray[np.int32]
                ) -> tuple[NDArray[np.int16], NDArray[np.float16], NDArray[np.float16]]:
        """The ``NEAREST`` nearest centres of ``rows``, their similarities to them and the
        rows' coordinates."""
        return self.near[rows, :NEAREST], self.sims[rows, :NEAREST], self.coords[rows]

    def best(self, rows: NDArray[np.int32], value: NDArray[np.float64], limit: int,
             exclude: Collection[str]) -> list[str]:
        """The ids of the ``limit`` rows of highest ``value`` not in ``exclude``."""
        out: list[str] = []
        for k in np.argsort(-value, kind="stable"):
            item = self.ids[int(rows[k])]
            if item not in exclude:
                out.append(item)
                if len(out) == limit:
                    break
        return out


_cache: weakref.WeakKeyDictionary[Store, Members] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


Project = Callable[[NDArray[np.float32]], NDArray[np.float64]]


def members_for(store: Store, regions: RegionMap, project: Project) -> Members | None:
    """This process's members for ``regions`` over ``store`` (found on first use and again
    after any write), ``project`` giving rows' coordinates along the map's main axes (the
    same for one map version), or ``None`` when the store cannot vouch for them."""
    revision = store.revision
    if revision is None:
        return None
    while isinstance(store, SeenFilteringStore):  # every engine's wrapper shares its store's
        store = store.inner
    got = _cache.get(store)
    if not _current(got, regions, revision):
        with _lock:  # one pass over the collection at a time, however many requests wait
            got = _cache.get(store)
            if not _current(got, regions, revision):
                got = _found(store, regions, revision, project)
                _cache[store] = got
    return got


def _current(got: Members | None, regions: RegionMap, revision: int) -> bool:
    return (got is not None and got.version == regions.version and got.revision == revision
            and got.near.shape[1] >= min(NEAREST, regions.size))


def _found(store: Store, regions: RegionMap, revision: int, project: Project) -> Members:
    t0 = time.perf_counter()
    centroids = regions.centroids.astype(np.float32)
    keep = min(NEAREST, regions.size)
    ids: list[str] = []
    near: list[NDArray[np.int16]] = []
    sims: list[NDArray[np.float16]] = []
    coords: list[NDArray[np.float16]] = []
    block: list[NDArray[np.float32]] = []

    def flush() -> None:
        x = np.stack(block)
        s = x @ centroids.T
        coords.append(project(x).astype(np.float16))
        top = np.argpartition(-s, keep - 1, axis=1)[:, :keep]
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        near.append(top.astype(np.int16))
        sims.append(np.take_along_axis(s, top, axis=1).astype(np.float16))
        block.clear()

    for item in store.scroll(with_vectors=True, with_payload=False):
        if item.vector is None:
            continue
        ids.append(item.id)
        block.append(np.asarray(item.vector, np.float32))
        if len(block) == CHUNK:
            flush()
    if block:
        flush()
    near_all = np.concatenate(near) if near else np.zeros((0, keep), np.int16)
    sims_all = np.concatenate(sims) if sims else np.zeros((0, keep), np.float16)
    coords_all = (np.concatenate(coords) if coords
                  else project(np.zeros((0, centroids.shape[1]), np.float32)).astype(np.float16))
    home = near_all[:, 0] if len(near_all) else np.zeros(0, np.int16)
    order = np.argsort(home, kind="stable").astype(np.int32)
    bounds = np.searchsorted(home[order], np.arange(regions.size + 1))
    rows = tuple(order[bounds[h]:bounds[h + 1]] for h in range(regions.size))
    log.info("the members of %d regions among %d items in %.1f s", regions.size, len(ids),
             time.perf_counter() - t0)
    return Members(regions.version, revision, tuple(ids), rows, near_all, sims_all,
                   coords_all)
