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
  can do).

    python benchmarks/bench_gap_ceiling.py                  # sumo, rocchio
    python benchmarks/bench_gap_ceiling.py --policies sumo,qdrant-recommend-best
    python benchmarks/bench_gap_ceiling.py --dim 512          # CLIP's width: further still
    python benchmarks/bench_gap_ceiling.py --policies sumo --set REPEL=1.0
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from indexer.store.base import Store
from indexer.store.edge import EdgeStore
from recommender.sim.corpus import SyntheticCorpus, load_corpus, make_corpus
from recommender.sim.runner import run_user
from recommender.sim.users import SimUser, make_users
from recommender.sim.variants import override_or_exit

# The planted-gap simulation's settings (tests/recommender/test_gaps_sim.py).
N_ITEMS, DIM, CLUSTERS, HOLES = 6000, 64, 40, (3, 11, 23)
PER_HOLE, IMPRESSIONS, BATCH = 8, 120, 10


def geometry(corpus: SyntheticCorpus) -> None:
    for h in HOLES:
        sims = corpus.vectors @ corpus.centers[h]
        top = corpus.vectors[np.argsort(-sims)[:30]].mean(axis=0)
        print(f"hole {h:>2}: best item cosine {sims.max():.3f}, mean of the 30 nearest items "
              f"{top @ corpus.centers[h] / np.linalg.norm(top):.3f}")


def learned_targets(
    store: Store, corpus: SyntheticCorpus, users: list[SimUser], policy: str
) -> None:
    by_hole: dict[int, list[np.ndarray]] = {h: [] for h in HOLES}
    to_taste: list[float] = []
    for i, user in enumerate(users):
        trace = run_user(store, corpus, user, i, policy, horizon=IMPRESSIONS, batch=BATCH,
                         seed=i)
        if trace.target is None:
            continue
        hole = HOLES[int(np.argmax(corpus.centers[list(HOLES)] @ user.taste))]
        by_hole[hole].append(trace.target)
        to_taste.append(float(trace.target @ user.taste))
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
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a constant of recommender.policies.sumo for this run")
    args = ap.parse_args()
    override_or_exit(args.set)
    corpus = make_corpus(N_ITEMS, dim=args.dim, clusters=CLUSTERS, seed=1, holes=HOLES)
    users = make_users("niche", corpus, PER_HOLE * len(HOLES), seed=5, clusters=list(HOLES))
    print(f"{N_ITEMS} items, {args.dim}-d, {CLUSTERS} clusters, holes {HOLES}; {len(users)} users "
          f"with tastes in the holes, {IMPRESSIONS} impressions each; the report needs 0.9")
    geometry(corpus)
    folder = Path(tempfile.mkdtemp(prefix="sumo-gap-ceiling-"))
    try:
        with EdgeStore(folder) as store:
            load_corpus(store, corpus)
            for policy in args.policies.split(","):
                learned_targets(store, corpus, users, policy)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
