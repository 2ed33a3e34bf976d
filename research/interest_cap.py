"""Should interest keep rising past a region's ``top`` similarity?

``recommender.policies.evidence.interest`` clips its graded share at 1 for items as close
to a region's centre as the collection's nearest ``TOP_FRACTION``: under the likeliest
region, every item that close is worth the same, and the order among them is left to the
other regions' small shares. This registers ``sumo-cap-Z`` (Z = 1.5, 2, 3): the same policy
with the graded share clipped at Z instead (its model, sums and valuation alike), run
beside the product over the same store and users:

    PYTHONPATH=. python research/interest_cap.py --world default --items 10000 \\
        --users 24 --exact --paired --vs sumo-cap-1.5 --seed 1
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
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


Interest = Callable[[RegionMap, NDArray[np.float32]], NDArray[np.float64]]


def capped(cap: float) -> Interest:
    """The product's ``interest`` with its graded share clipped at ``cap`` (>= 1), not 1."""
    def interest(regions: RegionMap, sims: NDArray[np.float32]) -> NDArray[np.float64]:
        z = (sims - regions.median) / (regions.top - regions.median)
        # GRADED * (clip(z, 0, cap) - clip(z, 0, 1)): only past the product's cap differs.
        return _product(regions, sims) + evidence.GRADED * (np.clip(z, 1.0, cap) - 1.0)
    return interest


@contextmanager
def swapped(fn: Interest) -> Iterator[None]:
    # The study swaps the product's module function for the run of one call.
    evidence.interest = sumo.interest = fn  # type: ignore[assignment]
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
