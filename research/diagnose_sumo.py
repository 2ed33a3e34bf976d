"""Where does SUMO lose taste capture? Diagnostics over the simulated users.

The benchmark says how much a policy captures; this says where the rest goes. For each
user model it splits the first ``--horizon`` impressions into windows and reports capture
in each, impressions until the first liked item, and, late in the run (from impression
``horizon // 2``), the share of views in the target's own region (the region a batch's
exploitation draws on) and the capture of those views against the others:

    python research/diagnose_sumo.py                      # sumo, 20k items, 24 users
    python research/diagnose_sumo.py --noise-free         # users whose dwell is exact
    python research/diagnose_sumo.py --trace niche:1 --noise-free
    python research/diagnose_sumo.py --noise-free --set NOISE=0.5

``--noise-free`` gives every user their expected dwell, with no noise, flicks or walk-aways
(``SimUser.noiseless``): what the policy makes of perfect signals, apart from what the
noise allows. ``--trace MODEL:I`` prints one user's run batch by batch: each view's region,
true interest and dwell score, then the posterior's leading regions with their true
quality (mean interest of their items), each view's interest under those regions'
hypotheses, the target's region and the target's cosine to the hidden taste. Same corpus,
users, runner and capture as ``bench_variants.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numpy.typing import NDArray
from variants import override_or_exit

from indexer.store.base import Hit, Store
from recommender.kmeans import assign
from recommender.policies import evidence
from recommender.policies.evidence import RegionEvidence
from recommender.regions import RegionMap, regions_for
from recommender.sim.corpus import SyntheticCorpus
from recommender.sim.harness import run_with_oracle, simulated_store, user_seed
from recommender.sim.runner import Trace, run_user
from recommender.sim.users import SimUser, UserModel, make_users
from recommender.state import UserState

WINDOWS = ((0, 25), (25, 50), (50, 100), (100, 300))


class Recorder:
    """Per impression: was the view in the region of the target the batch was chosen with?"""

    def __init__(self, corpus: SyntheticCorpus, regions: RegionMap,
                 labels: NDArray[np.int64], horizon: int) -> None:
        self.corpus, self.regions, self.labels = corpus, regions, labels
        self.in_home = np.zeros(horizon, dtype=bool)
        self.home = -1  # the target's region when the next batch is chosen

    def __call__(self, state: UserState, hits: list[Hit], t0: int) -> None:
        for k, h in enumerate(hits):
            self.in_home[t0 + k] = self.labels[self.corpus.index(h.id)] == self.home
        if state.target is not None:
            self.home = int(np.argmax(self.regions.centroids @ state.target))


def summarise(model: str, runs: list[tuple[Trace, Trace, Recorder]], horizon: int
              ) -> tuple[float, str]:
    windows = [(a, min(b, horizon)) for a, b in WINDOWS if a < horizon]
    caps = [np.mean([p.capture(o, b, start=a) for p, o, _ in runs]) for a, b in windows]
    firsts = [p.first_like or horizon + 1 for p, _, _ in runs]
    late = horizon // 2
    share, home_cap, other_cap = [], [], []
    for p, o, rec in runs:
        base = p.baseline[late:]
        gain = (p.expected[late:] - base) / (float(o.expected[late:].mean()) - base.mean())
        home = rec.in_home[late:]
        share.append(home.mean())
        home_cap += list(gain[home])
        other_cap += list(gain[~home])
    total = float(np.mean([p.capture(o, horizon) for p, o, _ in runs]))
    cells = " ".join(f"{a}-{b} {c:5.2f}" for (a, b), c in zip(windows, caps, strict=True))
    return total, (
            f"{model:6s} | T={horizon} {total:.2f} | windows {cells} | "
            f"first like median {np.median(firsts):4.0f} | "
            f"from {late}: in target's region {np.mean(share):.2f} (capture "
            f"{np.mean(home_cap) if home_cap else float('nan'):.2f}), elsewhere "
            f"{np.mean(other_cap) if other_cap else float('nan'):.2f}")


def trace(store: Store, corpus: SyntheticCorpus, regions: RegionMap,
          labels: NDArray[np.int64], user: SimUser, index: int, policy: str,
          horizon: int, seed: int) -> None:
    interest = user.interest(corpus.vectors)
    quality = np.bincount(labels, weights=interest, minlength=regions.size) / np.maximum(
        np.bincount(labels, minlength=regions.size), 1)
    best = np.argsort(-quality)[:5]
    print("best regions by true quality:",
          " ".join(f"r{r}({quality[r]:.2f})" for r in best))

    def show(state: UserState, hits: list[Hit], t0: int) -> None:
        scores = [z for _, z in state.data.get("win", [])][-len(hits):]
        views = []
        for h, z in zip(hits, scores, strict=False):
            j = corpus.index(h.id)
            views.append(f"r{labels[j]}:{interest[j]:.2f}/{z:+.1f}")
        line = f"{t0 + len(hits):4d} " + " ".join(views)
        ev = RegionEvidence.load(state, regions)
        if not ev.empty:
            p = ev.posterior().probs
            top = np.argsort(-p)[:3]
            line += " | posterior " + " ".join(f"r{r}:{p[r]:.2f}({quality[r]:.2f})"
                                               for r in top)
            # How well the leading hypotheses tell this batch's views apart.
            shown = corpus.vectors[[corpus.index(h.id) for h in hits]]
            seen_as = evidence.interest(regions, shown @ regions.centroids.T)[:, top]
            line += " | views' interest under them " + " ".join(
                "/".join(f"{x:.2f}" for x in row) for row in seen_as)
        if state.target is not None:
            home = int(np.argmax(regions.centroids @ state.target))
            cos = max(float(state.target @ ts.vector) for ts in user.tastes_at(t0))
            line += f" | target in r{home}, cosine to taste {cos:.2f}"
        print(line)

    print("impressions, then per view region:true interest/dwell score")
    run_user(store, corpus, user, index, policy, horizon=horizon, batch=5,
             seed=user_seed(seed, index), on_batch=show)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default="sumo")
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--users", type=int, default=24, help="per user model")
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default=",".join(m.value for m in UserModel))
    ap.add_argument("--noise-free", action="store_true", help="dwell = its expectation")
    ap.add_argument("--exact", action="store_true",
                    help="exact search instead of the HNSW graph: runs repeat exactly")
    ap.add_argument("--trace", metavar="MODEL:I", help="print one user's run batch by batch")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a constant of recommender.policies.sumo for this run")
    args = ap.parse_args()
    override_or_exit(args.set)
    t0 = time.perf_counter()
    with simulated_store(args.items, args.seed, exact=args.exact) as (corpus, store):
        regions = regions_for(store)
        if regions is None:
            raise SystemExit("corpus too small for a region map")
        labels = assign(corpus.vectors, regions.centroids)
        if args.trace:
            model, _, i = args.trace.partition(":")
            user = make_users(model, corpus, int(i) + 1, seed=args.seed)[int(i)]
            user.noiseless = args.noise_free
            trace(store, corpus, regions, labels, user, int(i), args.policy,
                  args.horizon, args.seed)
            return 0
        totals = []
        for model in args.models.split(","):
            runs = []
            for i, user in enumerate(make_users(model, corpus, args.users, seed=args.seed)):
                user.noiseless = args.noise_free
                rec = Recorder(corpus, regions, labels, args.horizon)
                run, oracle = run_with_oracle(store, corpus, user, i, args.policy,
                                              horizon=args.horizon, batch=5, seed=args.seed,
                                              on_batch=rec)
                runs.append((run, oracle, rec))
            total, line = summarise(model, runs, args.horizon)
            totals.append(total)
            print(line, flush=True)
        print(f"mean capture at T={args.horizon}: {np.mean(totals):.3f}")
    print(f"{args.policy} {' '.join(args.set)}, {args.items} items, {args.users} users per "
          f"model, seed {args.seed}{', noise-free users' if args.noise_free else ''} "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
