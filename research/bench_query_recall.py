"""How well does the HNSW index answer the queries ``sumo`` actually sends?

The store's recall is measured on item-like queries (``benchmarks/bench_store.py``: 0.99 at
``ef`` 256). ``sumo`` also sends queries it composes: the posterior's mean direction (a
blend of region centres, first in every request) and, for a broad taste, a direction
through the collection. Those lie away from every item, where a graph search's greedy
descent stops early. This builds a world's corpus into an Edge store and prints, per kind
of query, recall@10 against exact search and the p50 time per query, for each search
``ef``:

    PYTHONPATH=. python research/bench_query_recall.py --world default --items 100000
    PYTHONPATH=. python research/bench_query_recall.py --world manifold:lognormal --ef 256,512,1024
    PYTHONPATH=. python research/bench_query_recall.py --ef-construct 256   # a denser graph

Kinds: ``items`` (random items), ``centres`` (the region map's centres, as the probe and
likeliest-centre queries), ``blends sparse`` / ``blends dense`` (unit mean of the centres
under Dirichlet weights of concentration 0.05 / 0.3: a posterior on a few regions, or
spread over many), ``directions`` (random directions in the span of the map's main axes,
as the direction hypothesis' query). ``--ef-construct`` sets the store module's build
beam for this process (a research poke, not a product setting).

For the blends it also asks whether ``sumo``'s centre lists (``recommender.centres``: each
region's 48 nearest items) could answer them: recall@10 of the exact nearest among the
union of the lists of the ``--lists`` regions weighted most in the blend.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numpy.typing import NDArray

from indexer.store import common
from indexer.store.edge import EdgeStore
from recommender import centres
from recommender.policies.evidence import linear_basis
from recommender.regions import refresh, regions_for
from recommender.sim.harness import store_of
from recommender.sim.worlds import world

K = 10


def queries(store: EdgeStore, corpus_vectors: NDArray[np.float32], n: int, seed: int,
            weights: dict[str, NDArray[np.float64]]) -> dict[str, NDArray[np.float32]]:
    """Queries per kind; ``weights`` gets each blend kind's weights over the regions."""
    rng = np.random.default_rng(seed)
    refresh(store)
    regions = regions_for(store)
    if regions is None:
        raise SystemExit("the corpus is too small for a region map")
    centres = regions.centroids

    def unit_rows(x: NDArray[np.float64]) -> NDArray[np.float32]:
        return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), np.float32)

    def blends(kind: str, concentration: float) -> NDArray[np.float32]:
        weights[kind] = rng.dirichlet(np.full(len(centres), concentration), size=n)
        return unit_rows(weights[kind] @ centres)

    axes = linear_basis(regions).axes
    return {
        "items": corpus_vectors[rng.integers(0, len(corpus_vectors), n)],
        "centres": centres[rng.choice(len(centres), size=min(n, len(centres)), replace=False)],
        "blends sparse": blends("blends sparse", 0.05),
        "blends dense": blends("blends dense", 0.3),
        "directions": unit_rows(rng.standard_normal((n, len(axes))) @ axes),
    }


def from_lists(store: EdgeStore, q: NDArray[np.float32], w: NDArray[np.float64], top: int
               ) -> list[str]:
    """The ``K`` items nearest ``q`` among the centre lists of the ``top`` regions with
    the largest weights ``w``."""
    regions = regions_for(store)
    assert regions is not None
    lists = centres.lists_for(store, regions)
    assert lists is not None
    hits = {h.id: h for r in np.argsort(-w)[:top] for h in lists.near[int(r)]}
    ids = list(hits)
    x = np.stack([np.asarray(hits[i].vector, np.float32) for i in ids])
    return [ids[k] for k in np.argsort(-(x @ q))[:K]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", default="default")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=100, help="per kind")
    ap.add_argument("--ef", default="256,1024", help="comma-separated search ef values")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lists", type=int, default=8,
                    help="regions whose centre lists are searched for a blend")
    ap.add_argument("--ef-construct", type=int, default=common.HNSW_EF_CONSTRUCT,
                    help="the graph's build beam (the product's by default)")
    args = ap.parse_args()
    efs = [int(x) for x in args.ef.split(",")]
    # ``EdgeStore._items_config`` reads the build beam when a store is built.
    common.HNSW_EF_CONSTRUCT = args.ef_construct
    t0 = time.perf_counter()
    corpus = world(args.world).make_corpus(args.items, args.seed)
    built = time.perf_counter()
    with store_of(corpus) as store:
        built = time.perf_counter() - built
        assert isinstance(store, EdgeStore)
        weights: dict[str, NDArray[np.float64]] = {}
        kinds = queries(store, corpus.vectors, args.queries, args.seed, weights)
        found: dict[tuple[str, int], list[list[str]]] = {}
        took: dict[tuple[str, int], list[float]] = {}
        truth: dict[str, list[list[str]]] = {}
        listed: dict[str, list[list[str]]] = {}
        for kind, qs in kinds.items():
            truth[kind] = [[h.id for h in store.search(q, K, exact=True)] for q in qs]
            for ef in efs:
                found[kind, ef], took[kind, ef] = [], []
            for q in qs:
                for ef in efs:  # interleaved: the machine's drift hits every ef alike
                    t = time.perf_counter()
                    hits = store.search(q, K, ef=ef)
                    took[kind, ef].append(time.perf_counter() - t)
                    found[kind, ef].append([h.id for h in hits])
            if kind in weights:
                listed[kind] = [from_lists(store, q, w, args.lists)
                                for q, w in zip(qs, weights[kind], strict=True)]
    print(f"{args.world}, {args.items} items (loaded and indexed in {built:.0f} s, "
          f"ef_construct {args.ef_construct}), {args.queries} queries per kind, "
          f"recall@{K} against exact search, p50 ms per query")
    def recall(got: list[list[str]], kind: str) -> float:
        return float(np.mean([len(set(a) & set(b)) / K
                              for a, b in zip(got, truth[kind], strict=True)]))

    print(f"{'kind':<15}" + "".join(f"{'ef ' + str(ef):>22}" for ef in efs)
          + f"{'lists of top ' + str(args.lists):>18}")
    for kind in kinds:
        row = f"{kind:<15}"
        for ef in efs:
            row += f"{recall(found[kind, ef], kind):>12.2f} "
            row += f"{np.median(took[kind, ef]) * 1e3:>6.2f} ms"
        if kind in listed:
            row += f"{recall(listed[kind], kind):>18.2f}"
        print(row)
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
