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
from variants import overridden, override_or_exit

import recommender.regions as regions_module
from recommender.sim.harness import run_with_oracle, store_of, user_seed
from recommender.sim.runner import run_user
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
    ap.add_argument("--paired", action="store_true",
                    help="run the policy as it is and with --set over one store and users")
    ap.add_argument("--vs", default=None, metavar="POLICY",
                    help="with --paired: the variant is this policy (default: --policy)")
    args = ap.parse_args()
    if args.paired:
        return paired(args)
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


def paired(args: argparse.Namespace) -> int:
    if any(a.partition("=")[0] in vars(regions_module) for a in args.set):
        raise SystemExit("--paired: the region map is built once per store; "
                         "run a map constant without --paired")
    with overridden(args.set):  # a bad --set ends here, before the store is built
        pass
    t0 = time.perf_counter()
    caps: dict[str, dict[str, list[float]]] = {"as is": {}, "variant": {}}
    firsts: dict[str, dict[str, list[int]]] = {"as is": {}, "variant": {}}
    w = world(args.world)
    corpus = w.make_corpus(args.items, args.seed)
    with store_of(corpus, exact=args.exact) as store:
        for model in args.models.split(",") if args.models else w.tastes:
            for i, user in enumerate(w.make_users(model, corpus, args.users, seed=args.seed)):
                kw = dict(horizon=args.horizon, batch=args.batch, seed=user_seed(args.seed, i))
                oracle = run_user(store, corpus, user, i, "oracle", **kw)
                for label, policy, sets in (("as is", args.policy, []),
                                            ("variant", args.vs or args.policy, args.set)):
                    with overridden(sets):
                        run = run_user(store, corpus, user, i, policy, **kw)
                    caps[label].setdefault(model, []).append(run.capture(oracle, args.horizon))
                    firsts[label].setdefault(model, []).append(
                        run.first_like or args.horizon + 1)
    for label in caps:
        cells = " ".join(f"{m} {np.mean(v):.2f} (first {np.median(firsts[label][m]):.0f})"
                         for m, v in caps[label].items())
        mean = np.mean([np.mean(v) for v in caps[label].values()])
        print(f"{label:7} | {cells} | mean {mean:.3f}")
    diffs = {m: np.array(caps["variant"][m]) - np.array(caps["as is"][m]) for m in caps["as is"]}
    every = np.concatenate(list(diffs.values()))
    print(f"{args.policy} {args.world} {args.vs or ''} {' '.join(args.set)} paired | "
          "variant - as is: "
          + " ".join(f"{m} {d.mean():+.3f}" for m, d in diffs.items())
          + f" | mean {every.mean():+.3f} (se {every.std(ddof=1) / np.sqrt(every.size):.3f}) "
          f"({time.perf_counter() - t0:.0f} s, {args.items} items, {args.users} users per "
          f"model, seed {args.seed}{', exact search' if args.exact else ''})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
