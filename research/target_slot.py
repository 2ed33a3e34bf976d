"""Once the search has found its region, is the optimiser's target worth one slot?

``sumo`` keeps learning its target from pairs but picks every item by the region
posterior, whose model is centred on region centres: on a continuous surface (the
``manifold`` worlds) a narrow taste lies between them, where pairs could still point.
This registers ``sumo-target-slot``: once the search is done and the target orders
held-out pairs reliably (confidence at least ``MIN_CONFIDENCE``), the first slot of a
batch shows the unseen item nearest the target:

    PYTHONPATH=. python research/target_slot.py --world manifold:lognormal --items 10000 \\
        --users 24 --exact --paired --vs sumo-target-slot
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

MIN_CONFIDENCE = 0.5


class TargetSlot(SumoPolicy):
    name = "sumo-target-slot"
    description = "sumo with one slot for the target's nearest once found (research)"
    _searching: bool | None = None  # this request's phase (None: no region search ran)

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str], *, mode: Vector | None = None
                    ) -> list[list[Hit]]:
        self._searching = searching(points)
        return super()._neighbours(regions, points, limit, exclude, mode=mode)

    def _wanted(self, state: UserState, limit: int) -> bool:
        """Whether this request gives the target a slot."""
        return (self._searching is False and limit >= 2
                and self.confidence(state) >= MIN_CONFIDENCE)

    @staticmethod
    def _placed(near: Hit, hits: list[Hit], limit: int) -> list[Hit]:
        return [near, *hits[:limit - 1]]

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        self._searching = None
        hits = super().recommend(state, limit, exclude)
        if state.target is None or not self._wanted(state, limit):
            return hits
        near = self.store.search(state.target, 1,
                                 exclude=excluding(exclude, {h.id for h in hits}))
        return self._placed(near[0], hits, limit) if near else hits


REGISTRY[TargetSlot.name] = TargetSlot

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
