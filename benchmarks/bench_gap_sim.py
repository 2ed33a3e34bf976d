"""The planted-gap proof over seeds: how often the report finds all removed clusters.

    python benchmarks/bench_gap_sim.py --seeds 10

Per seed (``recommender.sim.gapsim``): three mid-sized clusters removed from a synthetic
corpus, 8 users per hole and 24 users of served clusters use the HTTP service (one search
from the feed's box, then 60 views), and a control run keeps every cluster. Prints, per
seed, the holes found (a flagged region among the top 3 whose centroid has the hole's
centre as its nearest cluster centre) and the gaps flagged in the control; then the rates.
Target: 3 of 3 on at least 9 of 10 seeds, nothing flagged on 10 of 10 controls.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recommender.api.app import create_app
from recommender.gaps.report import build_report
from recommender.sim.gapsim import GapSim, corpora, found_holes, people, served_store
from recommender.sim.text import SyntheticText


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first", type=int, default=0, help="first seed")
    ap.add_argument("--per-hole", type=int, default=8)
    ap.add_argument("--views", type=int, default=60)
    ap.add_argument("--searches", type=int, default=1, help="searches per user (0: dwell only)")
    ap.add_argument("--items", type=int, default=6000)
    args = ap.parse_args()
    sim = GapSim(items=args.items, per_hole=args.per_hole, views=args.views,
                 searches=args.searches)
    all_found = clean = 0
    hole_reach: list[float] = []  # reach (before the margin) of the regions that found holes
    control_reach: list[float] = []  # the highest of each control's regions with searches
    for seed in range(args.first, args.first + args.seeds):
        t0 = time.perf_counter()
        holed, full = corpora(sim, seed)
        line = []
        for name, corpus in (("holes", holed), ("control", full)):
            with served_store(corpus, people(sim, corpus, holed.holes, seed), sim,
                              seed, create_app) as store:
                report = build_report(store, encoder=SyntheticText(corpus, seed))
            margin = report.options.reach_margin
            if name == "holes":
                found = found_holes(report.regions, corpus, holed.holes)
                hole_reach += [r.reach_ratio * margin for r in report.regions[:3]
                               if r.gap and int(np.argmax(corpus.centers @ r.centroid)) in found]
                all_found += len(found) == len(holed.holes)
                line.append(f"found {len(found)}/{len(holed.holes)} {found} "
                            f"(flagged {len(report.gaps)})")
            else:
                clean += not report.gaps
                control_reach.append(max((r.reach_ratio * margin for r in report.regions
                                          if r.searches), default=float("nan")))
                line.append(f"control flagged {len(report.gaps)}")
        print(f"seed {seed}: holes {holed.holes}: " + "; ".join(line)
              + f"  [{time.perf_counter() - t0:.0f} s]", flush=True)
    print(f"all holes found on {all_found}/{args.seeds} seeds; control clean on "
          f"{clean}/{args.seeds} (per hole {sim.per_hole} users, {sim.views} views, "
          f"{sim.searches} search(es) each)")
    if hole_reach:
        print(f"margin: reach of the regions that found holes {min(hole_reach):.3f}-"
              f"{max(hole_reach):.3f}; controls' highest region with searches "
              f"{np.nanmax(control_reach):.3f} (a gap needs > {margin})")


if __name__ == "__main__":
    main()
