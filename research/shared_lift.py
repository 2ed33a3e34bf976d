"""Does a per-region lift let neighbouring regions explain the same views?

Under each region hypothesis ``RegionEvidence`` fits the user's lift ``g`` (how much longer
they look at what they want) on its own, so a neighbour of the right region, for which
the liked views have lower interest, explains them as well with a larger lift, and the
posterior cannot tell the two apart. A person's lift is theirs, not a region's. This
registers ``sumo-sharedlift``: the posterior is computed twice, the second time with the
lift's prior centred on the first posterior's expected lift (an empirical-Bayes step) and
narrowed to sd 0.3 (``SUMO_STUDY_LIFT_SD`` sets another):

    PYTHONPATH=. python research/shared_lift.py --world default --items 10000 --users 24 \\
        --exact --paired --vs sumo-sharedlift
"""

from __future__ import annotations

import os

from variants import patched, study_policy

import recommender.policies.evidence as evidence_module
from recommender.policies.evidence import Posterior, RegionEvidence

LIFT_SD = float(os.environ.get("SUMO_STUDY_LIFT_SD", "0.3"))
MIN_VIEWS = 5.0  # before this, the first posterior's lift is the prior's


class SharedLiftEvidence(RegionEvidence):
    def posterior(self) -> Posterior:
        post = super().posterior()
        if self.n < MIN_VIEWS:
            return post
        lift = float(post.probs @ post.g) / max(float(post.probs.sum()), 1e-12)
        with patched(evidence_module, {"PRIOR_G": (max(lift, 0.2), LIFT_SD)}):
            return super().posterior()


study_policy("sumo-sharedlift",
             "sumo with the lift's prior centred on the user's expected lift (research)",
             RegionEvidence=SharedLiftEvidence)

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
