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
as the direction hypothesis' query). The ``ef`` is set on the open store's private search
parameters, and ``--ef-construct`` sets the store module's build beam for this process:
research pokes, not product settings.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import qdrant_edge as qe
from numpy.typing import NDArray

from indexer.store import edge
from indexer.store.edge import EdgeStore
from recommender.policies.evidence import linear_basis
from recommender.regions import refresh, regions_for
from recommender.sim.harness import store_of
from recommender.sim.worlds import world

K = 10


def queries(store: EdgeStore, corpus_vectors: NDArray[np.float32], n: int, seed: int
            ) -> dict[str, NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    refresh(store)
    regions = regions_for(store)
    if regions is None:
        raise SystemExit("the corpus is too small for a region map")
    centres = regions.centroids

    def unit_rows(x: NDArray[np.float64]) -> NDArray[np.float32]:
        return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), np.float32)

    def blends(concentration: float) -> NDArray[np.float32]:
        p = rng.dirichlet(np.full(len(centres), concentration), size=n)
        return unit_rows(p @ centres)

    axes = linear_basis(regions).axes
    return {
        "items": corpus_vectors[rng.integers(0, len(corpus_vectors), n)],
        "centres": centres[rng.choice(len(centres), size=min(n, len(centres)), replace=False)],
        "blends sparse": blends(0.05),
        "blends dense": blends(0.3),
        "directions": unit_rows(rng.standard_normal((n, len(axes))) @ axes),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", default="default")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=100, help="per kind")
    ap.add_argument("--ef", default="256,1024", help="comma-separated search ef values")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ef-construct", type=int, default=edge.HNSW_EF_CONSTRUCT,
                    help="the graph's build beam (the product's by default)")
    args = ap.parse_args()
    efs = [int(x) for x in args.ef.split(",")]
    # ``EdgeStore._items_config`` reads the build beam when a store is built.
    edge.HNSW_EF_CONSTRUCT = args.ef_construct
    t0 = time.perf_counter()
    corpus = world(args.world).make_corpus(args.items, args.seed)
    built = time.perf_counter()
    with store_of(corpus) as store:
        built = time.perf_counter() - built
        assert isinstance(store, EdgeStore)
        kinds = queries(store, corpus.vectors, args.queries, args.seed)
        found: dict[tuple[str, int], list[list[str]]] = {}
        took: dict[tuple[str, int], list[float]] = {}
        truth: dict[str, list[list[str]]] = {}
        for kind, qs in kinds.items():
            store._params = edge._EXACT_PARAMS
            truth[kind] = [[h.id for h in store.search(q, K)] for q in qs]
            for ef in efs:
                found[kind, ef], took[kind, ef] = [], []
            for q in qs:
                for ef in efs:  # interleaved: the machine's drift hits every ef alike
                    store._params = qe.SearchParams(hnsw_ef=ef)
                    t = time.perf_counter()
                    hits = store.search(q, K)
                    took[kind, ef].append(time.perf_counter() - t)
                    found[kind, ef].append([h.id for h in hits])
    print(f"{args.world}, {args.items} items (loaded and indexed in {built:.0f} s, "
          f"ef_construct {args.ef_construct}), {args.queries} queries per kind, "
          f"recall@{K} against exact search, p50 ms per query")
    print(f"{'kind':<15}" + "".join(f"{'ef ' + str(ef):>22}" for ef in efs))
    for kind in kinds:
        row = f"{kind:<15}"
        for ef in efs:
            recall = np.mean([len(set(a) & set(b)) / K
                              for a, b in zip(found[kind, ef], truth[kind], strict=True)])
            row += f"{recall:>12.2f} {np.median(took[kind, ef]) * 1e3:>6.2f} ms"
        print(row)
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
