"""How much capture do ``sumo``'s candidate queries leave on the table?

``sumo`` values (posterior-expected dwell) only the unseen items nearest a few query points
per request: the posterior's blend of centres, the likeliest region's centre, a cover
region's centre and a broad taste's direction, ``CANDIDATES`` each. This registers
``sumo-all``, which values every unseen item of the collection instead (the probe and
cover slots unchanged): what a perfect candidate generator would give the same valuation.
Far too slow for a product at 100k items; a bound for a study:

    PYTHONPATH=. python research/candidate_pool.py --world default --items 10000 \\
        --users 24 --exact --paired --vs sumo-all
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from indexer.store.base import Hit, Store, Vector
from recommender.centres import lists_for
from recommender.exclusion import SeenFilteringStore
from recommender.kmeans import assign
from recommender.policies import REGISTRY
from recommender.policies.sumo import CENTRES, SumoPolicy
from recommender.regions import RegionMap

_every: dict[int, tuple[list[str], np.ndarray]] = {}


def every_item(store: Store) -> tuple[list[str], np.ndarray]:
    """All ids and vectors of ``store`` (read once per store: every user's engine wraps the
    same one, which is what is kept)."""
    while isinstance(store, SeenFilteringStore):
        store = store.inner
    if id(store) not in _every:
        items = list(store.scroll(with_vectors=True, with_payload=False))
        _every[id(store)] = ([it.id for it in items],
                             np.stack([np.asarray(it.vector, np.float32) for it in items]))
    return _every[id(store)]


def searching(points: list[Vector | int]) -> bool:
    """Whether ``sumo`` is still searching: only then is a cover centre asked besides its
    ``CENTRES`` likeliest (one request's query points, a region's index for a centre)."""
    return sum(isinstance(q, int) for q in points) > CENTRES


_homes: dict[tuple[int, str], np.ndarray] = {}


def members_of(vectors: np.ndarray, regions: RegionMap, likely: np.ndarray) -> np.ndarray:
    """The rows of ``vectors`` (``every_item``'s) whose nearest centre is one of the regions
    ``likely`` (each row's region found once per map)."""
    key = (id(vectors), regions.version)
    if key not in _homes:
        _homes[key] = assign(vectors, regions.centroids.astype(np.float32))
    return np.flatnonzero(np.isin(_homes[key], likely))


class EveryItemPolicy(SumoPolicy):
    name = "sumo-all"
    description = "sumo valuing every unseen item, not only the queries' nearest (research)"
    phase: bool | None = None  # only while searching (True), only after (False), always

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str], *, mode: Vector | None = None
                    ) -> list[list[Hit]]:
        found = super()._neighbours(regions, points, limit, exclude, mode=mode)
        if self.phase is not None and searching(points) != self.phase:
            return found
        ids, vectors = every_item(self.store)
        rest = [Hit(id=i, score=0.0, vector=vectors[k])
                for k, i in enumerate(ids) if i not in exclude]
        return [found[0] + rest, *found[1:]]


class WhileSearching(EveryItemPolicy):
    name = "sumo-all-searching"
    phase = True


class OnceFound(EveryItemPolicy):
    name = "sumo-all-found"
    phase = False


class FoundList(SumoPolicy):
    name = "sumo-found-list"
    description = "sumo valuing the likeliest region's whole list once found (research)"

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str], *, mode: Vector | None = None
                    ) -> list[list[Hit]]:
        found = super()._neighbours(regions, points, limit, exclude, mode=mode)
        lists = lists_for(self.store, regions)
        if searching(points) or lists is None:
            return found
        top = next(q for q in points if isinstance(q, int))  # the likeliest region
        more = [h for h in lists.near[top] if h.id not in exclude]
        return [found[0] + more, *found[1:]]


for _policy in (EveryItemPolicy, WhileSearching, OnceFound, FoundList):
    REGISTRY[_policy.name] = _policy

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
