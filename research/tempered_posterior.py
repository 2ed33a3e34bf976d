"""Should the region posterior weigh its evidence less (or more) than Bayes says?

A very noisy user's posterior follows single long looks (``research/diagnose_sumo.py
--items 10000 --users 4 --models noisy --exact --trace noisy:1``): the model's noise law is
lighter-tailed than such a person's, and a tempered ("safe Bayes") posterior raises each
hypothesis' marginal likelihood to a power ``ETA`` below 1 against such misfit. This
registers ``sumo-tempered-0.7`` and ``sumo-tempered-1.3``: ``sumo`` with every region's
log marginal likelihood, and the direction hypothesis' (its prior odds untouched), times
``ETA``:

    PYTHONPATH=. python research/tempered_posterior.py --world default --items 10000 \\
        --users 24 --exact --paired --vs sumo-tempered-0.7
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import replace

import recommender.policies.sumo as sumo
from indexer.store.base import Hit
from recommender.policies import REGISTRY
from recommender.policies.evidence import LINEAR_PRIOR, Posterior, RegionEvidence
from recommender.state import UserState


def tempered(eta: float) -> type[RegionEvidence]:
    class Tempered(RegionEvidence):
        def posterior(self) -> Posterior:
            post = super().posterior()
            prior = math.log(LINEAR_PRIOR * len(post.a) / (1.0 - LINEAR_PRIOR))
            return replace(post, log_odds=eta * post.log_odds,
                           linear_log_odds=eta * (post.linear_log_odds - prior) + prior)

    return Tempered


def tempered_policy(eta: float) -> type[sumo.SumoPolicy]:
    evidence = tempered(eta)

    class TemperedPolicy(sumo.SumoPolicy):
        name = f"sumo-tempered-{eta:g}"
        description = f"sumo with its region evidence to the power {eta:g} (research)"

        def recommend(self, state: UserState, limit: int, exclude: Collection[str]
                      ) -> list[Hit]:
            # The policy reads ``RegionEvidence`` from its module: swapped for this call only
            # (a study runs one user at a time).
            sumo.RegionEvidence = evidence  # type: ignore[misc]
            try:
                return super().recommend(state, limit, exclude)
            finally:
                sumo.RegionEvidence = RegionEvidence  # type: ignore[misc]

    return TemperedPolicy


for _eta in (0.7, 1.3):
    _policy = tempered_policy(_eta)
    REGISTRY[_policy.name] = _policy

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
