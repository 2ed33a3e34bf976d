"""While the search goes on and on, is the optimiser's target worth one slot?

A very noisy user's dwells send the region posterior after single long looks (a region
that explains one spike with a large lift gains more than the rest), so ``sumo`` may still
be searching after dozens of views, while the target, learned from every pair of views,
keeps turning toward the taste (``research/diagnose_sumo.py --models noisy --trace
noisy:1``: its cosine to the hidden taste 0.25 at view 5, 0.6 from view 35, in a region
the posterior never led with). This registers ``sumo-target-searching``: once ``AFTER``
views are in and the search still runs, with the target ordering held-out pairs at least
``MIN_CONFIDENCE``, the last slot of a batch shows the unseen item nearest the target:

    PYTHONPATH=. python research/target_searching.py --world default --items 10000 \\
        --users 24 --exact --paired --vs sumo-target-searching
"""

from __future__ import annotations

from collections.abc import Collection

from candidate_pool import searching  # research/ is on the path as a script

from indexer.store.base import Hit, Vector
from recommender.exclusion import excluding
from recommender.policies import REGISTRY
from recommender.policies.sumo import SumoPolicy
from recommender.regions import RegionMap
from recommender.state import UserState

AFTER = 30
MIN_CONFIDENCE = 0.3


class TargetWhileSearching(SumoPolicy):
    name = "sumo-target-searching"
    description = "sumo with one slot for the target's nearest while a long search runs (research)"
    _searching = False

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str], *, mode: Vector | None = None
                    ) -> list[list[Hit]]:
        self._searching = searching(points)
        return super()._neighbours(regions, points, limit, exclude, mode=mode)

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        self._searching = False
        hits = super().recommend(state, limit, exclude)
        target = state.target
        if (not self._searching or target is None or limit < 3 or state.events < AFTER
                or self.confidence(state) < MIN_CONFIDENCE):
            return hits
        near = self.store.search(target, 1, exclude=excluding(exclude, {h.id for h in hits}))
        if not near:
            return hits
        return [*hits[:limit - 1], near[0]]


REGISTRY[TargetWhileSearching.name] = TargetWhileSearching

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
