"""How much slower is the same engine call after the process sat idle?

``bench_load.py`` divides the server's recommendation latency by the in-process
``Engine.recommend`` run back to back. A server that people use at their pace is idle
between requests, and a core woken from idle runs the next call slower (caches gone cold,
the clock stepped down). This times ``Engine.recommend(state, 1)`` over the same cached
100k store in one process with idle gaps between calls (``--gaps``, milliseconds),
interleaving the users round-robin as a server does; back to back (gap 0) first and last,
so each gap's p50 reads as a ratio to the back-to-back one measured beside it:

    SUMO_BENCH_CACHE=/tmp/benchcache python -m benchmarks.bench_engine_idle
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.bench_load import SEED, corpus_and_data, pct
from indexer.store.edge import EdgeStore
from recommender.engine import Engine, Observation
from recommender.sim.users import make_users


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--calls", type=int, default=160, help="timed calls per gap")
    ap.add_argument("--gaps", default="2,5,20,100,250", help="idle milliseconds between calls")
    ap.add_argument("--policy", default="sumo")
    args = ap.parse_args()

    corpus, folder = corpus_and_data(args.items)
    sims = make_users("broad", corpus, args.users, seed=SEED)
    index = {item_id: k for k, item_id in enumerate(corpus.ids)}
    gaps = [0.0, *(float(g) for g in args.gaps.split(",")), 0.0]
    results: list[tuple[float, list[float]]] = []
    with EdgeStore(folder) as store:
        engine = Engine(store, default_policy=args.policy, seed=SEED)
        engine.warm()
        for run, gap in enumerate(gaps):
            states = [engine.new_state(f"idle-{run}-{k}") for k in range(args.users)]
            rngs = [np.random.default_rng(k) for k in range(args.users)]
            samples: list[float] = []
            for call in range(args.calls):
                k = call % args.users
                time.sleep(gap / 1000.0)
                t = time.perf_counter()
                hits = engine.recommend(states[k], 1)
                samples.append(time.perf_counter() - t)
                v = corpus.vectors[index[hits[0].id]]
                dwell = sims[k].dwell_ms(v, rngs[k])
                engine.observe(states[k], [Observation(hits[0].id, v, dwell)])
            results.append((gap, samples))
    base = pct(results[0][1] + results[-1][1], 50)
    print(f"Engine.recommend (policy {args.policy}, limit 1, {args.items} items, "
          f"{args.users} users round-robin, {args.calls} calls per gap)")
    print("| idle gap before each call | p50 ms | p99 ms | p50 / back to back |")
    print("|---|---|---|---|")
    for gap, samples in results:
        print(f"| {gap:.0f} ms | {pct(samples, 50):.2f} | {pct(samples, 99):.2f} | "
              f"{pct(samples, 50) / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
