"""Would valuing every unseen item of the likeliest regions recover what a perfect candidate
generator adds at 100k items?

Valuing every unseen item of the collection instead of the query points' nearest measured
+0.048 mean capture at 100k on ``default`` (several interests +0.138, drift +0.070:
``research/candidate_pool.py``, docs/research.md): with a posterior of several modes the
queries' nearest items miss what it values most, and a third of those picks lie between
regions, outside every centre's list. Every item the posterior values highly is near some
likely region, so its nearest centre is likely too. This registers ``sumo-pool-K``: ``sumo``
with every unseen item whose nearest centre is one of the ``K`` likeliest regions (by the
region posterior) valued besides its candidates, the probe and cover slots unchanged (K =
16, 8, 4; ``-found`` and ``-searching`` only in one phase of the search). A bound for a
study, in memory: valuing ~6,000 items' vectors per request is far too slow for the
product. ``sumo-pool-16-places`` does so only while no direction is a likely taste;
``sumo-pool-16-ranked`` is what a process could afford to keep and do instead: each item's
similarity to its ``NEAREST`` nearest centres, the pool ranked by the expected dwell with
every other region taken as unrelated, and only the best ``PICKS`` valued exactly;
``sumo-pool-16-ranked-dir`` ranks with the direction's term too. Commit f20e6f7 has that
last one in the product (``recommender/members.py``), with its latency (docs/research.md):

    PYTHONPATH=. python research/region_pool.py --world default --items 100000 \\
        --users 24 --paired --vs sumo-pool-16
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from candidate_pool import every_item, members_of, searching  # research/ is on the path
from value_ascent import PosteriorKept

from indexer.store.base import Hit, Vector
from recommender.policies import REGISTRY
from recommender.policies.evidence import (
    GRADED,
    KNEE,
    SHARPNESS,
    SUPPORT,
    Y_RANGE,
    Posterior,
    linear_basis,
)
from recommender.policies.sumo import LINEAR_QUERY
from recommender.regions import RegionMap


class RegionPool(PosteriorKept):
    name = "sumo-pool-16"
    description = "sumo valuing every unseen item of its 16 likeliest regions (research)"
    k = 16
    phase: bool | None = None  # only while searching (True), only after (False), always
    places_only = False  # not while "a direction" holds LINEAR_QUERY of the posterior

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str], *, mode: Vector | None = None
                    ) -> list[list[Hit]]:
        found = super()._neighbours(regions, points, limit, exclude, mode=mode)
        post = self._post
        if post is None or (self.phase is not None and searching(points) != self.phase):
            return found
        if self.places_only and post.linear >= LINEAR_QUERY:
            return found
        _, vectors = every_item(self.store)
        rows = members_of(vectors, regions, np.argsort(-post.probs, kind="stable")[:self.k])
        return [found[0] + self._pool(regions, post, rows, exclude), *found[1:]]

    def _pool(self, regions: RegionMap, post: Posterior, rows: np.ndarray,
              exclude: Collection[str]) -> list[Hit]:
        """What of the likeliest regions' members (``rows``) is valued: every unseen one."""
        ids, vectors = every_item(self.store)
        return [Hit(id=ids[r], score=0.0, vector=vectors[r]) for r in rows
                if ids[r] not in exclude]


class RegionPool8(RegionPool):
    name = "sumo-pool-8"
    description = "sumo valuing every unseen item of its 8 likeliest regions (research)"
    k = 8


class RegionPool4(RegionPool):
    name = "sumo-pool-4"
    description = "sumo valuing every unseen item of its 4 likeliest regions (research)"
    k = 4


class PoolOnceFound(RegionPool):
    name = "sumo-pool-16-found"
    description = "sumo-pool-16 only once the search is done (research)"
    phase = False


class PoolWhileSearching(RegionPool):
    name = "sumo-pool-16-searching"
    description = "sumo-pool-16 only while the search is on (research)"
    phase = True


class PoolForPlaces(RegionPool):
    name = "sumo-pool-16-places"
    description = "sumo-pool-16 only while no direction is a likely taste (research)"
    places_only = True


NEAREST = 32  # centres whose similarity the ranked pool keeps per item
PICKS = 40  # pool items ranked best, then valued with the other candidates

_nearest: dict[tuple[int, str, int], tuple[np.ndarray, np.ndarray]] = {}


def _curve(z: np.ndarray) -> np.ndarray:
    """``recommender.policies.evidence.interest`` at ``z``, the way from a region's median
    similarity (0) to its ``top`` (1)."""
    step = 1.0 / (1.0 + np.exp(-SHARPNESS * (z - KNEE)))
    return np.asarray(GRADED * np.clip(z, 0.0, 1.0) + (1.0 - GRADED) * step)


def value_near(regions: RegionMap, post: Posterior, near: np.ndarray, sims: np.ndarray
               ) -> np.ndarray:
    """The posterior-expected dwell of items known only by their similarity to their
    nearest centres: every other region's interest taken as at its median (unrelated),
    the direction's term left out. What a process could keep for every item (13 MB at 100k
    items with 32 centres each, against 200 MB of vectors)."""
    base = np.exp(post.a + post.g * _curve(np.zeros(regions.size)))
    z = (sims - regions.median[near]) / (regions.top[near] - regions.median[near])
    lift = np.exp(post.a[near] + post.g[near] * _curve(z)) - base[near]
    p = post.probs
    return np.asarray(float(base @ p) + (p[near] * lift).sum(axis=1))


class RankedPool(PoolForPlaces):
    """``sumo-pool-16-places`` as a product could afford it: the pool ranked by
    ``value_near`` over each item's ``NEAREST`` nearest centres (kept as float16), and only
    the best ``PICKS`` unseen ones valued exactly with the other candidates."""

    name = "sumo-pool-16-ranked"
    description = "sumo-pool-16-places, the pool ranked cheaply and its best 40 valued"

    def _pool(self, regions: RegionMap, post: Posterior, rows: np.ndarray,
              exclude: Collection[str]) -> list[Hit]:
        ids, vectors = every_item(self.store)
        key = (id(vectors), regions.version, NEAREST)
        if key not in _nearest:
            s = vectors @ regions.centroids.astype(np.float32).T
            near = np.argsort(-s, axis=1)[:, :NEAREST]
            _nearest[key] = near, np.take_along_axis(s, near, axis=1).astype(np.float16)
        near, sims = _nearest[key]
        value = self._rank(regions, post, rows, value_near(regions, post, near[rows],
                                                           sims[rows].astype(np.float32)))
        best: list[Hit] = []
        for k in np.argsort(-value, kind="stable"):
            r = int(rows[k])
            if ids[r] not in exclude:
                best.append(Hit(id=ids[r], score=0.0, vector=vectors[r]))
                if len(best) == PICKS:
                    break
        return best

    def _rank(self, regions: RegionMap, post: Posterior, rows: np.ndarray,
              value: np.ndarray) -> np.ndarray:
        """The rank of the pool's rows, given ``value_near``'s."""
        return value


_coords: dict[tuple[int, str], np.ndarray] = {}


class RankedWithDirection(RankedPool):
    """``sumo-pool-16-ranked`` with the direction's term in the rank too, from each item's
    coordinates along the map's main axes (16 more numbers per item)."""

    name = "sumo-pool-16-ranked-dir"
    description = "sumo-pool-16-ranked, the direction's term ranked too (research)"

    def _rank(self, regions: RegionMap, post: Posterior, rows: np.ndarray,
              value: np.ndarray) -> np.ndarray:
        if post.linear_w is None or post.linear < SUPPORT:
            return value
        _, vectors = every_item(self.store)
        key = (id(vectors), regions.version)
        if key not in _coords:
            _coords[key] = linear_basis(regions)(vectors).astype(np.float32)
        y = post.linear_a + _coords[key][rows] @ post.linear_w
        return value + post.linear * np.exp(np.clip(y, *Y_RANGE))


for _policy in (RegionPool, RegionPool8, RegionPool4, PoolOnceFound, PoolWhileSearching,
                PoolForPlaces, RankedPool, RankedWithDirection):
    REGISTRY[_policy.name] = _policy

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
