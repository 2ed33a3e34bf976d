"""How much would detecting a change of taste be worth? An upper bound for drifting users.

A drifting user's taste is replaced by another between impressions 30 and 70. This runs
``sumo`` on the drifting users of a world twice, as the benchmark runs them: as it is, and
with its region evidence wiped exactly when the taste changes (the simulator's switch time:
a detector no real one can beat, since it is never late and never fires by mistake). It
prints the drifting users' capture over the whole run and over the impressions after the
switch:

    PYTHONPATH=. python research/drift_reset.py --world default --users 24
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from indexer.store.base import Hit
from recommender.sim.harness import run_with_oracle, store_of
from recommender.sim.runner import BatchHook
from recommender.sim.users import SimUser
from recommender.sim.worlds import world
from recommender.state import UserState

EVIDENCE = ("rv", "rs", "rn", "ry", "ryy", "rl")  # RegionEvidence's keys in the state


def reset_at_switch(user: SimUser) -> BatchHook:
    """An ``on_batch`` hook that drops the region evidence once the batch crosses the switch."""
    done = [False]

    def hook(state: UserState, batch: list[Hit], t: int) -> None:
        assert user.switch_at is not None
        if not done[0] and t + len(batch) >= user.switch_at:
            for key in EVIDENCE:
                state.data.pop(key, None)
            done[0] = True

    return hook


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", default="default")
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    w = world(args.world)
    corpus = w.make_corpus(args.items, args.seed)
    with store_of(corpus, exact=True) as store:
        for label in ("as is", "reset at the switch"):
            whole, after = [], []
            for i, user in enumerate(w.make_users("drift", corpus, args.users, seed=args.seed)):
                hook = reset_at_switch(user) if label != "as is" else None
                run, oracle = run_with_oracle(store, corpus, user, i, "sumo", horizon=100,
                                              batch=5, seed=args.seed, on_batch=hook)
                whole.append(run.capture(oracle, 100))
                after.append(run.capture(oracle, 100, start=user.switch_at or 0))
            print(f"{args.world} drift, {label}: capture {np.mean(whole):.3f}, after the "
                  f"switch {np.mean(after):.3f}")
    print(f"({time.perf_counter() - t0:.0f} s, {args.items} items, {args.users} users, "
          "exact search)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
