"""Candidates per posterior mode: a query around each separate place the posterior holds.

``sumo`` queries around the posterior's blend of all region centres and around the
likeliest region's centre. When the posterior has two or three separate modes (several
interests, a taste that moved), the blend lies between them, near no item either mode
values, and the likeliest centre serves one mode only: valuing every unseen item
(``research/candidate_pool.py``) gained +0.138 on several interests at 100k items, and
``research/pick_sources.py`` found a third of its picks outside ``sumo``'s candidates
and outside the nearest-item lists of the 64 likeliest regions.

``sumo-modes`` adds, for each of up to ``MODES`` modes holding at least ``MODE_MASS`` of
the posterior, a query around the posterior's blend of that mode's centres: a mode is
the likeliest region not yet in one and every region under which that region's centre is
of interest (``interest >= MODE_REACH``). Its candidates join the blend's; the valuation,
probe and cover are ``sumo``'s:

    PYTHONPATH=. python research/posterior_modes.py --world default --items 100000 \\
        --users 24 --paired --vs sumo-modes
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from indexer.store.base import Hit, Vector
from recommender.policies import REGISTRY
from recommender.policies.evidence import RegionEvidence, interest
from recommender.policies.sumo import SumoPolicy
from recommender.regions import RegionMap, regions_for
from recommender.state import UserState, unit

MODES = 3
MODE_MASS = 0.05
MODE_REACH = 0.5


def mode_points(regions: RegionMap, probs: np.ndarray, modes: int = MODES) -> list[Vector]:
    """One query point per mode of ``probs`` (likeliest first): the blend of its centres."""
    points: list[Vector] = []
    taken = np.zeros(regions.size, dtype=bool)
    for r in np.argsort(-probs, kind="stable"):
        if len(points) == modes:
            break
        if taken[r]:
            continue
        near = interest(regions, (regions.centroids @ regions.centroids[r])[None, :])[0]
        members = (near >= MODE_REACH) & ~taken
        members[r] = True
        taken |= members
        if float(probs[members].sum()) < MODE_MASS:
            break  # the rest of the mass is spread thinner still
        points.append(unit(probs[members] @ regions.centroids[members]))
    return points


class ModesPolicy(SumoPolicy):
    name = "sumo-modes"
    description = "sumo plus a query around each mode of the posterior (research)"
    _modes: list[Vector] = []
    most = MODES

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        regions = regions_for(self.store)
        self._modes = []
        if regions is not None:
            ev = RegionEvidence.load(state, regions)
            if not ev.empty:
                self._modes = mode_points(regions, ev.posterior().probs, self.most)
        return super().recommend(state, limit, exclude)

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str]) -> list[list[Hit]]:
        found = super()._neighbours(regions, [*points, *self._modes], limit, exclude)
        extra = [h for hits in found[len(points):] for h in hits]
        return [found[0] + extra, *found[1:len(points)]]


class ModesOnlyPolicy(ModesPolicy):
    """The modes' blends instead of the whole posterior's blend, when there are any: one
    search fewer per request (the likeliest mode's blend is the overall one's local part)."""

    name = "sumo-modes-only"
    description = "sumo with a query around each mode of the posterior instead of its blend"

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str]) -> list[list[Hit]]:
        if not self._modes:
            return super()._neighbours(regions, points, limit, exclude)
        first, *rest = self._modes
        found = SumoPolicy._neighbours(self, regions, [first, *points[1:], *rest], limit,
                                       exclude)
        extra = [h for hits in found[len(points):] for h in hits]
        return [found[0] + extra, *found[1:len(points)]]


SAME_COS = 0.98  # a mode's blend this near the whole blend finds the same items


class ModesLitePolicy(ModesPolicy):
    """``sumo-modes`` at less cost: a mode's blend within ``SAME_COS`` of the whole
    posterior's blend is left out, and the rest are searched at the store's own beam."""

    name = "sumo-modes-lite"
    description = "sumo-modes without the blends the whole blend already covers (research)"

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str]) -> list[list[Hit]]:
        whole = points[0]
        assert not isinstance(whole, int)
        modes = [m for m in self._modes if float(m @ whole) < SAME_COS]
        found = SumoPolicy._neighbours(self, regions, points, limit, exclude)
        if modes:
            extra = self.store.search_many(modes, limit, exclude=exclude, with_vectors=True)
            found[0] = found[0] + [h for hits in extra for h in hits]
        return found


class FirstModeLitePolicy(ModesLitePolicy):
    name = "sumo-mode1-lite"
    description = "sumo-modes-lite with the likeliest mode only (research)"
    most = 1


REGISTRY[ModesPolicy.name] = ModesPolicy
REGISTRY[FirstModeLitePolicy.name] = FirstModeLitePolicy
REGISTRY[ModesLitePolicy.name] = ModesLitePolicy
REGISTRY[ModesOnlyPolicy.name] = ModesOnlyPolicy

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
