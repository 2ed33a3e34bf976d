"""Gap report at scale: N items (Qdrant Edge, embedded) and U users' stored states.

    python -m benchmarks.bench_gaps --items 1000000 --users 100000

Builds a synthetic CLIP-like corpus with planted holes, writes U user documents whose
targets lie around cluster centres (a share of them in the holes) and one recorded search
for a share of them (``--search-share``), then times the report and its phases. Timing is
reported against baselines measured in the same process: the raw scan of the user
documents and searches (the part no report can skip) and the raw nearest-neighbour
query latency times the number of queries the report made. Also prints whether the planted
gaps were found. Load time (corpus upsert and HNSW build) is printed but is not the report.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from indexer.store.base import Store
from indexer.store.edge import EdgeStore
from recommender import searches
from recommender.gaps.demand import DemandOptions, read_demand
from recommender.gaps.report import GapOptions, build_report
from recommender.seen import SeenSet
from recommender.sim.corpus import load_corpus, make_corpus
from recommender.sim.gapsim import found_holes
from recommender.state import UserState
from recommender.users.document import NAMESPACE, pack


class Counting:
    """Counts the store's nearest-neighbour queries (wraps the real store)."""

    def __init__(self, store: Store) -> None:
        self.store, self.queries = store, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def search(self, *a: object, **k: object) -> object:
        self.queries += 1
        return self.store.search(*a, **k)  # type: ignore[arg-type]

    def search_many(self, vectors: list[np.ndarray], *a: object, **k: object) -> object:
        self.queries += len(vectors)
        return self.store.search_many(vectors, *a, **k)  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--clusters", type=int, default=400)
    ap.add_argument("--holes", type=int, default=3)
    ap.add_argument("--hole-share", type=float, default=0.05, help="users in the holes")
    ap.add_argument("--search-share", type=float, default=0.1, help="users who searched")
    ap.add_argument("--data", type=Path, help="store folder (default: a temp folder)")
    args = ap.parse_args()

    holes = tuple(range(7, 7 + 13 * args.holes, 13))
    data = args.data or Path(tempfile.mkdtemp(prefix="bench-gaps-"))
    t0 = time.perf_counter()
    corpus = make_corpus(args.items, dim=args.dim, clusters=args.clusters, seed=0, holes=holes)
    store = EdgeStore(data)
    load_corpus(store, corpus)
    load_s = time.perf_counter() - t0

    rng = np.random.default_rng(1)
    present = np.flatnonzero(corpus.cluster_sizes > 0)
    t0 = time.perf_counter()
    now = 1.75e9
    for i in range(args.users):
        c = int(rng.choice(holes)) if rng.random() < args.hole_share else int(rng.choice(present))
        # A target with the error of a learned estimate: cosine ~0.9 to the taste centre.
        t = corpus.centers[c] + 0.5 * rng.standard_normal(args.dim).astype(np.float32) / math.sqrt(
            args.dim)
        st = UserState(f"u{i}", "sumo", target=(t / np.linalg.norm(t)).astype(np.float32),
                       events=int(rng.integers(10, 400)), engagement=float(rng.lognormal(5, 1)),
                       last_active=now - float(rng.exponential(20 * 86400)),
                       seen=SeenSet(f"x{j}" for j in range(50)))
        store.put_document(NAMESPACE, st.user_id, pack(st, []), expected_version=0)
        if rng.random() < args.search_share:
            # What they typed, as a text tower would embed it: their concept, off by a bit.
            q = corpus.centers[c] + 0.35 * rng.standard_normal(args.dim).astype(
                np.float32) / math.sqrt(args.dim)
            searches.record(store, f"concept {c} #{i}", q, st.user_id, now=st.last_active)
    users_s = time.perf_counter() - t0
    print(f"scale: {args.items} items x {args.dim}-d, {args.users} users; load {load_s:.0f} s "
          f"(corpus + HNSW), users written in {users_s:.0f} s")

    # Baselines, same process.
    t0 = time.perf_counter()
    demand = read_demand(store, DemandOptions())
    scan_s = time.perf_counter() - t0
    qs = corpus.vectors[rng.choice(args.items, 200, replace=False)]
    t0 = time.perf_counter()
    for q in qs:
        store.search(q, 100, with_vectors=True)
    query_ms = (time.perf_counter() - t0) / len(qs) * 1000

    counting = Counting(store)
    t0, c0 = time.perf_counter(), time.process_time()
    report = build_report(counting, GapOptions(), demand=demand)  # type: ignore[arg-type]
    rest_s = time.perf_counter() - t0
    # CPU seconds of this process (the store is embedded): on a shared machine the wall
    # time also counts other jobs' turns on the cores.
    rest_cpu = time.process_time() - c0
    total_s = scan_s + rest_s
    body = report.to_dict(10)
    found = found_holes(report.regions, corpus, holes, top=len(holes))
    print(f"report: {total_s:.1f} s total = user scan {scan_s:.1f} s + clustering/supply "
          f"{rest_s:.1f} s ({rest_cpu:.1f} CPU s); ratio to the user scan alone "
          f"{total_s / scan_s:.2f}x")
    t0 = time.perf_counter()
    for q in qs:
        store.search(q, 100, with_vectors=True)
    warm_ms = (time.perf_counter() - t0) / len(qs) * 1000
    print(f"store queries: {counting.queries}; raw query (limit 100, vectors) {query_ms:.2f} ms "
          f"before the report (cold), {warm_ms:.2f} ms after (warm): report time / raw query "
          f"time = {rest_s / (counting.queries * warm_ms / 1000):.2f}x (warm)")
    print(f"sampled: {body['sampled']}")
    print(f"regions: {len(report.regions)} (k={report.clustering.k if report.clustering else 0}),"
          f" gaps flagged: {body['gaps']}; planted holes {holes} found (a flagged top-"
          f"{len(holes)} region nearest their centre): {found}")
    store.close()


if __name__ == "__main__":
    main()
