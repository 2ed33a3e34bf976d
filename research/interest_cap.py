"""Should interest keep rising past a region's ``top`` similarity?

``recommender.policies.evidence.interest`` clips its graded share at 1 for items as close
to a region's centre as the collection's nearest ``TOP_FRACTION``: under the likeliest
region, every item that close is worth the same, and the order among them is left to the
other regions' small shares. This registers ``sumo-cap-Z`` (Z = 1.5, 2): the same policy
with the graded share clipped at Z instead (its model, sums and valuation alike), run
beside the product over the same store and users:

    PYTHONPATH=. python research/interest_cap.py --world default --items 10000 \\
        --users 24 --exact --paired --vs sumo-cap-1.5 --seed 1
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from numpy.typing import NDArray

import recommender.policies.evidence as evidence
import recommender.policies.sumo as sumo
from indexer.store.base import Hit, Vector
from recommender.policies import REGISTRY
from recommender.policies.base import Scored
from recommender.regions import RegionMap
from recommender.state import UserState

_product = evidence.interest


def capped(cap: float):  # type: ignore[no-untyped-def]
    def interest(regions: RegionMap, sims: NDArray[np.float32]) -> NDArray[np.float64]:
        z = (sims - regions.median) / (regions.top - regions.median)
        step = 1.0 / (1.0 + np.exp(-evidence.SHARPNESS * (z - evidence.KNEE)))
        return np.asarray(evidence.GRADED * np.clip(z, 0.0, cap)
                          + (1.0 - evidence.GRADED) * step, np.float64)
    return interest


@contextmanager
def swapped(fn) -> Iterator[None]:  # type: ignore[no-untyped-def]
    evidence.interest = sumo.interest = fn
    try:
        yield
    finally:
        evidence.interest = sumo.interest = _product


def variant(cap: float) -> type[sumo.SumoPolicy]:
    fn = capped(cap)

    class Capped(sumo.SumoPolicy):
        name = f"sumo-cap-{cap:g}"
        description = f"sumo with interest's graded share clipped at {cap:g} (research)"

        def update(self, state: UserState, batch: Sequence[Scored]) -> None:
            with swapped(fn):
                super().update(state, batch)

        def recommend(self, state: UserState, limit: int, exclude: Collection[str]
                      ) -> list[Hit]:
            with swapped(fn):
                return super().recommend(state, limit, exclude)

        def seed(self, state: UserState, vectors: Sequence[Vector]) -> None:
            with swapped(fn):
                super().seed(state, vectors)

    return Capped


for _cap in (1.5, 2.0, 3.0):
    _policy = variant(_cap)
    REGISTRY[_policy.name] = _policy

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
