"""Store benchmark: k=10 search excluding 500 ids, MMR and recommend, per backend.

Synthetic clustered unit vectors (default 100k × 512, 200 clusters). For each backend it
prints load time and p50/p99 latencies, and the ratio of each p50 to a brute-force NumPy
search over the same vectors measured in the same process (the baseline that does not
depend on the machine's speed). It also reports recall@10 of the search against NumPy.

qdrant-client's local mode scans in Python (about 2 s per query at 100k), so it runs at
``--local-n`` (10k by default) with its own NumPy baseline at that size, and with
``--local-queries`` queries.

    python -m benchmarks.bench_store                 # the documented run
    python -m benchmarks.bench_store --n 20000 --queries 50 --local-n 2000   # quick look
    python -m benchmarks.bench_store --skip-edge --local-n 100000 --local-queries 5
"""

from __future__ import annotations

import os

# A single-threaded BLAS baseline: on a busy 2-core machine a threaded one spins and
# swings by 30x from run to run, which would make every ratio meaningless.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np  # noqa: E402 - after the thread settings above

from indexer.store.base import CollectionSpec, FeedbackPair, Item, RecommendStrategy, Store
from indexer.store.edge import EdgeStore
from indexer.store.server import ServerStore


def corpus(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    x = centers[rng.integers(0, clusters, n)] + 0.08 * rng.standard_normal((n, dim)).astype(
        np.float32
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def ids_for(n: int) -> list[str]:
    return [f"item-{i:07d}" for i in range(n)]


@dataclass
class Timing:
    samples: list[float] = field(default_factory=list)

    def p(self, q: float) -> float:
        return float(np.percentile(np.array(self.samples) * 1000, q))


def timed(fn: Callable[[int], object], runs: int) -> Timing:
    t = Timing()
    for i in range(runs):
        t0 = time.perf_counter()
        fn(i)
        t.samples.append(time.perf_counter() - t0)
    return t


def numpy_search(x: np.ndarray, q: np.ndarray, exclude_rows: np.ndarray, k: int) -> np.ndarray:
    """The baseline: exact cosine top-k by one matrix-vector product."""
    s = x @ q
    s[exclude_rows] = -np.inf
    top = np.argpartition(-s, k)[:k]
    return top[np.argsort(-s[top])]


def load(store: Store, ids: list[str], x: np.ndarray, batch: int = 1024) -> tuple[float, float]:
    store.ensure_collection(CollectionSpec(dim=x.shape[1], model="bench/synthetic"))
    t0 = time.perf_counter()
    for i in range(0, len(ids), batch):
        store.upsert([Item(ids[j], x[j]) for j in range(i, min(i + batch, len(ids)))])
    t1 = time.perf_counter()
    store.optimize()
    return t1 - t0, time.perf_counter() - t1


def bench_backend(
    name: str, store: Store, x: np.ndarray, queries: int, exclude: int, seed: int,
    plain_first: bool = False,
) -> dict[str, object]:
    n = len(x)
    ids = ids_for(n)
    rng = np.random.default_rng(seed + 1)
    qs = corpus(queries, x.shape[1], 1, seed + 2) * 0.5 + x[rng.integers(0, n, queries)]
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    excl_rows = [rng.choice(n, exclude, replace=False) for _ in range(queries)]
    excl_ids = [{ids[r] for r in rows} for rows in excl_rows]

    base = timed(lambda i: numpy_search(x, qs[i], excl_rows[i], 10), queries)
    out: dict[str, object] = {"backend": name, "n": n, "dim": x.shape[1], "queries": queries}
    out["numpy_p50_ms"] = base.p(50)
    out["numpy_p99_ms"] = base.p(99)

    insert_s, optimize_s = load(store, ids, x)
    out["load_s"] = insert_s
    out["optimize_s"] = optimize_s

    def search(i: int) -> object:
        return store.search(qs[i], 10, exclude=excl_ids[i])

    search(0)  # warm caches once, as a running service would be
    t = timed(search, queries)
    # One user's next requests exclude (nearly) the same seen ids: their point ids are cached.
    same = timed(lambda i: store.search(qs[i], 10, exclude=excl_ids[0]), queries)
    recall = np.mean([
        len({h.id for h in store.search(qs[i], 10, exclude=excl_ids[i])}
            & {ids[r] for r in numpy_search(x, qs[i], excl_rows[i], 10)}) / 10
        for i in range(min(queries, 50))
    ])
    m = timed(lambda i: store.search_mmr(qs[i], 10, diversity=0.5, candidates=100,
                                         exclude=excl_ids[i]), queries)
    pos_rows = rng.integers(0, n, (queries, 3))
    neg_rows = rng.integers(0, n, (queries, 2))
    r = timed(lambda i: store.recommend(list(x[pos_rows[i]]), list(x[neg_rows[i]]), 10,
                                        strategy=RecommendStrategy.BEST_SCORE,
                                        exclude=excl_ids[i]), queries)
    f = timed(lambda i: store.relevance_feedback(
        qs[i], [FeedbackPair(x[pos_rows[i][0]], x[neg_rows[i][0]], 0.8)], 10,
        exclude=excl_ids[i]), queries)
    out.update({
        "search_p50_ms": t.p(50), "search_p99_ms": t.p(99), "recall_at_10": float(recall),
        "search_same_exclusion_p50_ms": same.p(50), "search_same_exclusion_p99_ms": same.p(99),
        "mmr_p50_ms": m.p(50), "mmr_p99_ms": m.p(99),
        "recommend_best_score_p50_ms": r.p(50), "recommend_best_score_p99_ms": r.p(99),
        "feedback_p50_ms": f.p(50), "feedback_p99_ms": f.p(99),
        "search_vs_numpy": t.p(50) / base.p(50),
        "mmr_vs_numpy": m.p(50) / base.p(50),
        "recommend_vs_numpy": r.p(50) / base.p(50),
    })
    return out


def show(row: dict[str, object]) -> None:
    def f(k: str) -> str:
        v = row[k]
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    print(f"\n== {row['backend']}  n={row['n']} dim={row['dim']} queries={row['queries']}")
    print(f"load {f('load_s')} s + optimize {f('optimize_s')} s")
    print(f"numpy brute force   p50 {f('numpy_p50_ms')} ms  p99 {f('numpy_p99_ms')} ms")
    print(f"search k=10 -500    p50 {f('search_p50_ms')} ms  p99 {f('search_p99_ms')} ms  "
          f"= {f('search_vs_numpy')} x numpy  recall@10 {f('recall_at_10')}")
    print(f"  same 500 excluded p50 {f('search_same_exclusion_p50_ms')} ms  "
          f"p99 {f('search_same_exclusion_p99_ms')} ms")
    print(f"mmr k=10 (100 cand) p50 {f('mmr_p50_ms')} ms  p99 {f('mmr_p99_ms')} ms  "
          f"= {f('mmr_vs_numpy')} x numpy")
    print(f"recommend best_sc.  p50 {f('recommend_best_score_p50_ms')} ms  "
          f"p99 {f('recommend_best_score_p99_ms')} ms  = {f('recommend_vs_numpy')} x numpy")
    print(f"relevance feedback  p50 {f('feedback_p50_ms')} ms  p99 {f('feedback_p99_ms')} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--clusters", type=int, default=200)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--exclude", type=int, default=500)
    ap.add_argument("--local-n", type=int, default=10_000)
    ap.add_argument("--local-queries", type=int, default=20)
    ap.add_argument("--skip-local", action="store_true")
    ap.add_argument("--skip-edge", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    rows = []
    if not args.skip_edge:
        x = corpus(args.n, args.dim, args.clusters, args.seed)
        with tempfile.TemporaryDirectory() as tmp, EdgeStore(tmp) as edge:
            rows.append(bench_backend("qdrant-edge", edge, x, args.queries, args.exclude,
                                      args.seed))
        show(rows[-1])
        del x
    if not args.skip_local:
        xs = corpus(args.local_n, args.dim, args.clusters, args.seed)
        with ServerStore(":memory:") as local:
            rows.append(bench_backend("qdrant-client local mode", local, xs, args.local_queries,
                                      args.exclude, args.seed))
        show(rows[-1])
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
