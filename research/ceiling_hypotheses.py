"""Does the known-model ceiling depend on how many alternative tastes it weighs?

The ceiling (``recommender.sim.ceiling``) knows each user's dwell model and searches for
their taste among ``HYPOTHESES`` candidates: the user's own and 199 others drawn from the
world's prior. A finite list that contains the answer tells the search more than the
prior does (the taste is one of these), so the ceiling should fall as the list grows, to
the greedy search that knows the model and only the world's prior over tastes. This runs
the ceiling with several list lengths over the same users, against the same oracle:

    PYTHONPATH=. python research/ceiling_hypotheses.py --world default --items 100000 \\
        --users 12 --models niche --hypotheses 200,1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import recommender.sim.ceiling as ceiling_module
from recommender.sim.harness import store_of
from recommender.sim.runner import run_user
from recommender.sim.worlds import world


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", default="default")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=12)
    ap.add_argument("--models", default="niche")
    ap.add_argument("--hypotheses", default="200,1000", help="list lengths, comma-separated")
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    lengths = [int(h) for h in args.hypotheses.split(",")]
    w = world(args.world)
    corpus = w.make_corpus(args.items, args.seed)
    with store_of(corpus) as store:
        for model in args.models.split(","):
            users = w.make_users(model, corpus, args.users, seed=args.seed)
            # The benchmark's draw of alternatives, longer: the first 199 are the benchmark's.
            others = w.make_users(model, corpus, max(lengths) - 1, seed=10_000 + args.seed)
            caps: dict[int, list[float]] = {h: [] for h in lengths}
            firsts: dict[int, list[int]] = {h: [] for h in lengths}
            t0 = time.perf_counter()
            for i, user in enumerate(users):
                seed = args.seed * 7919 + 1000 * i + 17  # the benchmark's run seeds
                oracle = run_user(store, corpus, user, i, "oracle", horizon=args.horizon,
                                  batch=args.batch, seed=seed)
                for h in lengths:
                    ceiling_module.HYPOTHESES = h
                    run = ceiling_module.ceiling_run(corpus, user, i, others,
                                                     horizon=args.horizon, batch=args.batch,
                                                     seed=seed)
                    caps[h].append(run.capture(oracle, args.horizon))
                    firsts[h].append(run.first_like or args.horizon + 1)
            cells = " | ".join(f"{h} hypotheses: capture {np.mean(caps[h]):.3f}, first like "
                               f"{np.median(firsts[h]):.0f}" for h in lengths)
            print(f"{args.world} {model} | {cells} ({time.perf_counter() - t0:.0f} s, "
                  f"{args.items} items, {args.users} users, seed {args.seed})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
