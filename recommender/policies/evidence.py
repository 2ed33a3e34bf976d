"""What one user's dwell times say about which region of the corpus they want.

Each region ``h`` of the map (``recommender.regions``) is a hypothesis: "this user wants
what lies at ``h``". Under it, a view's log dwell is a line in the view's interest ``I_h``,

    log dwell = a + g · I_h(x) + noise,

where ``I_h`` rises from 0 for an item as unrelated as the corpus median to 1 for one as
close as a narrow taste's favourites (a graded share, plus a smooth step), ``a`` is this
user's typical dwell on an uninteresting image and ``g`` how much longer they look at what
they want. Both are unknown and differ a lot between people, so each hypothesis fits its
own, with a Gaussian prior: the evidence for ``h`` is the marginal likelihood of that
Bayesian linear regression. A slow reader and a fast scroller need no normalisation, and
a run of liked views does not shift a baseline the way a running median does.

Everything the regression needs is six sums (three shared, three per region), which fade by
``MEMORY`` per view so that a changed taste is found again: one float16 triple per region
in the user's state.

``value`` is the posterior-expected dwell of candidate items, which is what ``sumo`` shows:
greedy in expectation, so an uncertain posterior prefers items good under several likely
regions (what they share), and a confident one its own region's best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from recommender.dwell import log_dwell
from recommender.regions import RegionMap
from recommender.state import UserState, decode_f16, encode_f16

LOG_REF = math.log(2000.0)  # log dwells are taken relative to a typical glance
Y_RANGE = (-2.5, 3.0)  # beyond: a flick or a walk-away, no more telling than this much
PRIOR_A = (0.0, 0.7)  # a user's typical log dwell (relative): mean, sd
PRIOR_G = (1.5, 0.6)  # extra log dwell on what they want: mean, sd (x4.5, from x1.4 to x15)
NOISE = 1.0  # prior guess of the log-dwell noise sd (lognormal dwell spreads are ~0.7-1.2)
# The noise is learned per user and per hypothesis (a Normal-inverse-gamma prior): a very
# noisy person's dwells then move the posterior as little as they deserve. NOISE_SHAPE is
# the prior's weight, in views, on NOISE.
NOISE_SHAPE = 5.0
GRADED = 0.4  # share of interest growing with similarity below the favourites...
KNEE, SHARPNESS = 0.7, 5.0  # ...and the rest, a smooth step around 0.7 of the way there
MEMORY = 0.99  # per view: old evidence fades
SUPPORT = 1e-4  # regions less likely than this are left out of the expected value
ROW_BY_ROW = 64  # candidates up to this many are scored with matrix-vector products


def interest(regions: RegionMap, sims: NDArray[np.float32]) -> NDArray[np.float64]:
    """``I_h`` of items (rows of ``sims``: their similarities to every centroid)."""
    z = (sims - regions.median) / (regions.top - regions.median)
    step = 1.0 / (1.0 + np.exp(-SHARPNESS * (z - KNEE)))
    return np.asarray(GRADED * np.clip(z, 0.0, 1.0) + (1.0 - GRADED) * step, np.float64)


@dataclass
class Posterior:
    log_odds: NDArray[np.float64]  # (k,) unnormalised log posterior of each region
    a: NDArray[np.float64]  # (k,) fitted typical log dwell under each region
    g: NDArray[np.float64]  # (k,) fitted lift under each region
    g_sd: NDArray[np.float64]  # (k,) its posterior sd

    @property
    def probs(self) -> NDArray[np.float64]:
        p = np.exp(self.log_odds - self.log_odds.max())
        return np.asarray(p / p.sum())


class RegionEvidence:
    """The regression's sums for one user over one region map."""

    def __init__(self, regions: RegionMap) -> None:
        self.regions = regions
        k = regions.size
        self.n = 0.0  # views (faded)
        self.sy = 0.0  # sum of log dwells
        self.syy = 0.0  # sum of squared log dwells
        self.si = np.zeros(k)  # sum of interests, per region
        self.sii = np.zeros(k)  # sum of squared interests
        self.syi = np.zeros(k)  # sum of log dwell x interest

    @property
    def empty(self) -> bool:
        return self.n == 0.0

    def add(self, vector: NDArray[np.float32], dwell_ms: float) -> None:
        # One matrix-vector product per view, not one product per batch: OpenBLAS spreads a
        # matrix product over threads, which on a busy 2-core server costs ~1 ms in
        # hand-offs for ~20 µs of arithmetic.
        i = interest(self.regions, self.regions.centroids @ vector)
        y = min(max(log_dwell(dwell_ms) - LOG_REF, Y_RANGE[0]), Y_RANGE[1])
        self.n = MEMORY * self.n + 1.0
        self.sy = MEMORY * self.sy + y
        self.syy = MEMORY * self.syy + y * y
        self.si = MEMORY * self.si + i
        self.sii = MEMORY * self.sii + i * i
        self.syi = MEMORY * self.syi + y * i

    def posterior(self) -> Posterior:
        """Each region's fitted line and its evidence (terms equal for all regions dropped).

        Bayesian linear regression with unknown noise (Normal-inverse-gamma): the line's
        prior is ``PRIOR_A`` x ``PRIOR_G`` at noise ``NOISE``, scaled with the noise; the
        noise variance has an inverse-gamma prior of shape ``NOISE_SHAPE`` and mean
        ``NOISE**2``. The evidence is then a Student-t marginal likelihood: a hypothesis
        gains by explaining the variance of the dwells, not by fitting one outlier."""
        (a0, sa), (g0, sg), v = PRIOR_A, PRIOR_G, NOISE**2
        # Prior precision (in units of the noise variance) of the line's two coefficients.
        l1, l2 = v / sa**2, v / sg**2
        # Posterior precision [[p11, p12], [p12, p22]] and precision-weighted mean [b1, b2].
        p11 = l1 + self.n
        p12 = self.si
        p22 = l2 + self.sii
        b1 = l1 * a0 + self.sy
        b2 = l2 * g0 + self.syi
        det = p11 * p22 - p12 * p12
        a = (p22 * b1 - p12 * b2) / det
        g = (p11 * b2 - p12 * b1) / det
        shape0 = NOISE_SHAPE
        rate0 = (NOISE_SHAPE - 1.0) * v  # prior mean of the noise variance: NOISE**2
        shape = shape0 + 0.5 * self.n
        resid = self.syy + l1 * a0**2 + l2 * g0**2 - (b1 * a + b2 * g)
        rate = rate0 + 0.5 * np.maximum(resid, 0.0)
        noise = rate / shape  # the posterior's typical noise variance, per hypothesis
        return Posterior(log_odds=-0.5 * np.log(det) - shape * np.log(rate), a=a, g=g,
                         g_sd=np.sqrt(noise * p11 / det))

    def value(self, post: Posterior, vectors: NDArray[np.float32]) -> NDArray[np.float64]:
        """Posterior-expected (relative) dwell of each row of ``vectors``."""
        p = post.probs
        keep = np.flatnonzero(p >= SUPPORT)
        # A request's few candidates row by row, as in ``add``: one (20 x 512) @ (512 x 256)
        # product wakes OpenBLAS's threads, which then spin; in the service that tripled the
        # CPU per request. Thousands of rows (the search-ceiling benchmark scores the whole
        # corpus) are what those threads are for.
        sims = (np.stack([self.regions.centroids @ v for v in vectors])
                if len(vectors) <= ROW_BY_ROW else vectors @ self.regions.centroids.T)
        i = interest(self.regions, sims)[:, keep]
        return np.asarray(np.exp(post.a[keep] + post.g[keep] * i) @ p[keep])

    # --- in the user's state ------------------------------------------------------------
    def save(self, state: UserState) -> None:
        sums = np.concatenate([self.si, self.sii, self.syi]).astype(np.float32)
        state.data.update(rv=self.regions.version, rn=round(self.n, 4), ry=round(self.sy, 4),
                          ryy=round(self.syy, 4), rs=encode_f16(sums))

    @classmethod
    def load(cls, state: UserState, regions: RegionMap) -> RegionEvidence:
        """The user's evidence, or none when it refers to another map (a fresh search)."""
        ev = cls(regions)
        d = state.data
        if d.get("rv") == regions.version and "rs" in d:
            k = regions.size
            sums = decode_f16(str(d["rs"])).astype(np.float64)
            ev.si, ev.sii, ev.syi = sums[:k], sums[k:2 * k], sums[2 * k:]
            ev.n, ev.sy = float(d["rn"]), float(d["ry"])
            # A state saved before the noise was learned: its typical squared dwell.
            ev.syy = float(d.get("ryy", ev.sy**2 / ev.n + ev.n * NOISE**2 if ev.n else 0.0))
        return ev
