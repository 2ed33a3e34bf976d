"""Quick taste capture of one policy, optionally with some of SUMO's constants changed.

The full benchmark (``sumo bench recommend``) runs every policy on 100k items for 300
impressions; deciding whether a change to SUMO is worth that takes something faster. This
runs one policy in this process over a smaller corpus, with the same users, runner and
capture as the full benchmark (oracle included), and prints per taste the mean capture at T
and the median impressions to the first liked item (never: horizon + 1). Module constants of
``recommender.policies.sumo`` and ``.evidence`` can be overridden for the run:

    python research/bench_variants.py                           # sumo, 20k items, T=100
    python research/bench_variants.py --policy sumo-target
    python research/bench_variants.py --set COVER=0 --set PRIOR_G=1.0,0.5
    python research/bench_variants.py --world flat --models niche,broad --set COVER=0

Differences under ~0.03 in the mean are noise at 48 users per model (rerun with another
``--seed`` before believing one). The store's HNSW graph is built at random, so the same
command gives a few hundredths apart from run to run; ``--exact`` searches exactly, and two
variants run with it differ only by the variant.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from variants import override_or_exit

from recommender.sim.harness import run_with_oracle, store_of
from recommender.sim.worlds import world


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default="sumo")
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--users", type=int, default=48, help="per user model")
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--world", default="default", help="CORPUS:DWELL[:TASTE] or a preset")
    ap.add_argument("--models", default=None, help="comma-separated tastes (default: all)")
    ap.add_argument("--exact", action="store_true",
                    help="exact search instead of the HNSW graph: runs repeat exactly, so two "
                         "variants differ only by the variant (slower at 100k)")
    args = ap.parse_args()
    override_or_exit(args.set)
    t0 = time.perf_counter()
    means: dict[str, float] = {}
    firsts: dict[str, float] = {}
    w = world(args.world)
    corpus = w.make_corpus(args.items, args.seed)
    with store_of(corpus, exact=args.exact) as store:
        for model in args.models.split(",") if args.models else w.tastes:
            caps, first = [], []
            for i, user in enumerate(w.make_users(model, corpus, args.users, seed=args.seed)):
                run, oracle = run_with_oracle(store, corpus, user, i, args.policy,
                                              horizon=args.horizon, batch=args.batch,
                                              seed=args.seed)
                caps.append(run.capture(oracle, args.horizon))
                first.append(run.first_like or args.horizon + 1)
            means[model] = float(np.mean(caps))
            firsts[model] = float(np.median(first))
    cells = " ".join(f"{m} {v:.2f} (first {firsts[m]:.0f})" for m, v in means.items())
    print(f"{args.policy} {args.world} {' '.join(args.set)} | T={args.horizon}: {cells} | "
          f"mean {np.mean(list(means.values())):.3f} ({time.perf_counter() - t0:.0f} s, "
          f"{args.items} items, {args.users} users per model, seed {args.seed}"
          f"{', exact search' if args.exact else ''})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
