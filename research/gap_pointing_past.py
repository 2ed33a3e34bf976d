"""Does a user's pairwise evidence point past the supply, toward what is missing?

The gap report's issue (#15) suggested a dwell-only signal: for someone who wants missing
content, the pairwise evidence at their learned target should keep pointing away from the
items around it, into the hole. This measures whether the state SUMO keeps carries that
direction, on the planted-gap simulation through the real service with **no searches**
(dwell only, 60 views per user, the default policy), for two estimates of the direction:

- ``moment``: the optimizer's first moment (a tangent vector at the target), and
- ``window``: the regression of the 12 windowed views' dwell scores on their vectors,
  projected onto the target's tangent plane;

each against the true tangent direction from the user's target toward their hidden taste
(cosine; 0 is no information), per user and averaged over each hole's 8 users (a report
reads a region's users together, so the cohort's mean direction is the fair test).
It also prints ``persistence`` = |m̂| / sqrt(v̂), Adam's own signal-to-noise.

    PYTHONPATH=. python research/gap_pointing_past.py --seeds 3
"""

from __future__ import annotations

import argparse

import numpy as np

from recommender.api.app import create_app
from recommender.sim.gapsim import GapSim, corpora, people, served_store
from recommender.state import UserState, decode_f16, decode_unit_i8
from recommender.users.document import NAMESPACE, state_body


def tangent(v: np.ndarray, at: np.ndarray) -> np.ndarray:
    t = v - (v @ at) * at
    return t / (np.linalg.norm(t) + 1e-12)


def directions(st: UserState) -> tuple[np.ndarray, np.ndarray, float]:
    assert st.target is not None  # every simulated user has given feedback
    d, t = st.data, st.target.astype(np.float64)
    m, v, n = decode_f16(d["m"]).astype(np.float64), float(d["v"]), float(d["n"])
    persistence = float(np.linalg.norm(m / (1 - 0.5**n)) / (np.sqrt(v / (1 - 0.8**n)) + 1e-12))
    x = np.stack([decode_unit_i8(s) for s, _ in d["win"]]).astype(np.float64)
    z = np.clip([float(z) for _, z in d["win"]], -2, 2)
    g = ((z - z.mean())[:, None] * (x - x.mean(0))).sum(0)
    return tangent(m, t), tangent(g, t), persistence


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    sim = GapSim(searches=0)
    rows: dict[str, list[tuple[float, float, float]]] = {"hole": [], "served": []}
    cohort: list[tuple[float, float]] = []
    for seed in range(args.seeds):
        holed, _ = corpora(sim, seed)
        users = people(sim, holed, holed.holes, seed)
        with served_store(holed, users, sim, seed, create_app) as store:
            groups: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
            for doc in store.scroll_documents(NAMESPACE):
                st = UserState.from_dict(state_body(doc.body))
                i = int(st.user_id.rsplit("-", 1)[1])
                taste = users[i].taste / np.linalg.norm(users[i].taste)
                moment, window, persistence = directions(st)
                assert st.target is not None
                toward = tangent(taste.astype(np.float64), st.target.astype(np.float64))
                hole = i < sim.per_hole * sim.holes
                rows["hole" if hole else "served"].append(
                    (float(moment @ toward), float(window @ toward), persistence))
                if hole:
                    groups.setdefault(i // sim.per_hole, []).append((moment, window, toward))
            for g in groups.values():
                mean = [np.mean([x[k] for x in g], axis=0) for k in range(3)]
                mean = [v / (np.linalg.norm(v) + 1e-12) for v in mean]
                cohort.append((float(mean[0] @ mean[2]), float(mean[1] @ mean[2])))
    print(f"{args.seeds} seeds, dwell only, {sim.views} views per user; cosine of the "
          "estimated direction to the true one (0: no information)")
    print(f"{'users':<22}{'n':>4}{'moment':>10}{'window':>10}{'persistence':>13}")
    for name, r in rows.items():
        a = np.asarray(r)
        print(f"{name + ' (median)':<22}{len(a):>4}{np.median(a[:, 0]):>10.3f}"
              f"{np.median(a[:, 1]):>10.3f}{np.median(a[:, 2]):>13.3f}")
    c = np.asarray(cohort)
    print(f"{'hole cohorts (mean)':<22}{len(c):>4}{c[:, 0].mean():>10.3f}{c[:, 1].mean():>10.3f}")


if __name__ == "__main__":
    main()
