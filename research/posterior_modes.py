"""More of the posterior's modes, at the wide beam, now that a search costs less.

``sumo`` queries around the blend of its likeliest mode's centres (``likeliest_mode``),
both blends at the store's beam. Before the items' int8 copy, up to three modes' blends
at ``ef`` 512 measured +0.030 mean capture over the six worlds of the 100k tables against
+0.018 for the likeliest alone, at 1.42-1.47x the engine's time (docs/research.md). With
the copy a search at 512 costs about what one at 256 did without it
(``research/bench_quantization.py store``), so this asks again:

- ``sumo-modes``: up to ``MODES`` modes (each the likeliest region not yet in one and
  every region under which its centre is of interest, ``I_h >= MODE_REACH``, holding at
  least ``MODE_MASS`` of the posterior; a blend within ``SAME_COS`` of the whole one is
  not asked), every composed query (the whole blend, the modes', a direction) at
  ``WIDE_EF``;
- ``sumo-mode1-wide``: the likeliest mode only, the same way.

    PYTHONPATH=. python research/posterior_modes.py --world default --items 100000 \\
        --users 24 --paired --vs sumo-modes
    PYTHONPATH=. python research/posterior_modes.py latency --users 4 --steps 30 \\
        --policies sumo,sumo-modes,sumo-mode1-wide
"""

from __future__ import annotations

import sys
from collections.abc import Collection

import numpy as np

from indexer.store.base import Hit, Vector
from recommender.policies import REGISTRY
from recommender.policies import sumo as product
from recommender.policies.evidence import RegionEvidence, interest
from recommender.policies.sumo import SumoPolicy
from recommender.regions import RegionMap, regions_for
from recommender.state import UserState, unit

MODES = 3


def mode_points(regions: RegionMap, probs: np.ndarray, modes: int) -> list[Vector]:
    """One blend per mode of ``probs`` (likeliest first); the first is ``likeliest_mode``."""
    points: list[Vector] = []
    taken = np.zeros(regions.size, dtype=bool)
    for r in np.argsort(-probs, kind="stable"):
        if len(points) == modes:
            break
        if taken[r]:
            continue
        near = interest(regions, regions.centroids @ regions.centroids[r])
        members = (near >= product.MODE_REACH) & ~taken
        members[r] = True
        taken |= members
        if float(probs[members].sum()) < product.MODE_MASS:
            break  # the rest of the mass is spread thinner still
        points.append(unit(probs[members] @ regions.centroids[members]))
    return points


class ModesPolicy(SumoPolicy):
    name = "sumo-modes"
    description = "sumo with up to three modes' blends, composed queries at the wide beam"
    most = MODES
    _modes: list[Vector] = []

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        regions = regions_for(self.store)
        self._modes = []
        if regions is not None:
            ev = RegionEvidence.load(state, regions)
            if not ev.empty:
                self._modes = mode_points(regions, ev.posterior().probs, self.most)
        return super().recommend(state, limit, exclude)

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str], *, mode: Vector | None = None
                    ) -> list[list[Hit]]:
        # The modes ride along as more composed points (the product searches those at
        # WIDE_EF when no mode of its own is asked); their hits join the whole blend's.
        whole = points[0]
        assert not isinstance(whole, int)
        modes = [m for m in self._modes if float(m @ whole) < product.SAME_COS]
        found = super()._neighbours(regions, [*points, *modes], limit, exclude)
        found[0] = found[0] + [h for hits in found[len(points):] for h in hits]
        return found[:len(points)]


class FirstModeWidePolicy(ModesPolicy):
    name = "sumo-mode1-wide"
    description = "sumo-modes with the likeliest mode only (research)"
    most = 1


REGISTRY[ModesPolicy.name] = ModesPolicy
REGISTRY[FirstModeWidePolicy.name] = FirstModeWidePolicy

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "latency":
        import centre_lists  # research/ is on the path when run as a script

        raise SystemExit(centre_lists.main())
    import bench_variants

    raise SystemExit(bench_variants.main())
