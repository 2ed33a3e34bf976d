"""Where do the items a perfect candidate generator picks come from?

``sumo-all`` (``research/candidate_pool.py``) values every unseen item and gained most at
100k items on several interests and drifting tastes. This runs it and, for every item it
shows, asks where a cheap generator could have found it: among ``sumo``'s own candidates
(the queries' nearest), or in the in-memory list of nearest items (``recommender.centres``)
of one of the ``R`` likeliest regions, for R = 1, 4, 16, 64. If most picks sit in the
lists of a few likely regions, valuing those lists is as good as valuing everything:

    PYTHONPATH=. python research/pick_sources.py --world default --items 100000 \\
        --users 6 --models multi,drift,broad
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Collection

import numpy as np
from candidate_pool import EveryItemPolicy  # research/ is on the path as a script

from indexer.store.base import Hit, Vector
from recommender.centres import lists_for
from recommender.policies import REGISTRY
from recommender.policies.evidence import RegionEvidence
from recommender.regions import RegionMap, regions_for
from recommender.sim.bench import bench_seed
from recommender.sim.harness import store_of
from recommender.sim.runner import run_user
from recommender.sim.worlds import world
from recommender.state import UserState

RANKS = (1, 4, 16, 64)
tally: Counter[str] = Counter()


class TallyingPolicy(EveryItemPolicy):
    name = "sumo-all-tally"
    description = "sumo-all, counting where its picks could have come from (research)"
    _normal: set[str] = set()

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str], *, mode: Vector | None = None
                    ) -> list[list[Hit]]:
        normal = super(EveryItemPolicy, self)._neighbours(regions, points, limit, exclude,
                                                          mode=mode)
        self._normal = {h.id for hits in normal for h in hits}
        return super()._neighbours(regions, points, limit, exclude, mode=mode)

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        self._normal = set()
        hits = super().recommend(state, limit, exclude)
        regions = regions_for(self.store)
        lists = lists_for(self.store, regions) if regions is not None else None
        if regions is None or lists is None or not self._normal:
            return hits
        ev = RegionEvidence.load(state, regions)
        order = np.argsort(-ev.posterior().probs, kind="stable")
        listed = [{h.id for h in lists.near[int(r)]} for r in order[:max(RANKS)]]
        for h in hits:
            tally["picks"] += 1
            tally["sumo's candidates"] += h.id in self._normal
            for r in RANKS:
                tally[f"lists of top {r}"] += any(h.id in s for s in listed[:r])
            tally["either, top 16"] += h.id in self._normal or any(
                h.id in s for s in listed[:16])
        return hits


REGISTRY[TallyingPolicy.name] = TallyingPolicy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", default="default")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=6)
    ap.add_argument("--models", default="multi,drift,broad,niche")
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    w = world(args.world)
    corpus = w.make_corpus(args.items, args.seed)
    with store_of(corpus) as store:
        for model in args.models.split(","):
            tally.clear()
            for i, user in enumerate(w.make_users(model, corpus, args.users, seed=args.seed)):
                run_user(store, corpus, user, i, TallyingPolicy.name, horizon=args.horizon,
                         batch=5, seed=bench_seed(args.seed, i))
            n = max(tally["picks"], 1)
            cells = ", ".join(f"{k} {tally[k] / n:.2f}" for k in tally if k != "picks")
            print(f"{args.world} {model}: {n} picks | {cells}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
