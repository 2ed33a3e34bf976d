"""A request for more than ``sumo``'s batch of 5: how should the rest be chosen?

``sumo``'s slots (one probe of the likeliest region, one cover of the least-touched, the
rest by posterior-expected dwell) were set with batches of 5; asked for 10, it fills eight
slots greedily, mostly from one region, and batches of 10 captured -0.031 / -0.042 /
-0.102 against batches of 5 on the three tuning worlds (docs/recommender.md, "What a
client gets"). Two ways to fill what a request asks beyond 5, the first 5 unchanged:

- ``sumo-subbatch``: as a second request that brings no new dwell (the first five count
  as seen): its own probe, cover and greedy picks;
- ``sumo-sampled``: one item per region drawn from the posterior (without replacement),
  the item nearest its centre (Thompson sampling over regions for the extra slots).

    PYTHONPATH=. python research/large_batches.py --world default --items 10000 \\
        --users 24 --exact --batch 10 --paired --vs sumo-subbatch
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from indexer.store.base import Hit
from recommender.centres import lists_for
from recommender.exclusion import excluding
from recommender.policies import REGISTRY
from recommender.policies.evidence import RegionEvidence
from recommender.policies.sumo import SumoPolicy
from recommender.regions import regions_for
from recommender.state import UserState

BATCH = 5  # what sumo's slots were set for


class BeyondFive(SumoPolicy):
    """``sumo``'s batch of 5 first; what a request asks beyond it, ``rest``'s way."""

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        first = super().recommend(state, min(limit, BATCH), exclude)
        if limit <= BATCH:
            return first
        return first + self.rest(state, limit - BATCH, excluding(exclude, {h.id for h in first}))

    def rest(self, state: UserState, n: int, exclude: Collection[str]) -> list[Hit]:
        raise NotImplementedError


class SubBatch(BeyondFive):
    name = "sumo-subbatch"
    description = "sumo; beyond 5 items, a second batch as if asked again (research)"

    def rest(self, state: UserState, n: int, exclude: Collection[str]) -> list[Hit]:
        return self.recommend(state, n, exclude)


class Sampled(BeyondFive):
    name = "sumo-sampled"
    description = "sumo; beyond 5 items, posterior-sampled regions' nearest (research)"

    def rest(self, state: UserState, n: int, exclude: Collection[str]) -> list[Hit]:
        out: list[Hit] = []
        taken: set[str] = set()
        regions = regions_for(self.store)
        lists = lists_for(self.store, regions) if regions is not None else None
        ev = RegionEvidence.load(state, regions) if regions is not None else None
        if lists is not None and ev is not None and not ev.empty:
            p = ev.posterior().probs
            p = p / p.sum()
            draws = min(int(np.count_nonzero(p)), 4 * (n + BATCH))
            for r in self.rng.choice(len(p), size=draws, replace=False, p=p):
                if len(out) == n:
                    break
                got = lists.answer(int(r), 1, excluding(exclude, taken))
                if got:
                    out.append(got[0])
                    taken.add(got[0].id)
        if len(out) < n:  # no map, no evidence yet, or too few drawn
            out += SumoPolicy.recommend(self, state, n - len(out), excluding(exclude, taken))
        return out


REGISTRY[SubBatch.name] = SubBatch
REGISTRY[Sampled.name] = Sampled

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
