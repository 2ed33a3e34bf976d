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

One more hypothesis is not a place: "this user's interest grows along a direction through
the whole collection" (a broad taste: the liked images are the collection's far end one
way, over many regions). Its interest is linear in the item's coordinates along the
region map's main axes (``linear_basis``: the top ``AXES`` principal directions of the
centroids, scaled to unit spread), ``log dwell = a + w · φ(x) + noise``, with a Gaussian
prior on ``w`` and the same noise model; its evidence is that regression's marginal
likelihood, so it wins only when a slope explains the dwells better than any place does
(``AXES`` coefficients pay their Occam penalty). It holds ``LINEAR_PRIOR`` of the prior
mass; the regions share the rest.

``value`` is the posterior-expected dwell of candidate items, which is what ``sumo`` shows:
greedy in expectation, so an uncertain posterior prefers items good under several likely
regions (what they share), and a confident one its own region's best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np
from numpy.typing import NDArray

from recommender.dwell import log_dwell
from recommender.regions import RegionMap
from recommender.state import UserState, decode_f16, decode_f32, encode_f16, encode_f32

LOG_REF = math.log(2000.0)  # log dwells are taken relative to a typical glance
Y_RANGE = (-2.5, 3.0)  # beyond: a flick or a walk-away, no more telling than this much
# A look much shorter than this user's typical one (the mean of their log dwells so far)
# counts as this much below it: flicks and accidental swipes land there, and what a taste
# shows is the long end. Relative to the user, so a fast scroller's ordinary looks are not
# cut. Tuned on three worlds, held out on six (docs/research.md).
BELOW_TYPICAL = 1.0
FLOOR_AFTER = 3.0  # views before the user's mean is trusted for that floor
# A look this long at one feed image is a phone put down or a tab left open, not attention:
# it says nothing about the image, so it is left out of the evidence (clipped, it would
# count as the strongest like there is).
IDLE_MS = 180_000.0
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
AXES = 16  # the direction hypothesis' coordinates: the map's main axes
LINEAR_PRIOR = 0.2  # prior probability that a user's taste is a direction, not a place
PRIOR_W = 0.3  # prior sd of each coordinate's slope (log dwell per unit spread)


def products(matrix: NDArray[np.float32], vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """``vectors @ matrix.T``. A request's few rows go one by one, as in ``add``: one
    (20 x 512) @ (512 x 256) product wakes OpenBLAS's threads, which then spin; in the
    service that tripled the CPU per request. Thousands of rows (the search-ceiling
    benchmark scores the whole corpus) are what those threads are for."""
    if len(vectors) <= ROW_BY_ROW:
        return np.stack([matrix @ v for v in vectors])
    return np.asarray(vectors @ matrix.T)


@cache
def _upper(m: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """``np.triu_indices(m)``, built once per size (it costs more than the sums it indexes)."""
    return np.triu_indices(m)


def interest(regions: RegionMap, sims: NDArray[np.float32]) -> NDArray[np.float64]:
    """``I_h`` of items (rows of ``sims``: their similarities to every centroid)."""
    z = (sims - regions.median) / (regions.top - regions.median)
    step = 1.0 / (1.0 + np.exp(-SHARPNESS * (z - KNEE)))
    return np.asarray(GRADED * np.clip(z, 0.0, 1.0) + (1.0 - GRADED) * step, np.float64)


@dataclass(frozen=True)
class LinearBasis:
    """``φ(x) = axes @ x - offset``: an item's coordinates along the map's main axes."""

    axes: NDArray[np.float32]  # (AXES, d): principal directions / their spread
    offset: NDArray[np.float32]  # (AXES,): the centroids' mean in those coordinates

    def __call__(self, vectors: NDArray[np.float32]) -> NDArray[np.float64]:
        """``φ`` of each row of ``vectors``."""
        return np.asarray(products(self.axes, vectors) - self.offset, np.float64)


_BASES: dict[tuple[str, int], LinearBasis] = {}


def linear_basis(regions: RegionMap) -> LinearBasis:
    """The top ``AXES`` principal directions of the region centroids (what separates the
    collection's parts), each scaled so the centroids spread by 1 along it. Derived from
    the map alone, so every process computes the same one for the same map version."""
    key = (regions.version, AXES)
    basis = _BASES.get(key)
    if basis is None:
        c = regions.centroids.astype(np.float64)
        mean = c.mean(axis=0)
        _, sv, vt = np.linalg.svd(c - mean, full_matrices=False)
        # Axes the centroids actually spread along (k centroids span at most k - 1).
        m = min(AXES, int(np.sum(sv > 1e-3 * sv[0])) if len(sv) and sv[0] > 0 else 0)
        spread = sv[:m] / math.sqrt(len(c))
        axes = (vt[:m] / spread[:, None]).astype(np.float32)
        basis = LinearBasis(axes, (axes @ mean.astype(np.float32)).astype(np.float32))
        _BASES.clear()  # one map in use at a time
        _BASES[key] = basis
    return basis


@dataclass
class Posterior:
    log_odds: NDArray[np.float64]  # (k,) unnormalised log posterior of each region
    a: NDArray[np.float64]  # (k,) fitted typical log dwell under each region
    g: NDArray[np.float64]  # (k,) fitted lift under each region
    g_sd: NDArray[np.float64]  # (k,) its posterior sd
    # The direction hypothesis: its log posterior on the regions' scale (-inf: not held),
    # fitted intercept and slopes.
    linear_log_odds: float = -math.inf
    linear_a: float = 0.0
    linear_w: NDArray[np.float64] | None = None

    @cached_property
    def _norm(self) -> tuple[NDArray[np.float64], float]:
        # Once per posterior: a request reads ``probs`` and ``linear`` several times.
        top = max(float(self.log_odds.max()), self.linear_log_odds)
        p = np.exp(self.log_odds - top)
        q = math.exp(self.linear_log_odds - top)
        total = float(p.sum()) + q
        return p / total, q / total

    @property
    def probs(self) -> NDArray[np.float64]:
        """Each region's posterior probability (with ``linear``, they sum to 1)."""
        return self._norm[0]

    @property
    def linear(self) -> float:
        """The posterior probability that the taste is a direction."""
        return self._norm[1]


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
        # The direction hypothesis' sums over the same views: coordinates, their products,
        # log dwell x coordinates. ``linear`` is False for a user whose evidence predates
        # it (their views cannot be replayed): they are searched over places only.
        self.basis = linear_basis(regions)
        m = self.basis.axes.shape[0]
        self.linear = True
        self.sf = np.zeros(m)
        self.sff = np.zeros((m, m))
        self.syf = np.zeros(m)

    @property
    def empty(self) -> bool:
        return self.n == 0.0

    def add(self, vector: NDArray[np.float32], dwell_ms: float) -> None:
        if dwell_ms > IDLE_MS:
            return
        # One matrix-vector product per view, not one product per batch: OpenBLAS spreads a
        # matrix product over threads, which on a busy 2-core server costs ~1 ms in
        # hand-offs for ~20 µs of arithmetic.
        i = interest(self.regions, self.regions.centroids @ vector)
        low = Y_RANGE[0]
        if self.n >= FLOOR_AFTER:
            low = max(low, self.sy / self.n - BELOW_TYPICAL)
        y = min(max(log_dwell(dwell_ms) - LOG_REF, low), Y_RANGE[1])
        self.n = MEMORY * self.n + 1.0
        self.sy = MEMORY * self.sy + y
        self.syy = MEMORY * self.syy + y * y
        self.si = MEMORY * self.si + i
        self.sii = MEMORY * self.sii + i * i
        self.syi = MEMORY * self.syi + y * i
        if self.linear:
            f = self.basis(vector[None, :])[0]
            self.sf = MEMORY * self.sf + f
            self.sff = MEMORY * self.sff + np.outer(f, f)
            self.syf = MEMORY * self.syf + y * f

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
        linear = (self._linear(l1, l2, rate0, shape, regions=len(a))
                  if self.linear and self.n > 0 and LINEAR_PRIOR > 0 else None)
        log_odds, lin_a, lin_w = linear or (-math.inf, 0.0, None)
        return Posterior(log_odds=-0.5 * np.log(det) - shape * np.log(rate), a=a, g=g,
                         g_sd=np.sqrt(noise * p11 / det), linear_log_odds=log_odds,
                         linear_a=lin_a, linear_w=lin_w)

    def _linear(self, l1: float, l2: float, rate0: float, shape: float, *, regions: int
                ) -> tuple[float, float, NDArray[np.float64]] | None:
        """The direction hypothesis' (log posterior, intercept, slopes), on the regions'
        scale: the same regression with the coordinates ``φ`` for the interest, so the
        prior's determinant (dropped above, equal for every region) is kept in the
        comparison. None when the fit is singular."""
        a0, v = PRIOR_A[0], NOISE**2
        m = len(self.sf)
        prior = np.diag([l1] + [v / PRIOR_W**2] * m)
        gram = np.empty((m + 1, m + 1))
        gram[0, 0], gram[0, 1:], gram[1:, 0], gram[1:, 1:] = self.n, self.sf, self.sf, self.sff
        precision = prior + gram
        b = np.concatenate([[l1 * a0 + self.sy], self.syf])
        try:
            beta = np.linalg.solve(precision, b)
            _, logdet = np.linalg.slogdet(precision)
        except np.linalg.LinAlgError:
            return None
        resid = self.syy + l1 * a0**2 - float(b @ beta)
        rate = rate0 + 0.5 * max(resid, 0.0)
        log_odds = float(
            -0.5 * logdet + 0.5 * np.sum(np.log(np.diag(prior))) - 0.5 * math.log(l1 * l2)
            - shape * math.log(rate) + math.log(LINEAR_PRIOR * regions / (1.0 - LINEAR_PRIOR)))
        return log_odds, float(beta[0]), beta[1:]

    def direction(self, post: Posterior) -> NDArray[np.float32] | None:
        """Where the direction hypothesis' expected dwell grows fastest, as a query vector
        (the items most along it are its nearest neighbours); None without a fit."""
        if post.linear_w is None:
            return None
        u = (post.linear_w @ self.basis.axes).astype(np.float32)
        n = float(np.linalg.norm(u))
        return u / n if n > 0 else None

    def value(self, post: Posterior, vectors: NDArray[np.float32]) -> NDArray[np.float64]:
        """Posterior-expected (relative) dwell of each row of ``vectors``."""
        p = post.probs
        keep = np.flatnonzero(p >= SUPPORT)
        i = interest(self.regions, products(self.regions.centroids, vectors))[:, keep]
        value = np.exp(post.a[keep] + post.g[keep] * i) @ p[keep]
        q = post.linear
        if post.linear_w is not None and q >= SUPPORT:
            # A slope extrapolates: beyond the range of log dwells seen, no more than that.
            y = post.linear_a + self.basis(vectors) @ post.linear_w
            value = value + q * np.exp(np.clip(y, *Y_RANGE))
        return np.asarray(value)

    # --- in the user's state ------------------------------------------------------------
    def save(self, state: UserState) -> None:
        sums = np.concatenate([self.si, self.sii, self.syi]).astype(np.float32)
        state.data.update(rv=self.regions.version, rn=round(self.n, 4), ry=round(self.sy, 4),
                          ryy=round(self.syy, 4), rs=encode_f16(sums))
        if self.linear:
            # float32: the products' sums need more digits than float16 keeps.
            upper = self.sff[_upper(len(self.sf))]
            state.data["rl"] = encode_f32(
                np.concatenate([self.sf, upper, self.syf]).astype(np.float32))
        else:
            state.data.pop("rl", None)

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
            m = len(ev.sf)
            lin = decode_f32(str(d["rl"])).astype(np.float64) if "rl" in d else None
            if lin is None or len(lin) != m + m * (m + 1) // 2 + m:
                ev.linear = ev.n == 0.0
            else:
                iu = _upper(m)
                ev.sf, ev.syf = lin[:m], lin[-m:]
                ev.sff[iu] = lin[m:-m]
                ev.sff = ev.sff + np.triu(ev.sff, 1).T
        return ev
