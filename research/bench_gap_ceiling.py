"""How close can learned targets get to a planted gap? (issue #5's planted-gap proof)

The planted-gap simulation (``tests/recommender/test_gaps_sim.py``) asks for report
centroids within cosine 0.9 of each removed cluster's centre. This script measures, on
the same corpus and users, what bounds that:

- the geometry: the best existing item's cosine to each hole centre, and the cosine of the
  mean of the 30 nearest items (the most a target that stays among items can reach);
- what each policy learns: after the same 120 impressions (batches of 10) through the real
  ``Engine`` over a real Edge store (the benchmark's ``run_user``), every hole user's
  target against their hidden taste and the hole centre, and the mean of one hole's
  users' targets against the centre (the best a report centroid built from those targets
  can do);
- with ``--bound``, what the views themselves allow: one taste per hole fitted by maximum
  likelihood to all its users' views (every dwell, not the 12 a user state keeps) under the
  simulator's *own* dwell model, every parameter known but the taste (each user's gain,
  interest curve, calibration, item appeal; a free intercept per user and a Huber loss for
  the flicks and walk-aways). No report can know more than this; it is run on the views
  each policy collected and on the oracle's, started from the users' longest-viewed items
  and, as a check that the optimisation is not what falls short, from the planted centre.

    python research/bench_gap_ceiling.py                  # sumo, rocchio
    python research/bench_gap_ceiling.py --policies sumo,qdrant-recommend-best
    python research/bench_gap_ceiling.py --dim 512          # CLIP's width: further still
    python research/bench_gap_ceiling.py --policies sumo --set REPEL=1.0
    python research/bench_gap_ceiling.py --policies sumo --bound
    python research/bench_gap_ceiling.py --policies sumo --bound --impressions 300
"""

from __future__ import annotations

import argparse

import numpy as np
from variants import override_or_exit

from indexer.store.base import Store
from recommender.sim.corpus import SyntheticCorpus, make_corpus
from recommender.sim.harness import store_of
from recommender.sim.runner import Trace, run_user
from recommender.sim.users import KNEE, SimUser, make_users

# The planted-gap simulation's settings (tests/recommender/test_gaps_sim.py).
N_ITEMS, DIM, CLUSTERS, HOLES = 6000, 64, 40, (3, 11, 23)
PER_HOLE, IMPRESSIONS, BATCH = 8, 120, 10


def geometry(corpus: SyntheticCorpus) -> None:
    for h in HOLES:
        sims = corpus.vectors @ corpus.centers[h]
        top = corpus.vectors[np.argsort(-sims)[:30]].mean(axis=0)
        print(f"hole {h:>2}: best item cosine {sims.max():.3f}, mean of the 30 nearest items "
              f"{top @ corpus.centers[h] / np.linalg.norm(top):.3f}")


def hole_of(corpus: SyntheticCorpus, user: SimUser) -> int:
    return HOLES[int(np.argmax(corpus.centers[list(HOLES)] @ user.taste))]


def ideal_fit(
    corpus: SyntheticCorpus, users: list[SimUser], traces: list[Trace], start: np.ndarray,
    steps: int = 1500,
) -> np.ndarray:
    """One taste for these users by maximum likelihood under the simulator's dwell model."""
    import torch  # the embedder's dependency; only this bound needs it here

    f64 = torch.float64
    data = []
    for user, trace in zip(users, traces, strict=True):
        taste = user.tastes[0]
        idx = [j for j, _ in trace.views]
        data.append((torch.tensor(corpus.vectors[idx], dtype=f64),
                     torch.tensor(np.log([d for _, d in trace.views]), dtype=f64),
                     torch.tensor(corpus.appeal[idx], dtype=f64), user, taste))
    u = torch.tensor(start, dtype=f64, requires_grad=True)
    intercepts = torch.tensor([np.log(us.base_ms) for *_, us, _ in data], dtype=f64,
                              requires_grad=True)
    opt = torch.optim.Adam([u, intercepts], lr=0.005)
    for _ in range(steps):
        opt.zero_grad()
        t = u / u.norm()
        loss = torch.zeros((), dtype=f64)
        for k, (x, log_dwell, appeal, us, ts) in enumerate(data):
            z = (x @ t - ts.median) / (ts.threshold - ts.median)
            # SimUser.interest_curve, in torch for its gradient
            interest = (us.graded * z.clamp(0.0, 1.0)
                        + (1 - us.graded) * torch.sigmoid(us.sharpness * (z - KNEE)))
            mean = intercepts[k] + us.gain * interest + us.appeal_weight * appeal
            loss = loss + torch.nn.functional.huber_loss(mean, log_dwell, delta=1.5,
                                                         reduction="sum")
        loss.backward()
        opt.step()
    t = (u / u.norm()).detach().numpy()
    return np.asarray(t, dtype=np.float64)


def bound(corpus: SyntheticCorpus, users: list[SimUser], traces: list[Trace], name: str
          ) -> None:
    row = []
    for h in HOLES:
        mine = [i for i, u in enumerate(users) if hole_of(corpus, u) == h]
        us, trs = [users[i] for i in mine], [traces[i] for i in mine]
        longest = [corpus.vectors[[j for j, _ in sorted(tr.views, key=lambda v: -v[1])[:10]]]
                   .mean(axis=0) for tr in trs]
        start = np.mean([v / np.linalg.norm(v) for v in longest], axis=0)
        start /= np.linalg.norm(start)
        fitted = ideal_fit(corpus, us, trs, start)
        from_truth = ideal_fit(corpus, us, trs, corpus.centers[h].astype(np.float64))
        row.append(f"hole {h:>2} {fitted @ corpus.centers[h]:.3f} "
                   f"(from the centre {from_truth @ corpus.centers[h]:.3f})")
    print(f"  ideal fit to {name}'s views: " + ", ".join(row))


def learned_targets(
    store: Store, corpus: SyntheticCorpus, users: list[SimUser], policy: str,
    with_bound: bool, impressions: int,
) -> None:
    by_hole: dict[int, list[np.ndarray]] = {h: [] for h in HOLES}
    to_taste: list[float] = []
    traces = [run_user(store, corpus, user, i, policy, horizon=impressions, batch=BATCH,
                       seed=i) for i, user in enumerate(users)]
    if with_bound:
        bound(corpus, users, traces, policy)
    for user, trace in zip(users, traces, strict=True):
        if trace.target is None:
            continue
        by_hole[hole_of(corpus, user)].append(trace.target)
        to_taste.append(float(trace.target @ user.taste))
    if not to_taste:
        return
    print(f"{policy}: target vs own hidden taste, median cosine {np.median(to_taste):.3f} "
          f"(range {min(to_taste):.2f} to {max(to_taste):.2f})")
    for h, targets in by_hole.items():
        mean = np.mean(targets, axis=0)
        single = [float(t @ corpus.centers[h]) for t in targets]
        print(f"  hole {h:>2}: {len(targets)} users, single targets {np.median(single):.3f} "
              f"(median), their mean {mean @ corpus.centers[h] / np.linalg.norm(mean):.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policies", default="sumo,rocchio")
    ap.add_argument("--dim", type=int, default=DIM, help="64 as in the test; CLIP's 512 too")
    ap.add_argument("--impressions", type=int, default=IMPRESSIONS,
                    help="per user (the test's 120)")
    ap.add_argument("--bound", action="store_true",
                    help="also fit the ideal estimate to each policy's and the oracle's views")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a constant of recommender.policies.sumo for this run")
    args = ap.parse_args()
    override_or_exit(args.set)
    corpus = make_corpus(N_ITEMS, dim=args.dim, clusters=CLUSTERS, seed=1, holes=HOLES)
    users = make_users("niche", corpus, PER_HOLE * len(HOLES), seed=5, clusters=list(HOLES))
    print(f"{N_ITEMS} items, {args.dim}-d, {CLUSTERS} clusters, holes {HOLES}; {len(users)} users "
          f"with tastes in the holes, {args.impressions} impressions each; the report needs 0.9")
    geometry(corpus)
    with store_of(corpus) as store:
        for policy in args.policies.split(",") + (["oracle"] if args.bound else []):
            learned_targets(store, corpus, users, policy, args.bound, args.impressions)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
