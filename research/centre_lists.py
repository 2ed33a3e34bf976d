"""What do the centre lists and the wide beam buy ``sumo``, and what do they cost?

``sumo`` answers region-centre queries from per-process lists of each centre's nearest
items (``recommender.centres``) and searches the queries it composes per request (the
posterior's blend of centres, a broad taste's direction) with ``ef`` ``WIDE_EF``
(``recommender.policies.sumo``). This registers ``sumo-searched``: ``sumo`` with every
query searched at the store's own beam, as it was before either, and variants the
lists make cheaper: ``sumo-2centres`` (a second likeliest centre) and
``sumo-20candidates`` (20 candidates per query point), ``sumo-20lists`` (20 from each
centre's list, 10 from each search), ``sumo-4centres`` (the four likeliest centres),
and ``sumo-nomode`` (no query around the likeliest mode's blend: ``sumo`` as it was).
Then it either times these policies' ``Engine.recommend`` in one process, interleaved
(``--policies`` picks some), over ``bench_load``'s cached
store, or measures what finding the lists takes, or runs ``bench_variants.py`` with any
arguments:

    PYTHONPATH=. python research/centre_lists.py latency --items 100000
    PYTHONPATH=. python research/centre_lists.py build     # time and memory of the lists
    PYTHONPATH=. python research/centre_lists.py variants --policy sumo-searched \\
        --world flat --items 100000 --users 12

``--set WIDE_EF=N`` (``bench_variants.py``) tries another beam with the lists kept.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Collection

import numpy as np
from variants import study_policy

from indexer.store.base import Hit, Vector
from indexer.store.edge import EdgeStore
from recommender import centres
from recommender.policies import REGISTRY
from recommender.policies.sumo import SumoPolicy
from recommender.regions import RegionMap


class SearchedPolicy(SumoPolicy):
    name = "sumo-searched"
    description = "sumo with every query searched at the store's beam (research)"

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str], *, mode: Vector | None = None
                    ) -> list[list[Hit]]:
        queries = [*points, *([] if mode is None else [mode])]
        return self.store.search_many(
            [regions.centroids[q] if isinstance(q, int) else q for q in queries], limit,
            exclude=exclude, with_vectors=True)

    def warm(self) -> None:
        pass


class ListsWiderPolicy(SumoPolicy):
    """Twice the candidates from the centre lists (free), as many as ``sumo`` from searches."""

    name = "sumo-20lists"
    description = "sumo with 2 x CANDIDATES from each centre's list (research)"

    @staticmethod
    def _listed(lists: centres.CentreLists | None, region: int, limit: int,
                exclude: Collection[str]) -> list[Hit] | None:
        return SumoPolicy._listed(lists, region, 2 * limit, exclude)


REGISTRY[SearchedPolicy.name] = SearchedPolicy
REGISTRY[ListsWiderPolicy.name] = ListsWiderPolicy
# A second likeliest centre (once a query, now an answer from the lists), the four
# likeliest (30 more candidates valued, no query), 20 candidates per query point (free
# from the lists, twice as many from a search).
study_policy("sumo-2centres", "sumo with CENTRES = 2 (research)", CENTRES=2)
study_policy("sumo-4centres", "sumo with CENTRES = 4 (research)", CENTRES=4)
study_policy("sumo-20candidates", "sumo with CANDIDATES = 20 (research)", CANDIDATES=20)
# No mode ever holds more than the whole posterior: the likeliest mode is never queried.
study_policy("sumo-nomode", "sumo without the likeliest mode's query (research)",
             MODE_MASS=2.0)


POLICIES = ["sumo-searched", "sumo", "sumo-2centres", "sumo-20candidates", "sumo-20lists",
            "sumo-4centres", "sumo-nomode"]


def latency(items: int, users: int, steps: int, policies: list[str]) -> None:
    from benchmarks.bench_load import SEED, corpus_and_data
    from recommender import regions
    from recommender.engine import Engine, Observation
    from recommender.sim.users import make_users

    corpus, folder = corpus_and_data(items)
    index = {item_id: k for k, item_id in enumerate(corpus.ids)}
    took: dict[str, list[float]] = {p: [] for p in ["sumo-searched", *policies]}
    order = list(took)
    with EdgeStore(folder) as store:
        store.warm()
        regions.refresh(store)
        engine = Engine(store, default_policy="sumo", seed=SEED)
        engine.warm()
        for model in ("niche", "broad", "multi"):
            for k, sim in enumerate(make_users(model, corpus, users, seed=SEED)):
                states = {p: engine.new_state(f"{model}-{k}-{p}") for p in took}
                rngs = {p: np.random.default_rng(k) for p in took}
                for step in range(steps):
                    for p in (order if step % 2 == 0 else order[::-1]):
                        t = time.perf_counter()
                        hits = engine.recommend(states[p], 5, p)
                        took[p].append(time.perf_counter() - t)
                        engine.observe(states[p], [
                            Observation(h.id, corpus.vectors[index[h.id]],
                                        sim.dwell_ms(corpus.vectors[index[h.id]], rngs[p]))
                            for h in hits])
    base = float(np.percentile(took["sumo-searched"], 50))
    for p, xs in took.items():
        a = np.asarray(xs)
        print(f"{p:<13} Engine.recommend(limit 5) p50 {np.percentile(a, 50) * 1e3:.2f} ms "
              f"({np.percentile(a, 50) / base:.2f}x), p90 {np.percentile(a, 90) * 1e3:.2f} ms")


def build(items: int) -> None:
    """Time and memory of finding the lists once (``engine.warm()`` at a service's start):
    timed twice, then once under ``tracemalloc`` for what they keep."""
    import tracemalloc

    from benchmarks.bench_load import corpus_and_data
    from recommender import regions

    _, folder = corpus_and_data(items)
    with EdgeStore(folder) as store:
        store.warm()
        m = regions.refresh(store)
        assert m is not None
        for _ in range(2):
            t = time.perf_counter()
            centres._found(store, m, store.revision)
            print(f"lists of {m.size} regions x {centres.NEAR} items over {items} items: "
                  f"{time.perf_counter() - t:.2f} s")
        tracemalloc.start()
        kept = centres._found(store, m, store.revision)
        print(f"kept {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MB "
              f"({sum(len(n) for n in kept.near)} items with vectors)")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "variants":
        import bench_variants  # research/ is on the path when run as a script

        sys.argv = [sys.argv[0], *sys.argv[2:]]
        return int(bench_variants.main())
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["latency", "build", "variants"])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=6, help="per taste (niche, broad, multi)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--policies", default=",".join(POLICIES[1:]),
                    help="latency: policies timed beside sumo-searched, comma-separated")
    args = ap.parse_args()
    if args.what == "build":
        build(args.items)
    else:
        latency(args.items, args.users, args.steps,
                [p for p in args.policies.split(",") if p != "sumo-searched"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
