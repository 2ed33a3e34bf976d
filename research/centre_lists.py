"""Would nearest-item lists kept per region pay for a wider beam on the composed queries?

``sumo`` sends three kinds of nearest-neighbour query: region centres (the likeliest
region, the cover slot), the posterior's blend of centres, and a broad taste's direction.
The graph answers centres well but the two composed queries poorly at the service's ``ef``
(``research/bench_query_recall.py``), and searching those wider costs ~1.5x the engine's
time (docs/research.md). A centre's nearest items do not change between requests, so they
could be kept with the region map and answered without a search; the time saved could pay
for the wide beam.

This registers ``sumo-lists``: ``sumo`` unchanged, except that its store answers a query
at a region centre from that centre's ``NEAR`` nearest items (found once per map by exact
search, with their vectors; the user's seen items left out; a search when too few are
left) and searches every other query with ``ef`` ``WIDE_EF``. Then it either times both
policies' ``Engine.recommend`` in one process, interleaved, over ``bench_load``'s cached
store, or runs ``bench_variants.py`` with any arguments:

    PYTHONPATH=. python research/centre_lists.py latency --items 100000 --wide-ef 512
    PYTHONPATH=. python research/centre_lists.py variants --policy sumo-lists \
        --world flat --items 100000 --users 12

The store is reached through private attributes (``EdgeStore._params``): a research poke.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Collection, Sequence
from typing import Any, cast

import numpy as np
import qdrant_edge as qe
from numpy.typing import NDArray

from indexer.store import edge as edge_module
from indexer.store.base import Hit, Store, Vector
from indexer.store.edge import EdgeStore
from recommender.policies import REGISTRY
from recommender.policies.sumo import SumoPolicy
from recommender.regions import regions_for

NEAR = 48  # items kept per region centre
WIDE_EF = 1024  # --wide-ef


def edge_of(store: Store) -> EdgeStore:
    while not isinstance(store, EdgeStore):
        store = store.inner  # type: ignore[attr-defined]
    return store


class CentreListsStore:
    """``inner`` (the engine's seen-filtering store), answering centre queries from lists;
    every other call passes through."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.version: str | None = None
        self.centres: NDArray[np.float32] = np.zeros((0, 1), np.float32)
        self.near: list[list[Hit]] = []

    def __getattr__(self, name: str) -> Any:  # everything else as the inner store does
        return getattr(self.inner, name)

    def _lists(self) -> None:
        regions = regions_for(self.inner)
        if regions is None or regions.version == self.version:
            return
        edge = edge_of(self.inner)
        params, edge._params = edge._params, edge_module._EXACT_PARAMS
        try:
            self.near = edge.search_many(list(regions.centroids), NEAR, with_vectors=True)
        finally:
            edge._params = params
        self.centres, self.version = regions.centroids, regions.version

    def search_many(
        self, vectors: Sequence[Vector], limit: int, *, exclude: Collection[str] = (),
        with_vectors: bool = False,
    ) -> list[list[Hit]]:
        self._lists()
        out: list[list[Hit] | None] = []
        composed: list[int] = []
        for k, v in enumerate(vectors):
            sims = self.centres @ np.asarray(v, np.float32)
            c = int(np.argmax(sims)) if len(sims) else -1
            kept = ([h for h in self.near[c] if h.id not in exclude][:limit]
                    if c >= 0 and sims[c] > 0.99999 else [])
            if len(kept) == limit:
                out.append(kept)
            else:
                out.append(None)
                composed.append(k)
        if composed:
            edge = edge_of(self.inner)
            params, edge._params = edge._params, qe.SearchParams(hnsw_ef=WIDE_EF)
            try:
                found = self.inner.search_many([vectors[k] for k in composed], limit,
                                               exclude=exclude, with_vectors=with_vectors)
            finally:
                edge._params = params
            for k, hits in zip(composed, found, strict=True):
                out[k] = hits
        return [hits or [] for hits in out]


class CentreListsPolicy(SumoPolicy):
    name = "sumo-lists"
    description = "sumo, centre queries from per-region lists, composed queries wide (research)"

    def __init__(self, store: Store, rng: np.random.Generator) -> None:
        super().__init__(cast(Store, CentreListsStore(store)), rng)


REGISTRY[CentreListsPolicy.name] = CentreListsPolicy


def latency(items: int, users: int, steps: int) -> None:
    from benchmarks.bench_load import SEED, corpus_and_data
    from recommender import regions
    from recommender.engine import Engine, Observation
    from recommender.sim.users import make_users

    corpus, folder = corpus_and_data(items)
    index = {item_id: k for k, item_id in enumerate(corpus.ids)}
    took: dict[str, list[float]] = {"sumo": [], "sumo-lists": []}
    with EdgeStore(folder) as store:
        store.warm()
        regions.refresh(store)
        engine = Engine(store, default_policy="sumo", seed=SEED)
        for model in ("niche", "broad", "multi"):
            for k, sim in enumerate(make_users(model, corpus, users, seed=SEED)):
                states = {p: engine.new_state(f"{model}-{k}-{p}") for p in took}
                rngs = {p: np.random.default_rng(k) for p in took}
                for step in range(steps):
                    for p in (list(took) if step % 2 == 0 else list(took)[::-1]):
                        t = time.perf_counter()
                        hits = engine.recommend(states[p], 5, p)
                        took[p].append(time.perf_counter() - t)
                        engine.observe(states[p], [
                            Observation(h.id, corpus.vectors[index[h.id]],
                                        sim.dwell_ms(corpus.vectors[index[h.id]], rngs[p]))
                            for h in hits])
    base = float(np.percentile(took["sumo"][10:], 50))
    for p, xs in took.items():
        a = np.asarray(xs[10:])  # the first calls build the lists
        print(f"{p:<11} Engine.recommend(limit 5) p50 {np.percentile(a, 50) * 1e3:.2f} ms "
              f"({np.percentile(a, 50) / base:.2f}x), p90 {np.percentile(a, 90) * 1e3:.2f} ms")


def main() -> int:
    global WIDE_EF
    if "--wide-ef" in sys.argv:
        at = sys.argv.index("--wide-ef")
        WIDE_EF = int(sys.argv[at + 1])
        del sys.argv[at:at + 2]
    if len(sys.argv) > 1 and sys.argv[1] == "variants":
        import bench_variants  # research/ is on the path when run as a script

        sys.argv = [sys.argv[0], *sys.argv[2:]]
        return int(bench_variants.main())
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["latency", "variants"])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=6, help="per taste (niche, broad, multi)")
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    latency(args.items, args.users, args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
