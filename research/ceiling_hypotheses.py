"""Does the known-model ceiling depend on how many alternative tastes it weighs?

The ceiling (``recommender.sim.ceiling``) knows each user's dwell model and searches for
their taste among ``HYPOTHESES`` candidates: the user's own and 199 others drawn from the
world's prior. A finite list that contains the answer tells the search more than the
prior does (the taste is one of these), so the ceiling should fall as the list grows, to
the greedy search that knows the model and only the world's prior over tastes. This runs
the ceiling with several list lengths over the same users, against the same oracle:

    PYTHONPATH=. python research/ceiling_hypotheses.py --world default --items 100000 \\
        --users 12 --models niche --hypotheses 200,1000

The world's prior is itself knowledge: its narrow tastes lie only in the smaller half of
its clusters, which hold a small share of the items. ``--prior clusters`` draws the
alternatives' single-place tastes from every cluster alike, and ``--prior items`` from
clusters in proportion to their items (what a map of equal-sized regions with one prior
per region, as ``sumo``'s, assumes); the user's own taste stays in the list:

    PYTHONPATH=. python research/ceiling_hypotheses.py --world default --items 100000 \\
        --users 12 --models niche --hypotheses 200 --prior world,clusters,items

A world's taste points are themselves knowledge the collection does not show: on the
``manifold`` corpus, single-place tastes lie at 200 hidden anchor points of a continuous
surface. ``--prior anywhere`` draws the alternatives around items picked at random (a
taste as far off its item as a taste is off its anchor), places anywhere the collection
has images:

    PYTHONPATH=. python research/ceiling_hypotheses.py --world manifold:lognormal \\
        --items 10000 --users 24 --models niche --hypotheses 200 --prior world,anywhere
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

import recommender.sim.ceiling as ceiling_module
from recommender.sim.bench import bench_seed
from recommender.sim.corpus import SyntheticCorpus
from recommender.sim.harness import store_of
from recommender.sim.runner import run_user
from recommender.sim.users import SimUser, make_users
from recommender.sim.worlds import World, world

PRIORS = ("world", "clusters", "items", "anywhere")


def alternatives(w: World, model: str, corpus: SyntheticCorpus, n: int, seed: int,
                 prior: str) -> list[SimUser]:
    """``n`` other users of ``model`` whose tastes are the ceiling's alternatives."""
    if prior == "world":  # the benchmark's draw: the first 199 are the benchmark's
        return w.make_users(model, corpus, n, seed=seed)
    if prior == "anywhere":  # the items' own places stand in for the world's taste points
        rng = np.random.default_rng([seed, 5])
        picked = rng.choice(len(corpus.ids), size=4 * n, replace=False)
        places = dataclasses.replace(corpus, centers=corpus.vectors[picked])
        return make_users(model, places, n, seed=seed, clusters=list(range(len(picked))))
    sizes = corpus.cluster_sizes
    present = np.flatnonzero(sizes > 0)
    if prior == "clusters":
        pool = present
    else:  # a cluster as often as it has items
        rng = np.random.default_rng([seed, 3])
        pool = rng.choice(present, size=20 * len(present), p=sizes[present] / sizes.sum())
    return make_users(model, corpus, n, seed=seed, clusters=[int(c) for c in pool])


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
    ap.add_argument("--prior", default="world",
                    help=f"where the alternatives' tastes lie, comma-separated: {PRIORS}")
    args = ap.parse_args()
    priors = args.prior.split(",")
    if unknown := set(priors) - set(PRIORS):
        ap.error(f"unknown --prior {sorted(unknown)}: choose from {PRIORS}")
    lengths = [int(h) for h in args.hypotheses.split(",")]
    w = world(args.world)
    corpus = w.make_corpus(args.items, args.seed)
    with store_of(corpus) as store:
        for model in args.models.split(","):
            users = w.make_users(model, corpus, args.users, seed=args.seed)
            others = {prior: alternatives(w, model, corpus, max(lengths) - 1,
                                          10_000 + args.seed, prior) for prior in priors}
            arms = [(prior, h) for prior in priors for h in lengths]
            caps: dict[tuple[str, int], list[float]] = {arm: [] for arm in arms}
            firsts: dict[tuple[str, int], list[int]] = {arm: [] for arm in arms}
            t0 = time.perf_counter()
            for i, user in enumerate(users):
                seed = bench_seed(args.seed, i)
                oracle = run_user(store, corpus, user, i, "oracle", horizon=args.horizon,
                                  batch=args.batch, seed=seed)
                for prior, h in arms:
                    ceiling_module.HYPOTHESES = h
                    run = ceiling_module.ceiling_run(corpus, user, i, others[prior],
                                                     horizon=args.horizon, batch=args.batch,
                                                     seed=seed)
                    caps[prior, h].append(run.capture(oracle, args.horizon))
                    firsts[prior, h].append(run.first_like or args.horizon + 1)
            cells = " | ".join(f"{h} hypotheses, {prior} prior: capture "
                               f"{np.mean(caps[prior, h]):.3f}, first like "
                               f"{np.median(firsts[prior, h]):.0f}" for prior, h in arms)
            print(f"{args.world} {model} | {cells} ({time.perf_counter() - t0:.0f} s, "
                  f"{args.items} items, {args.users} users, seed {args.seed})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
