"""Weighted spherical k-means, with k chosen by the data (silhouette on a sample).

Targets are unit vectors compared by cosine, so clusters are cones: each centre is the
normalised weighted sum of its members, and assignment is by largest dot product. k is
not a setting: a grid of candidates is fitted and the one whose (weighted, cosine)
silhouette is highest wins, so two planted gaps are not merged and one is not split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]

# k = 1 wins only when no split separates the demand better than this silhouette: real
# clusters of noisy targets in 512-d score well above it, splits of one blob well below.
MIN_SILHOUETTE = 0.12
REFINE_STEPS = 5  # Lloyd steps refining the chosen k's centres on the whole fit sample


@dataclass(frozen=True)
class Clustering:
    centers: F32  # (k, d) unit rows
    labels: NDArray[np.int64]  # (n,) cluster of each point
    k: int
    silhouette: float  # of the chosen k (nan for k = 1)
    tried: dict[int, float]  # candidate k -> silhouette


def unit_rows(a: NDArray[np.floating]) -> F32:
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return (a / np.where(n > 0, n, 1.0)).astype(np.float32)


def weighted_sums(
    x: F32, w: NDArray[np.float64], labels: NDArray[np.int64], k: int
) -> NDArray[np.float64]:
    """Per-cluster weighted sums of rows: rows sorted by cluster, each run summed. O(n·d);
    a dense (k × n) one-hot product costs k times that, and ``np.add.reduceat`` over rows
    measured 2-3x slower than these slices here."""
    out = np.zeros((k, x.shape[1]), dtype=np.float64)
    if x.shape[0] == 0:
        return out
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    weighted = x[order] * w[order, None].astype(np.float32)
    for j in range(k):
        if bounds[j + 1] > bounds[j]:
            out[j] = weighted[bounds[j]:bounds[j + 1]].sum(axis=0)
    return out


def _plus_plus(x: F32, w: NDArray[np.float64], k: int, rng: np.random.Generator) -> F32:
    """k-means++ seeding with cosine distance, points drawn in proportion to weight."""
    n = x.shape[0]
    first = int(rng.choice(n, p=w / w.sum()))
    centers = [x[first]]
    dist = np.maximum(0.0, 1.0 - x @ x[first]).astype(np.float64)
    for _ in range(1, k):
        p = w * dist**2
        total = p.sum()
        idx = int(rng.choice(n, p=p / total)) if total > 0 else int(rng.integers(n))
        centers.append(x[idx])
        dist = np.minimum(dist, np.maximum(0.0, 1.0 - x @ x[idx]))
    return np.stack(centers).astype(np.float32)


def spherical_kmeans(
    x: F32, w: NDArray[np.float64], k: int, *, seed: int = 0, iters: int = 50, restarts: int = 3
) -> tuple[F32, NDArray[np.int64], float]:
    """Best of ``restarts`` runs: (centres, labels, weighted mean cosine to own centre)."""
    best: tuple[F32, NDArray[np.int64], float] | None = None
    for r in range(restarts):
        rng = np.random.default_rng(seed * 1000 + r)
        c = _plus_plus(x, w, k, rng)
        labels = np.zeros(x.shape[0], dtype=np.int64)
        for it in range(iters):
            sims = x @ c.T
            new = np.argmax(sims, axis=1)
            if it > 0 and np.array_equal(new, labels):
                break
            labels = new
            sums = weighted_sums(x, w, labels, k)
            for j in np.flatnonzero(np.linalg.norm(sums, axis=1) == 0):
                # An empty cluster restarts at the point worst served by its centre.
                worst = int(np.argmin(sims[np.arange(x.shape[0]), labels]))
                sums[j] = x[worst]
                labels[worst] = j
            c = unit_rows(sums)
        fit = float(np.sum(w * np.sum(x * c[labels], axis=1)) / w.sum())
        if best is None or fit > best[2]:
            best = (c, labels, fit)
    assert best is not None
    return best


def silhouette(x: F32, w: NDArray[np.float64], labels: NDArray[np.int64],
               d: NDArray[np.float64] | None = None) -> float:
    """Weighted mean silhouette with cosine distance (x small enough for an n×n matrix;
    ``d``, its distance matrix, when the caller scores several labellings of one x)."""
    ks = np.unique(labels)
    if len(ks) < 2:
        return float("nan")
    if d is None:
        d = distances(x)
    onehot = (labels[:, None] == ks[None, :]).astype(np.float64)  # (n, k)
    wk = onehot * w[:, None]
    sums = d @ wk  # (n, k): weighted distance sums to each cluster
    mass = wk.sum(axis=0)  # (k,)
    own = np.searchsorted(ks, labels)
    rows = np.arange(len(labels))
    # Own cluster excludes the point itself (its distance to itself is 0 anyway).
    own_mass = mass[own] - w
    a = np.where(own_mass > 0, sums[rows, own] / np.where(own_mass > 0, own_mass, 1), 0.0)
    other = sums / np.where(mass > 0, mass, 1)[None, :]
    other[rows, own] = np.inf
    b = other.min(axis=1)
    s = np.where(own_mass > 0, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(np.sum(w * s) / w.sum())


def distances(x: F32) -> NDArray[np.float64]:
    return 1.0 - (x @ x.T).astype(np.float64)


def candidate_ks(n: int, k_max: int, min_size: int) -> list[int]:
    top = max(1, min(k_max, n // max(1, min_size)))
    grid = [k for k in (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256)
            if k <= top]
    return grid


def assign(x: F32, centers: F32, chunk: int = 65536) -> NDArray[np.int64]:
    """Nearest centre of every row, in chunks so 100k × 512 never makes a huge matrix."""
    out = np.empty(x.shape[0], dtype=np.int64)
    for s in range(0, x.shape[0], chunk):
        out[s : s + chunk] = np.argmax(x[s : s + chunk] @ centers.T, axis=1)
    return out


def cluster_targets(
    x: F32, w: NDArray[np.float64], *, k_max: int = 192, min_size: int = 3, seed: int = 0,
    fit_sample: int = 20000, silhouette_sample: int = 2500, search_sample: int = 2500,
) -> Clustering:
    """Cluster unit rows ``x`` (weights ``w``) with k picked by silhouette on a sample.

    The grid of k is fitted on at most ``search_sample`` points (silhouettes on at most
    ``silhouette_sample`` of them); the winner is refined by ``REFINE_STEPS`` Lloyd steps on
    up to ``fit_sample`` points, then every point is assigned to its nearest centre (one
    Lloyd step over all points).
    """
    n = x.shape[0]
    if n == 0:
        raise ValueError("no points to cluster")
    rng = np.random.default_rng(seed)
    fit_idx = np.sort(rng.choice(n, size=min(n, fit_sample), replace=False))
    xf, wf = x[fit_idx], w[fit_idx]
    sub = np.sort(rng.choice(len(fit_idx), size=min(len(fit_idx), silhouette_sample),
                             replace=False))
    # The grid of k is searched on at most ``search_sample`` of the fitted points (its
    # cost is k-means per candidate); the winner is then refined on all of them.
    search = np.sort(rng.choice(len(fit_idx), size=min(len(fit_idx), search_sample),
                                replace=False))
    xs, ws = xf[search], wf[search]
    pos = sub if len(search) == len(fit_idx) else np.sort(
        rng.choice(len(search), size=min(len(search), silhouette_sample), replace=False))
    tried: dict[int, float] = {}
    best_k, best_s = 1, -np.inf
    fits: dict[int, F32] = {}
    d = distances(xs[pos])  # one matrix for every candidate's silhouette
    for k in candidate_ks(len(search), k_max, min_size):
        # Large k: one run of fewer iterations (the grid's cost is dominated by it).
        c, labels, _ = spherical_kmeans(xs, ws, k, seed=seed, restarts=3 if k <= 24 else 1,
                                        iters=50 if k <= 24 else 25)
        s = silhouette(xs[pos], ws[pos], labels[pos], d)
        tried[k] = round(s, 4)
        fits[k] = c
        if s > best_s:
            best_k, best_s = k, s
    if best_k == 1 or best_s < MIN_SILHOUETTE:
        c = unit_rows(np.sum(x * w[:, None], axis=0, keepdims=True))
        return Clustering(c, np.zeros(n, dtype=np.int64), 1, float("nan"), tried)
    centres = fits[best_k]
    if len(search) < len(fit_idx):
        for _ in range(REFINE_STEPS):  # Lloyd steps over every fitted point
            sums = weighted_sums(xf, wf, assign(xf, centres), best_k)
            alive = np.linalg.norm(sums, axis=1) > 0
            centres = np.where(alive[:, None], unit_rows(sums), centres).astype(np.float32)
    labels = assign(x, centres)
    sums = weighted_sums(x, w, labels, best_k)
    keep = np.flatnonzero(np.linalg.norm(sums, axis=1) > 0)
    centers = unit_rows(sums[keep])
    labels = assign(x, centers)
    return Clustering(centers, labels, len(keep), float(best_s), tried)
