"""The target's step: Riemannian Adam (the product) against the momentum step it replaced.

``sumo-target`` (the target optimiser alone, which picks items with the target) runs every
taste of each world twice on the same users and dwell draws: once with the product's
``SumoTargetPolicy._step`` (Riemannian Adam on the sphere) and once with the previous step
(``momentum_step`` below: tangent momentum 0.5, one step size 0.12 -> 0.015 per unit of
summed pair gradient). Prints the mean capture at T per world and the difference:

    python research/bench_target_step.py                      # every world, 3000 items
    python research/bench_target_step.py --worlds clusters:mixed,flat --items 20000

Small corpora and few users: a difference under ~0.05 per world is noise.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np

from indexer.store.base import Vector
from recommender.policies.sumo import SumoTargetPolicy
from recommender.sim.harness import run_with_oracle, store_of
from recommender.sim.worlds import world, world_names
from recommender.state import decode_f16, encode_f16, unit

ADAM = SumoTargetPolicy._step


def momentum_step(self: SumoTargetPolicy, d: dict[str, Any], target: Vector,
                  grad: np.ndarray, pairs: int) -> Vector:
    """The step before Riemannian Adam: tangent momentum, a decaying step per unit of
    summed pair gradient (so the step's size follows the gradient's), capped at 0.8 rad."""
    g_tan = grad - np.dot(grad, target) * target
    m = decode_f16(str(d["m"])).astype(np.float64) if "m" in d else np.zeros_like(g_tan)
    m = 0.5 * m + 0.5 * g_tan
    n = float(d.get("n", 0.0)) + 1.0
    lr = 0.015 + (0.12 - 0.015) * 0.5 ** (n / 10.0)
    step = lr * m
    norm = float(np.linalg.norm(step))
    if norm > 0.8:
        step *= 0.8 / norm
    new = unit(target + step.astype(np.float32))
    m = m - np.dot(m, new) * new
    d.update(m=encode_f16(m.astype(np.float32)), n=n)
    return new


def capture(name: str, args: argparse.Namespace) -> dict[str, float]:
    w = world(name)
    corpus = w.make_corpus(args.items, args.seed)
    out: dict[str, list[float]] = {"adam": [], "momentum": []}
    with store_of(corpus) as store:
        for taste in w.tastes:
            for i, user in enumerate(w.make_users(taste, corpus, args.users, seed=args.seed)):
                for label, step in (("adam", ADAM), ("momentum", momentum_step)):
                    SumoTargetPolicy._step = step  # type: ignore[method-assign]
                    try:
                        run, oracle = run_with_oracle(store, corpus, user, i, "sumo-target",
                                                      horizon=args.horizon, batch=args.batch,
                                                      seed=args.seed)
                    finally:
                        SumoTargetPolicy._step = ADAM  # type: ignore[method-assign]
                    out[label].append(run.capture(oracle, args.horizon))
    return {k: float(np.mean(v)) for k, v in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worlds", default="all", help="comma-separated, or all")
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--users", type=int, default=3, help="per taste")
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    names = world_names() if args.worlds == "all" else args.worlds.split(",")
    t0 = time.perf_counter()
    diffs = []
    print(f"| world | Adam T={args.horizon} | momentum | Adam - momentum |")
    print("|---|---|---|---|")
    for name in names:
        c = capture(name, args)
        diffs.append(c["adam"] - c["momentum"])
        print(f"| {name} | {c['adam']:.3f} | {c['momentum']:.3f} | {diffs[-1]:+.3f} |",
              flush=True)
    print(f"mean difference {np.mean(diffs):+.3f} over {len(names)} worlds, Adam better in "
          f"{sum(d > 0 for d in diffs)} ({time.perf_counter() - t0:.0f} s, {args.items} items, "
          f"{args.users} users per taste, seed {args.seed})")
    return 0 if math.isfinite(float(np.mean(diffs))) else 1


if __name__ == "__main__":
    raise SystemExit(main())
