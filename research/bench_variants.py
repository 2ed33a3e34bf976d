"""Quick taste capture of one policy, optionally with some of SUMO's constants changed.

The full benchmark (``sumo bench recommend``) runs every policy on 100k items for 300
impressions; deciding whether a change to SUMO is worth that takes something faster. This
runs one policy in this process over a smaller corpus, with the same users, runner and
capture as the full benchmark (oracle included), and prints the mean capture at T per user
model. Module constants of ``recommender.policies.sumo`` can be overridden for the run, so
every "tried and not kept" row in docs/recommender.md is one command:

    python research/bench_variants.py                           # sumo, 20k items, T=100
    python research/bench_variants.py --policy sumo-target
    python research/bench_variants.py --set SOURCES=8 --set PRIOR_G=1.0,0.5

Differences under ~0.03 in the mean are noise at 48 users per model (rerun with another
``--seed`` before believing one).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from variants import override_or_exit

from recommender.sim.harness import run_with_oracle, simulated_store
from recommender.sim.users import UserModel, make_users


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default="sumo")
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--users", type=int, default=48, help="per user model")
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()
    override_or_exit(args.set)
    t0 = time.perf_counter()
    means: dict[str, float] = {}
    with simulated_store(args.items, args.seed) as (corpus, store):
        for model in UserModel:
            caps = []
            for i, user in enumerate(make_users(model, corpus, args.users, seed=args.seed)):
                run, oracle = run_with_oracle(store, corpus, user, i, args.policy,
                                              horizon=args.horizon, batch=args.batch,
                                              seed=args.seed)
                caps.append(run.capture(oracle, args.horizon))
            means[model.value] = float(np.mean(caps))
    cells = " ".join(f"{m} {v:.2f}" for m, v in means.items())
    print(f"{args.policy} {' '.join(args.set)} | T={args.horizon}: {cells} | "
          f"mean {np.mean(list(means.values())):.3f} ({time.perf_counter() - t0:.0f} s, "
          f"{args.items} items, {args.users} users per model, seed {args.seed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
