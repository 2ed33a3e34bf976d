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

from target_slot import TargetSlot  # research/ is on the path as a script

from indexer.store.base import Hit
from recommender.policies import REGISTRY
from recommender.state import UserState

AFTER = 30
MIN_CONFIDENCE = 0.3


class TargetWhileSearching(TargetSlot):
    name = "sumo-target-searching"
    description = "sumo with one slot for the target's nearest while a long search runs (research)"

    def _wanted(self, state: UserState, limit: int) -> bool:
        return (self._searching is True and limit >= 3 and state.events >= AFTER
                and self.confidence(state) >= MIN_CONFIDENCE)

    @staticmethod
    def _placed(near: Hit, hits: list[Hit], limit: int) -> list[Hit]:
        return [*hits[:limit - 1], near]


REGISTRY[TargetWhileSearching.name] = TargetWhileSearching

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
