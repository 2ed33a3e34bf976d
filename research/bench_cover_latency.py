"""What the cover slots cost a recommendation: ``sumo`` with ``COVER`` slots against none.

While no region's lift is credible, ``sumo`` sends the least-touched regions' centres
along with its other queries (one ``search_many`` call). This times ``Engine.recommend``
(batch 5) for users still searching, with the product's ``COVER`` and with ``COVER = 0``,
interleaved in one process, beside a raw store search, and prints the p50s and ratios:

    PYTHONPATH=. python research/bench_cover_latency.py --items 20000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import recommender.policies.sumo as sumo_module
from recommender.engine import Engine, Observation
from recommender.exclusion import Exclusion
from recommender.sim.harness import simulated_store
from recommender.state import UserState


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    cover = sumo_module.COVER
    rng = np.random.default_rng(0)
    with simulated_store(args.items, 0) as (corpus, store):
        engine = Engine(store, default_policy="sumo", seed=1)
        saved = []
        for u in range(args.users):  # three batches of unremarkable dwells: still searching
            state = engine.new_state(f"u{u}")
            for _ in range(3):
                hits = engine.recommend(state, 5)
                engine.observe(state, [Observation(h.id, corpus.vectors[corpus.index(h.id)],
                                                   float(np.exp(rng.normal(7.5, 0.5))))
                                       for h in hits])
            saved.append(json.dumps(state.to_dict()))
        times: dict[str, list[float]] = {"cover": [], "none": [], "raw": []}
        for _ in range(args.rounds):
            for s in saved:
                for label, n in (("cover", cover), ("none", 0)):
                    sumo_module.COVER = n
                    state = UserState.from_dict(json.loads(s))
                    t0 = time.perf_counter()
                    engine.recommend(state, 5)
                    times[label].append((time.perf_counter() - t0) * 1000)
                state = UserState.from_dict(json.loads(s))
                q = corpus.vectors[int(rng.integers(len(corpus.ids)))]
                t0 = time.perf_counter()
                store.search(q, 5, exclude=Exclusion(state.seen))
                times["raw"].append((time.perf_counter() - t0) * 1000)
        sumo_module.COVER = cover
    p50 = {k: statistics.median(v) for k, v in times.items()}
    print(f"recommend p50: COVER={cover} {p50['cover']:.2f} ms, COVER=0 {p50['none']:.2f} ms "
          f"(ratio {p50['cover'] / p50['none']:.2f}); raw search {p50['raw']:.2f} ms "
          f"({p50['cover'] / p50['raw']:.1f}x and {p50['none'] / p50['raw']:.1f}x); "
          f"{args.items} items, {args.users} searching users x {args.rounds} rounds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
