"""Regions of the corpus: where a taste can be, before anything is known about it.

A new user's taste could be anywhere, but not anywhere in the space: it is somewhere the
collection has images. Spherical k-means over the item vectors cuts the collection into
regions (about 80 items each, at most 256), and the ``sumo`` policy keeps a posterior over
which region the user wants (``recommender/policies/evidence.py``). Each region carries
its own calibration, because CLIP similarities mean different things in different places:

- ``top``: the similarity to the centroid above which the collection's nearest
  ``TOP_FRACTION`` sit: "as close as a narrow taste's favourites are";
- ``median``: the corpus-median similarity to the centroid: "unrelated".

The map is stored as a document in the store itself (namespace ``sumo-regions``), so every
API replica serves with the same map and a user's posterior means the same on all of them;
the first process that needs one builds it (a compare-and-set write), the others read it.
It is rebuilt when the collection has grown or shrunk by a quarter since; a user whose
posterior refers to an older map starts a fresh search (their learned target stays).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexer.errors import ConflictError
from indexer.store.base import Document, Store
from recommender.kmeans import spherical_kmeans, unit_rows
from recommender.state import decode_f16, encode_f16

log = logging.getLogger("sumo.regions")

NAMESPACE, KEY = "sumo-regions", "map"
ITEMS_PER_REGION = 80  # small enough that a niche taste is a region of its own
MAX_REGIONS = 256  # the per-user evidence is three float16 per region, in the user document
MIN_ITEMS = 200  # below this a collection is browsed, not searched: no map
SAMPLE = 65_536  # vectors k-means sees (the rest of a large collection is assigned alike)
ITERATIONS = 12
TOP_FRACTION = 0.005  # a narrow taste: 1 image in 200
CALIBRATION_SAMPLE = 16_384  # vectors the calibration is measured on (0.5% of them: 82)
FORMAT = 2  # of the stored document; an older one is rebuilt
REBUILD_GROWTH = 0.25  # rebuild after the collection changed size by this fraction
RECHECK_S = 300.0  # how often a process looks for a newer map written by another


@dataclass(frozen=True)
class RegionMap:
    centroids: NDArray[np.float32]  # (k, dim), unit rows
    top: NDArray[np.float32]  # (k,) similarity of the collection's nearest TOP_FRACTION
    median: NDArray[np.float32]  # (k,) corpus-median similarity
    items: int  # collection size when built
    version: str  # content hash: user posteriors refer to it

    @property
    def size(self) -> int:
        return int(self.centroids.shape[0])

    def to_body(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "k": self.size, "dim": int(self.centroids.shape[1]),
            "items": self.items, "version": self.version,
            "centroids": encode_f16(self.centroids.ravel()),
            "top": [round(float(r), 4) for r in self.top],
            "median": [round(float(m), 4) for m in self.median],
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> RegionMap:
        k, dim = int(body["k"]), int(body["dim"])
        cent = decode_f16(str(body["centroids"])).astype(np.float32).reshape(k, dim)
        cent /= np.linalg.norm(cent, axis=1, keepdims=True)
        return cls(centroids=cent, top=np.asarray(body["top"], np.float32),
                   median=np.asarray(body["median"], np.float32), items=int(body["items"]),
                   version=str(body["version"]))


def region_count(n_items: int) -> int:
    return int(min(MAX_REGIONS, max(2, n_items // ITEMS_PER_REGION)))


def build_region_map(vectors: NDArray[np.float32], items: int | None = None, *,
                     k: int | None = None, seed: int = 0) -> RegionMap:
    """Spherical k-means (k-means++ seeding, the gap report's) over unit ``vectors``;
    deterministic per seed."""
    x = unit_rows(np.asarray(vectors, dtype=np.float32))
    n = len(x)
    k = min(k or region_count(items or n), n)
    # One restart of few iterations: regions need to be compact, not the best of several
    # fits (the gap report's default), and this runs on 65k vectors at service start.
    cent, _, _ = spherical_kmeans(x, np.ones(n), k, seed=seed, iters=ITERATIONS, restarts=1)
    return calibrated(x, cent, items or n, seed=seed)


def calibrated(x: NDArray[np.float32], centroids: NDArray[np.float32], items: int, *,
               seed: int = 0) -> RegionMap:
    """A map of ``centroids`` (unit rows) calibrated on a sample of the unit vectors ``x``."""
    rng = np.random.default_rng(seed)
    sims = x[rng.choice(len(x), size=min(len(x), CALIBRATION_SAMPLE), replace=False)] @ centroids.T
    median, top = np.quantile(sims, [0.5, 1.0 - TOP_FRACTION], axis=0).astype(np.float32)
    top = np.maximum(top, median + 0.02)  # "near" always means nearer than the corpus
    digest = hashlib.sha1(centroids.astype(np.float16).tobytes()).hexdigest()[:12]
    return RegionMap(centroids=centroids, top=top, median=median, items=items, version=digest)


def _sample_vectors(store: Store, limit: int) -> NDArray[np.float32]:
    # Point ids are hashes, so the first ``limit`` items of a scroll are an unbiased sample,
    # and the same one on every replica.
    rows: list[NDArray[np.float32]] = []
    for item in store.scroll(with_vectors=True, with_payload=False):
        if item.vector is not None:
            rows.append(np.asarray(item.vector, dtype=np.float32))
        if len(rows) >= limit:
            break
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def _read(doc: Document | None) -> RegionMap | None:
    """The stored map, or ``None`` when there is none or an older release wrote it."""
    if doc is None or doc.body.get("format") != FORMAT:
        return None
    return RegionMap.from_body(doc.body)


def _stale(m: RegionMap, count: int) -> bool:
    return abs(count - m.items) > REBUILD_GROWTH * max(m.items, 1)


def load_or_build(store: Store, *, build: bool = True, rebuild: bool = False
                  ) -> RegionMap | None:
    """The store's region map: read it, or (``build``) build and store it when missing or
    stale. ``None`` for a collection too small to need one."""
    count = store.count() if store.spec() is not None else 0
    if count < MIN_ITEMS:
        return None
    doc = store.get_document(NAMESPACE, KEY)
    current = _read(doc)
    if current is not None and not rebuild and not _stale(current, count):
        return current
    if not build:
        return current
    t0 = time.perf_counter()
    # As stored (half-precision centres, rounded calibration): the replica that builds the
    # map uses exactly what every other replica, and itself after a restart, reads back.
    built = RegionMap.from_body(build_region_map(_sample_vectors(store, SAMPLE), count).to_body())
    try:
        store.put_document(NAMESPACE, KEY, built.to_body(),
                           expected_version=doc.version if doc is not None else 0)
    except ConflictError:  # another replica built one meanwhile: use theirs
        return _read(store.get_document(NAMESPACE, KEY)) or built
    log.info("region map: %d regions over %d items in %.1f s", built.size, count,
             time.perf_counter() - t0)
    return built


class _Entry:
    def __init__(self, regions: RegionMap | None) -> None:
        self.regions = regions
        self.checked = time.monotonic()


_cache: weakref.WeakKeyDictionary[Store, _Entry] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def regions_for(store: Store) -> RegionMap | None:
    """This process's copy of the store's map (loaded or built on first use, looked up
    again every ``RECHECK_S`` seconds in case another replica rebuilt it). Only the first
    call builds; rebuilding a stale map is ``refresh``'s job, off the request path."""
    entry = _cache.get(store)
    if entry is not None and time.monotonic() - entry.checked < RECHECK_S:
        return entry.regions
    with _lock:  # one build per process, however many requests arrive meanwhile
        entry = _cache.get(store)
        if entry is None or time.monotonic() - entry.checked >= RECHECK_S:
            entry = _Entry(load_or_build(store, build=entry is None))
            _cache[store] = entry
        return entry.regions


def refresh(store: Store) -> RegionMap | None:
    """Load (or rebuild, when stale) now: for a service's start and its upkeep timer."""
    with _lock:
        entry = _Entry(load_or_build(store))
        _cache[store] = entry
        return entry.regions
