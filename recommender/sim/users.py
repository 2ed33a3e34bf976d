"""Simulated people: a hidden taste and a realistic, noisy dwell model.

How long someone looks at an image is heavy-tailed (lognormal or Weibull; most views are
short), differs a lot between people (slow readers, fast scrollers), depends a little on the
image itself (some pictures catch everyone's eye), and only partly on taste. Interest is
graded: a cat lover lingers a bit on dogs too. Each user draws their own parameters from
wide ranges, so no policy can be tuned to one exact response curve.

Affinity to a taste is calibrated against the corpus itself: ``z = 0`` at the median item's
similarity and ``z = 1`` at the user's "like" threshold (the top ``liked_fraction`` of the
corpus), so "niche" and "broad" mean the same thing on any corpus.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexer.store.base import Vector
from recommender.sim.corpus import SyntheticCorpus

# Where the sharp share of interest switches on: 0.7 of the way from the corpus median to
# the like threshold.
KNEE = 0.7
TASTE_JITTER = 0.3  # how far a taste lies off its cluster's (or topic's) centre: cos ~0.96
SATIATION_COS = 0.9  # views this alike are "the same thing again"
SATIATION_MEMORY = 50  # views remembered for satiation


class UserModel(StrEnum):
    NICHE = "niche"  # one small cluster (~0.2-0.6% of the corpus)
    BROAD = "broad"  # a direction through the collection (its far end ~5-15% liked)
    MULTI = "multi"  # two or three unrelated interests
    DRIFT = "drift"  # one interest, replaced by another midway
    NOISY = "noisy"  # weak, very noisy signal with outliers


@dataclass
class Taste:
    vector: Vector
    median: float  # corpus-median similarity to the taste
    threshold: float  # similarity at the top ``liked_fraction``
    weight: float = 1.0


@dataclass
class SimUser:
    model: str
    tastes: list[Taste]
    after: list[Taste] = field(default_factory=list)  # tastes after ``switch_at`` (drift)
    switch_at: int | None = None
    base_ms: float = 1500.0  # typical dwell on an uninteresting image
    gain: float = math.log(5.0)  # log-dwell lift for a liked image
    sharpness: float = 4.0  # how fast interest falls off below the like threshold
    graded: float = 0.4  # share of interest that grows with similarity (relatedness)
    sigma: float = 0.9  # lognormal log-sd, or the spread a Weibull shape implies
    weibull_shape: float | None = None  # None: lognormal dwell
    appeal_weight: float = 0.7
    flick_rate: float = 0.05  # accidental fast scrolls
    outlier_rate: float = 0.01  # walked away from the phone
    views: int = 0  # impressions so far (drives drift when no time is given)
    # Satiation: each earlier view of a near-copy (cosine >= SATIATION_COS) multiplies the
    # dwell by this (1: none). The fifth shot of one scene is looked at less.
    satiation: float = 1.0
    recent: list[Vector] = field(default_factory=list, repr=False)
    # Diagnostics only: dwell is exactly its expectation (no noise, flicks or walk-aways),
    # to tell what a policy makes of perfect signals from what the noise allows.
    noiseless: bool = False

    def reset(self) -> None:
        """Forget the views of a previous run (the view counter and satiation)."""
        self.views = 0
        self.recent.clear()

    def _satiated(self, vector: Vector) -> float:
        """The satiation factor of viewing ``vector`` now, and remember the view."""
        if self.satiation >= 1.0:
            return 1.0
        v = np.asarray(vector, np.float32)
        copies = sum(1 for r in self.recent if float(r @ v) >= SATIATION_COS)
        self.recent.append(v)
        del self.recent[:-SATIATION_MEMORY]
        return float(self.satiation**copies)

    @property
    def taste(self) -> Vector:
        return self.tastes[0].vector

    def tastes_at(self, t: int) -> list[Taste]:
        return self.after if self.switch_at is not None and t >= self.switch_at else self.tastes

    def affinity(self, vectors: NDArray[np.float32], t: int = 0) -> NDArray[np.float64]:
        """Calibrated affinity z per item: 0 at the corpus median, 1 at the like threshold."""
        zs = [(vectors @ ts.vector - ts.median) / (ts.threshold - ts.median)
              for ts in self.tastes_at(t)]
        return np.max(np.stack(zs), axis=0).astype(np.float64)

    def interest(self, vectors: NDArray[np.float32], t: int = 0) -> NDArray[np.float64]:
        """Interest in [0, 1]: a graded share that grows with similarity from the corpus
        median up to the like threshold (a cat lover lingers a little on dogs), plus a
        sharper share that switches on around the threshold (this is what they came for)."""
        us = [ts.weight * self.interest_curve(
                  (vectors @ ts.vector - ts.median) / (ts.threshold - ts.median))
              for ts in self.tastes_at(t)]
        return np.max(np.stack(us), axis=0)

    def interest_curve(self, z: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Interest at calibrated affinity ``z`` (0: corpus median, 1: like threshold)."""
        peak = 1.0 / (1.0 + np.exp(np.minimum(-self.sharpness * (z - KNEE), 50.0)))
        return np.asarray(self.graded * np.clip(z, 0.0, 1.0) + (1 - self.graded) * peak)

    def liked(self, vectors: NDArray[np.float32], t: int = 0) -> NDArray[np.bool_]:
        return self.affinity(vectors, t) >= 1.0

    def expected_dwell_ms(
        self, vectors: NDArray[np.float32], appeal: NDArray[np.float32] | None = None,
        t: int = 0,
    ) -> NDArray[np.float64]:
        """Mean dwell per item (flicks and walk-aways excluded: they do not depend on it)."""
        mu = math.log(self.base_ms) + self.gain * self.interest(vectors, t)
        if appeal is not None:
            mu = mu + self.appeal_weight * appeal.astype(np.float64)
        return np.exp(mu)

    def dwell_ms(
        self, vector: Vector, rng: np.random.Generator, t: int | None = None,
        appeal: float = 0.0,
    ) -> float:
        """One noisy dwell for one view. Without ``t`` the user's own view counter is used."""
        if t is None:
            t = self.views
            self.views += 1
        sated = self._satiated(vector)
        if self.noiseless:
            return sated * float(self.expected_dwell_ms(np.asarray(vector, np.float32)[None, :],
                                                        np.asarray([appeal], np.float32), t)[0])
        u = rng.random()
        if u < self.flick_rate:
            return float(rng.uniform(40.0, 300.0))
        if u < self.flick_rate + self.outlier_rate:
            return float(rng.uniform(60_000.0, 2_400_000.0))
        mean = sated * float(self.expected_dwell_ms(np.asarray(vector, np.float32)[None, :],
                                                    np.asarray([appeal], np.float32), t)[0])
        if self.weibull_shape is not None:
            k = self.weibull_shape
            return float(mean / math.gamma(1.0 + 1.0 / k) * rng.weibull(k))
        return float(mean * math.exp(-0.5 * self.sigma**2 + self.sigma * rng.standard_normal()))


def _calibrate(corpus: SyntheticCorpus, v: Vector, liked_fraction: float, weight: float = 1.0
               ) -> Taste:
    v = (v / np.linalg.norm(v)).astype(np.float32)
    s = corpus.vectors @ v
    n = len(s)
    k = max(1, int(round(liked_fraction * n)))
    threshold = float(np.partition(s, n - k)[n - k])
    median = float(np.partition(s, n // 2)[n // 2])
    return Taste(vector=v, median=median, threshold=max(threshold, median + 1e-3), weight=weight)


def jitter(rng: np.random.Generator, v: NDArray[np.float32], scale: float = TASTE_JITTER
           ) -> Vector:
    """``v`` moved by random noise of norm ~``scale`` (a taste off its centre), unit norm."""
    noise = np.asarray(rng.standard_normal(v.shape[0]), dtype=np.float32)
    w = v + scale * noise / math.sqrt(v.shape[0])
    return (w / np.linalg.norm(w)).astype(np.float32)


def make_users(
    kind: str, corpus: SyntheticCorpus, n: int, seed: int = 0,
    clusters: Sequence[int] | None = None,
) -> list[SimUser]:
    """``n`` users of one model. ``clusters`` restricts where single-cluster tastes lie
    (the gap simulation puts users in planted holes)."""
    model = UserModel(kind)
    rng = np.random.default_rng([seed, list(UserModel).index(model)])
    sizes = corpus.cluster_sizes
    present = np.flatnonzero(sizes > 0)
    small = present[sizes[present] <= np.median(sizes[present])]
    pool = np.asarray(clusters) if clusters is not None else None
    users: list[SimUser] = []
    for _ in range(n):
        def cluster(from_: NDArray[np.int64], rng: np.random.Generator = rng) -> int:
            return int(rng.choice(pool if pool is not None else from_))

        def taste_at(c: int, frac: float, weight: float = 1.0,
                     rng: np.random.Generator = rng) -> Taste:
            return _calibrate(corpus, jitter(rng, corpus.centers[c]), frac, weight)

        shape = float(rng.uniform(0.9, 1.6)) if rng.random() < 0.5 else None
        user = SimUser(
            model=model.value, tastes=[],
            base_ms=float(1500.0 * math.exp(rng.normal(0.0, 0.5))),
            gain=math.log(rng.uniform(3.0, 8.0)),
            sharpness=float(rng.uniform(3.0, 8.0)),
            graded=float(rng.uniform(0.2, 0.6)),
            sigma=float(rng.uniform(0.7, 1.1)),
            weibull_shape=shape,
            appeal_weight=float(rng.uniform(0.4, 1.0)),
        )
        if model is UserModel.NICHE:
            user.tastes = [taste_at(cluster(small), rng.uniform(0.002, 0.006))]
        elif model is UserModel.BROAD:
            if pool is not None:
                direction = jitter(rng, corpus.centers[cluster(present)])
            else:
                # A direction through the whole collection, not a place: a random mix of
                # the concepts' offsets from their mean. Interest grows along it, and the
                # liked items are the collection's far end that way, over many clusters.
                offsets = corpus.centers[present] - corpus.centers[present].mean(axis=0)
                direction = rng.standard_normal(len(present)) @ offsets
            user.tastes = [_calibrate(corpus, direction, rng.uniform(0.05, 0.15))]
        elif model is UserModel.MULTI:
            k = int(rng.integers(2, 4))
            chosen = rng.choice(pool if pool is not None else present, size=k, replace=False)
            user.tastes = [taste_at(int(c), rng.uniform(0.005, 0.02),
                                    1.0 if i == 0 else float(rng.uniform(0.7, 1.0)))
                           for i, c in enumerate(chosen)]
        elif model is UserModel.DRIFT:
            a, b = rng.choice(pool if pool is not None else present, size=2, replace=False)
            user.tastes = [taste_at(int(a), rng.uniform(0.005, 0.02))]
            user.after = [taste_at(int(b), rng.uniform(0.005, 0.02))]
            user.switch_at = int(rng.integers(100, 201))
        else:  # NOISY
            user.tastes = [taste_at(cluster(present), rng.uniform(0.005, 0.02))]
            user.gain = math.log(rng.uniform(2.0, 4.0))
            user.sigma = float(rng.uniform(1.3, 1.7))
            user.weibull_shape = float(rng.uniform(0.6, 0.8)) if shape is not None else None
            user.flick_rate = 0.15
            user.outlier_rate = 0.05
        users.append(user)
    return users
