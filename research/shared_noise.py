"""Is the per-hypothesis noise what makes ``sumo``'s posterior chase neighbouring regions?

``RegionEvidence.posterior`` learns the dwell noise per hypothesis (Normal-inverse-gamma),
so a region whose interest happens to follow the small differences between a batch's
similar views gets a smaller noise and a much larger evidence. A person's noise is theirs,
not a region's: this registers ``sumo-sharednoise``, whose evidence uses one noise
variance for every hypothesis (the posterior-weighted mean of theirs) in a Gaussian
marginal likelihood. Paired against ``sumo``:

    PYTHONPATH=. python research/shared_noise.py --world default --items 10000 --users 24 \\
        --exact --paired --vs sumo-sharednoise
"""

from __future__ import annotations

import math

import numpy as np
from variants import study_policy

import recommender.policies.evidence as evidence_module
from recommender.policies.evidence import Posterior, RegionEvidence


class SharedNoiseEvidence(RegionEvidence):
    def posterior(self) -> Posterior:
        post = super().posterior()
        if self.n == 0:
            return post
        (a0, sa), (g0, sg) = evidence_module.PRIOR_A, evidence_module.PRIOR_G
        v, shape0 = evidence_module.NOISE**2, evidence_module.NOISE_SHAPE
        l1, l2 = v / sa**2, v / sg**2
        b1 = l1 * a0 + self.sy
        b2 = l2 * g0 + self.syi
        resid = np.maximum(self.syy + l1 * a0**2 + l2 * g0**2 - (b1 * post.a + b2 * post.g), 0)
        shape = shape0 + 0.5 * self.n
        rate0 = (shape0 - 1.0) * v
        rate = rate0 + 0.5 * resid
        p = post.probs
        sigma2 = float(p @ (rate / shape)) / max(float(p.sum()), 1e-12)
        det_term = post.log_odds + shape * np.log(rate)  # -0.5 log det
        log_odds = det_term - (rate - rate0) / sigma2
        lin = post.linear_log_odds
        if math.isfinite(lin) and post.linear_w is not None:
            # Same swap for the direction hypothesis: recover its rate from its fit.
            f_b = np.concatenate([[l1 * a0 + self.sy], self.syf])
            beta = np.concatenate([[post.linear_a], post.linear_w])
            lin_rate = rate0 + 0.5 * max(self.syy + l1 * a0**2 - float(f_b @ beta), 0.0)
            lin = lin + shape * math.log(lin_rate) - (lin_rate - rate0) / sigma2
        return Posterior(log_odds=log_odds, a=post.a, g=post.g, g_sd=post.g_sd,
                         linear_log_odds=lin, linear_a=post.linear_a, linear_w=post.linear_w)


study_policy("sumo-sharednoise",
             "sumo with one noise variance for every hypothesis (research)",
             RegionEvidence=SharedNoiseEvidence)

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
