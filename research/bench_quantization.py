"""What do the items' int8 copy and the wider graph build buy the store, and cost ``sumo``?

Edge keeps an int8 copy of every item vector (scalar quantization); the HNSW walk compares
those and the best ``OVERSAMPLING`` x ``limit`` are scored again with the full vectors, and
the graph is built with ``HNSW_EF_CONSTRUCT`` 128 (``indexer/store/common.py``). This
compares that with the same corpus in a store built as before both (no copy,
``ef_construct`` 64):

    PYTHONPATH=. python research/bench_quantization.py store --items 100000
    PYTHONPATH=. python research/bench_quantization.py variants --world default \\
        --items 100000 --users 24 --paired --vs sumo-fullvectors

``store`` builds both stores of ``bench_load``'s corpus one after the other (time to load
and optimize; ``--copy-only`` builds both with today's ``ef_construct``, which
``--ef-construct`` sets for the process), then,
interleaved in this process, times searches (with vectors, 150 ids excluded, ``ef`` 256
and 512) for queries at items and for blends of three items (the kind ``sumo`` composes,
away from every item) with recall@10 against an exact NumPy scan, Qdrant's MMR query,
and ``Engine.recommend`` of ``sumo`` over each. ``variants`` runs ``bench_variants.py``;
``sumo-fullvectors`` is ``sumo`` with every search over the full vectors of the same store
(its graph built with the copy), so a paired run measures what rescoring misses.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

import indexer.store.edge as edge
from indexer.store import common
from indexer.store.base import Hit
from indexer.store.edge import EdgeStore
from recommender.policies import REGISTRY
from recommender.policies.sumo import SumoPolicy
from recommender.state import UserState

_FULL = qe.QuantizationSearchParams(ignore=True)


@contextmanager
def full_vectors(store: EdgeStore) -> Iterator[None]:
    """``store``'s searches over the full vectors (the int8 copy ignored) for a block."""
    kept, beam = store._params, edge._beam
    store._params = qe.SearchParams(hnsw_ef=edge.HNSW_EF_SEARCH, quantization=_FULL)
    edge._beam = lambda ef: qe.SearchParams(hnsw_ef=ef, quantization=_FULL)  # type: ignore[assignment]
    try:
        yield
    finally:
        store._params, edge._beam = kept, beam  # type: ignore[assignment]


class FullVectorsPolicy(SumoPolicy):
    name = "sumo-fullvectors"
    description = "sumo with every search over the full vectors, the int8 copy ignored (research)"

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        store = self.store
        while not isinstance(store, EdgeStore):  # the engine's wrapper around the store
            store = store.inner  # type: ignore[attr-defined]
        with full_vectors(store):
            return super().recommend(state, limit, exclude)


REGISTRY[FullVectorsPolicy.name] = FullVectorsPolicy


@contextmanager
def as_before(ef_construct: int) -> Iterator[None]:
    """Stores created or opened in this block have no int8 copy and a graph built with
    ``ef_construct`` (opening applies the layout, so the block covers that too)."""
    kept = edge._QUANTIZATION, common.HNSW_EF_CONSTRUCT
    edge._QUANTIZATION, common.HNSW_EF_CONSTRUCT = None, ef_construct  # type: ignore[assignment]
    try:
        yield
    finally:
        edge._QUANTIZATION, common.HNSW_EF_CONSTRUCT = kept


def _queries(vectors: np.ndarray, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    at = vectors[rng.choice(len(vectors), n, replace=False)]
    blends = []
    for _ in range(n):
        w = rng.dirichlet(np.ones(3))
        q = w @ vectors[rng.choice(len(vectors), 3, replace=False)]
        blends.append(q / np.linalg.norm(q))
    return {"items": at, "blends": np.asarray(blends, dtype=np.float32)}


def store(items: int, queries: int, ef_construct: int) -> None:
    from benchmarks.bench_load import CLUSTERS, DIM, SEED
    from recommender.sim.corpus import load_corpus, make_corpus

    corpus = make_corpus(items, dim=DIM, clusters=CLUSTERS, seed=SEED)
    root = Path(tempfile.mkdtemp(prefix="sumo-quant-"))
    try:
        built: dict[str, float] = {}
        for name in ("before", "now"):
            t = time.perf_counter()
            with (as_before(ef_construct) if name == "before" else nullcontext(),
                  EdgeStore(root / name) as s):
                load_corpus(s, corpus)
            built[name] = time.perf_counter() - t
        print(f"{items} items x {DIM}: load and optimize {built['before']:.1f} s before "
              f"(no copy, ef_construct {ef_construct}), {built['now']:.1f} s now (the copy, "
              f"ef_construct {common.HNSW_EF_CONSTRUCT}; {built['now'] / built['before']:.2f}x)")
        with as_before(ef_construct):  # opened as it was built: nothing gained
            before = EdgeStore(root / "before")
        with before, EdgeStore(root / "now") as now:
            stores = {"before": before, "now": now}
            _searches(stores, corpus.vectors, corpus.ids, queries)
            _mmr(stores, corpus.vectors, corpus.ids, queries)
            _engines(stores, corpus)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _searches(stores: dict[str, EdgeStore], vectors: np.ndarray, ids: list[str],
              n: int) -> None:
    rng = np.random.default_rng(1)
    excluded = rng.choice(len(vectors), 150, replace=False)
    exclude = [ids[i] for i in excluded]
    row = {x: i for i, x in enumerate(ids)}
    for kind, qs in _queries(vectors, n, rng).items():
        sims = qs @ vectors.T
        sims[:, excluded] = -np.inf
        truth = np.argsort(-sims, axis=1)[:, :10]
        for ef in (256, 512):
            took: dict[str, list[float]] = {k: [] for k in stores}
            recall: dict[str, list[float]] = {k: [] for k in stores}
            for rnd in range(3):
                for j, q in enumerate(qs):
                    order = list(stores) if (j + rnd) % 2 == 0 else list(stores)[::-1]
                    for k in order:
                        t = time.perf_counter()
                        hits = stores[k].search_many([q], 10, exclude=exclude,
                                                     with_vectors=True, ef=ef)[0]
                        took[k].append(time.perf_counter() - t)
                        if rnd == 0:
                            recall[k].append(len({row[h.id] for h in hits} & set(truth[j])) / 10)
            base = float(np.median(took["before"]))
            print(f"{kind:6} ef {ef}: " + "; ".join(
                f"{k} p50 {np.median(took[k]) * 1e3:.2f} ms ({np.median(took[k]) / base:.2f}x) "
                f"recall@10 {np.mean(recall[k]):.3f}" for k in stores))


def _mmr(stores: dict[str, EdgeStore], vectors: np.ndarray, ids: list[str], n: int) -> None:
    """Qdrant's MMR query (``sumo-target``'s), 100 candidates, 10 kept, 150 ids excluded."""
    rng = np.random.default_rng(2)
    exclude = [ids[i] for i in rng.choice(len(vectors), 150, replace=False)]
    qs = vectors[rng.choice(len(vectors), n, replace=False)]
    took: dict[str, list[float]] = {k: [] for k in stores}
    picked: dict[str, list[set[str]]] = {k: [] for k in stores}
    for rnd in range(2):
        for j, q in enumerate(qs):
            for k in list(stores) if (j + rnd) % 2 == 0 else list(stores)[::-1]:
                t = time.perf_counter()
                hits = stores[k].search_mmr(q, 10, candidates=100, exclude=exclude)
                took[k].append(time.perf_counter() - t)
                if rnd == 0:
                    picked[k].append({h.id for h in hits})
    base = float(np.median(took["before"]))
    same = np.mean([len(a & b) / 10 for a, b in zip(picked["before"], picked["now"], strict=True)])
    print("mmr    ef 256: " + "; ".join(
        f"{k} p50 {np.median(took[k]) * 1e3:.2f} ms ({np.median(took[k]) / base:.2f}x)"
        for k in stores) + f"; the same picks {same:.2f}")


def _engines(stores: dict[str, EdgeStore], corpus: Any) -> None:
    from benchmarks.bench_load import SEED
    from recommender import regions
    from recommender.engine import Engine, Observation
    from recommender.sim.users import make_users

    index = {x: k for k, x in enumerate(corpus.ids)}
    engines = {}
    for k, s in stores.items():
        regions.refresh(s)
        engines[k] = Engine(s, default_policy="sumo", seed=SEED)
        engines[k].warm()
    took: dict[str, list[float]] = {k: [] for k in stores}
    for model in ("niche", "broad", "multi"):
        for u, sim in enumerate(make_users(model, corpus, 4, seed=SEED)):
            states = {k: engines[k].new_state(f"{model}-{u}") for k in stores}
            rngs = {k: np.random.default_rng(u) for k in stores}
            for step in range(30):
                for k in (list(stores) if step % 2 == 0 else list(stores)[::-1]):
                    t = time.perf_counter()
                    hits = engines[k].recommend(states[k], 5)
                    took[k].append(time.perf_counter() - t)
                    engines[k].observe(states[k], [
                        Observation(h.id, corpus.vectors[index[h.id]],
                                    sim.dwell_ms(corpus.vectors[index[h.id]], rngs[k]))
                        for h in hits])
    base = float(np.median(took["before"]))
    print("Engine.recommend(sumo, limit 5), 12 users x 30 steps: " + "; ".join(
        f"{k} p50 {np.median(v) * 1e3:.2f} ms ({np.median(v) / base:.2f}x), "
        f"p90 {np.percentile(v, 90) * 1e3:.2f} ms" for k, v in took.items()))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "variants":
        import bench_variants  # research/ is on the path when run as a script

        sys.argv = [sys.argv[0], *sys.argv[2:]]
        return int(bench_variants.main())
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["store", "variants"])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200, help="per kind")
    ap.add_argument("--copy-only", action="store_true",
                    help="build the store before with today's ef_construct (the copy alone)")
    ap.add_argument("--ef-construct", type=int, default=common.HNSW_EF_CONSTRUCT,
                    help="today's build beam for this process (a research poke)")
    args = ap.parse_args()
    common.HNSW_EF_CONSTRUCT = args.ef_construct
    store(args.items, args.queries, args.ef_construct if args.copy_only else 64)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
