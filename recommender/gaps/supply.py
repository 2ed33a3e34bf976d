"""Supply: how close and how dense the collection's items are around a point.

"Far" means different things in different parts of a CLIP space (a dense cluster of cat
photos vs a sparse tail of diagrams), so nothing here is a fixed cosine. For any point p:

- ``nearest``: cosine to its nearest item;
- ``local``: the typical nearest-neighbour cosine among the items around p (the median,
  over p's ``neighbours`` nearest items, of each one's own nearest-other-item cosine);
- ``isolation = angle(nearest) / angle(local)``: how many local item spacings away the
  nearest item is.

A point inside the collection has isolation ~1. The corpus calibrates it: the isolation of
a random sample of items (each measured against the others) gives the null distribution,
and a high quantile of it (default the 98th percentile) is its line.

Demand points are not items, though: a search or the centroid of many targets names the
*centre* of some content, and the centre of a group of items is farther from its nearest
item than items are from each other. So the line a gap must cross is calibrated on centres
too: the sampled items are grouped (spherical k-means, about one group per
``items_per_centre`` items of the collection), each group's centre is put on the items'
shell, and the nearest-item cosine of those centres gives ``centre_nn``, a low quantile of
it (default the 2nd percentile): as far as the centre of served content ever is from an
item. ``reach = angle(nearest) / angle(centre_nn)`` > 1 is farther than that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexer.store.base import Hit, Store
from recommender.kmeans import spherical_kmeans

F32 = NDArray[np.float32]
MIN_ANGLE = 1e-3  # radians: exact duplicates would otherwise divide by zero


@dataclass(frozen=True)
class SupplyOptions:
    calibration_items: int = 1000  # items sampled to calibrate spacing, centres and the shell
    isolation_items: int = 200  # of which measured for the isolation null
    nn_items: int = 400  # of which measured for the spacing quantiles and the radius
    neighbours: int = 8  # items around a point whose spacing defines "local"
    quantile: float = 0.98  # isolation quantile of real items a gap must exceed
    density_k: int = 100  # search depth for counting items within the radius
    items_per_centre: int = 80  # collection items per calibration group
    min_group: int = 12  # sampled items per group at least
    centre_quantile: float = 0.02  # of the centres' nearest-item cosine
    seed: int = 0


@dataclass
class Calibration:
    corpus_items: int
    sample_ids: list[str]
    sample_vectors: F32  # (m, d): reused for the map of the HTML report
    mean_dir: F32  # unit mean direction of the items (CLIP's shared component)
    shell: float  # mean cosine of items to ``mean_dir``
    nn_similarity: dict[str, float]  # quantiles of item nearest-neighbour cosine
    isolation: NDArray[np.float64]  # per sampled item
    quantile: float
    threshold: float  # isolation a gap must exceed
    radius: float  # cosine within which items count as "near" a point
    centre_nn: float = 1.0  # nearest-item cosine the centre of served content stays above
    centres: int = 0  # calibration groups behind ``centre_nn``
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        iso = self.isolation
        return {
            "items_sampled": len(self.sample_ids),
            "nn_similarity": self.nn_similarity,
            "isolation": {
                "p50": round(float(np.median(iso)), 4) if iso.size else None,
                f"p{round(self.quantile * 100)}": round(self.threshold, 4),
            },
            "radius": round(self.radius, 4),
            "centre_nn": round(self.centre_nn, 4), "centres": self.centres,
            "shell": round(self.shell, 4),
        }


@dataclass(frozen=True)
class Supply:
    nearest: float  # cosine of the nearest item
    local: float  # typical nearest-neighbour cosine of the items around
    isolation: float
    within: int  # items with cosine >= radius (searched up to density_k)
    within_capped: bool  # the count hit the search depth: there may be more
    hits: list[Hit]  # nearest items, best first
    measured: bool = True  # False: only ``nearest`` is known (regions listed late)


def angle(cos: float | NDArray[np.float64]) -> Any:
    return np.maximum(np.arccos(np.clip(cos, -1.0, 1.0)), MIN_ANGLE)


def nearest_scores(store: Store, points: Sequence[F32] | F32) -> NDArray[np.float64]:
    """Each point's cosine to its nearest item (NaN where the store has none), in one
    batch of queries."""
    if len(points) == 0:
        return np.zeros(0)
    return np.array([hits[0].score if hits else math.nan
                     for hits in store.search_many(list(points), 1)], dtype=np.float64)


def _nearest_other(store: Store, vectors: Sequence[F32], own: Sequence[str]) -> list[float]:
    """Each vector's best cosine to an item other than ``own[i]`` (itself)."""
    out = []
    for hits, me in zip(store.search_many(list(vectors), 2), own, strict=True):
        others = [h.score for h in hits if h.id != me]
        out.append(others[0] if others else float("nan"))
    return out


def _local_similarity(store: Store, hits: Sequence[Hit], neighbours: int) -> float:
    near = [h for h in hits if h.vector is not None][:neighbours]
    if not near:
        return float("nan")
    sims = _nearest_other(store, [np.asarray(h.vector, np.float32) for h in near],
                          [h.id for h in near])
    sims = [s for s in sims if math.isfinite(s)]
    return float(np.median(sims)) if sims else float("nan")


def isolation(nearest: float, local: float) -> float:
    if not (math.isfinite(nearest) and math.isfinite(local)):
        return float("nan")
    return float(angle(nearest) / angle(local))


def calibrate(store: Store, options: SupplyOptions = SupplyOptions()) -> Calibration:
    """Sample items; measure each one's isolation among the others; derive the thresholds."""
    total = store.count()
    picked = store.sample(min(options.calibration_items, total), seed=options.seed)
    ids = [h.id for h in picked]
    vecs = {it.id: it.vector for it in store.retrieve(ids, with_vectors=True)}
    ids = [i for i in ids if vecs.get(i) is not None]
    x = (np.stack([np.asarray(vecs[i], np.float32) for i in ids]) if ids
         else np.zeros((0, 0), np.float32))
    if not ids:
        raise ValueError("the collection has no items to calibrate against")
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    mean = x.mean(axis=0)
    mean_dir = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
    shell = float(np.mean(x @ mean_dir))

    # The first ``nn_items`` sampled items' nearest other item (the spacing quantiles, the
    # radius); the isolation null on the first ``isolation_items`` only: each costs
    # ``neighbours`` more queries, and a few hundred fix a 98th percentile well enough.
    # All sampled items shape the shell and the calibration centres (no queries).
    n_iso = min(len(ids), options.isolation_items)
    nn, iso = [], []
    deep = store.search_many(list(x[:n_iso]), options.neighbours + 1, with_vectors=True)
    for i, found in zip(ids[:n_iso], deep, strict=True):
        hits = [h for h in found if h.id != i]
        if not hits:
            continue
        local = _local_similarity(store, hits, options.neighbours)
        nn.append(hits[0].score)
        iso.append(isolation(hits[0].score, local))
    n_nn = max(n_iso, min(len(ids), options.nn_items))
    nn += [s for s in _nearest_other(store, list(x[n_iso:n_nn]), ids[n_iso:n_nn])
           if math.isfinite(s)]
    iso_a = np.array([v for v in iso if math.isfinite(v)], dtype=np.float64)
    nn_a = np.array(nn, dtype=np.float64)
    threshold = float(np.quantile(iso_a, options.quantile)) if iso_a.size else float("inf")
    q = {f"p{p}": round(float(np.quantile(nn_a, p / 100)), 4) for p in (10, 50, 90)} \
        if nn_a.size else {}
    # "Near" = within 1.5 typical item spacings: a point with many items this close is
    # served even if none sits exactly on it.
    radius = float(np.cos(1.5 * angle(float(np.median(nn_a))))) if nn_a.size else 1.0
    cal = Calibration(
        corpus_items=total, sample_ids=ids, sample_vectors=x.astype(np.float32),
        mean_dir=mean_dir, shell=shell, nn_similarity=q, isolation=iso_a,
        quantile=options.quantile, threshold=threshold, radius=radius,
    )
    k = min(max(2, total // max(1, options.items_per_centre)), len(ids) // options.min_group)
    if k >= 2:
        cent, _, _ = spherical_kmeans(x.astype(np.float32), np.ones(len(ids)), k,
                                      seed=options.seed, iters=25, restarts=1)
        near = nearest_scores(store, onto_shell_rows(cent, cal))
        near = near[np.isfinite(near)]
        if near.size:
            cal.centre_nn = float(np.quantile(near, options.centre_quantile))
            cal.centres = len(near)
    return cal


def reach(nearest: float, cal: Calibration) -> float:
    """Angle to the nearest item over the farthest a served centre is: > 1 is unmet."""
    if not math.isfinite(nearest):
        return float("nan")
    return float(angle(nearest) / angle(cal.centre_nn))


def onto_shell(c: F32, cal: Calibration) -> F32:
    """Move a direction onto the items' shell: keep what distinguishes it, give it the
    items' share of the common component. Targets learned from differences of item vectors
    can lose (or overshoot) that shared component, which would make every target look far
    from every item; this puts demand where an item with that content would sit."""
    m = cal.mean_dir
    resid = c - float(c @ m) * m
    n = float(np.linalg.norm(resid))
    if n < 1e-9:
        return m.copy()
    s = min(max(cal.shell, -1.0), 1.0)
    out = s * m + math.sqrt(max(0.0, 1.0 - s * s)) * resid / n
    return (out / np.linalg.norm(out)).astype(np.float32)


def onto_shell_rows(x: F32, cal: Calibration) -> F32:
    """``onto_shell`` for every row of ``x``."""
    m = cal.mean_dir
    resid = x - np.outer(x @ m, m)
    n = np.linalg.norm(resid, axis=1, keepdims=True)
    s = min(max(cal.shell, -1.0), 1.0)
    out = s * m[None, :] + math.sqrt(max(0.0, 1.0 - s * s)) * resid / np.where(n > 0, n, 1.0)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def measure(store: Store, point: F32, cal: Calibration, options: SupplyOptions) -> Supply:
    """Supply around ``point``: the nearest item, the items within the calibrated radius,
    and the local spacing (``neighbours`` more queries) with the isolation it gives."""
    depth = max(options.density_k, options.neighbours)
    hits = store.search(point, depth, with_vectors=True, with_payload=True)
    if not hits:
        return Supply(float("nan"), float("nan"), float("nan"), 0, False, [])
    within = sum(1 for h in hits if h.score >= cal.radius)
    local = _local_similarity(store, hits, options.neighbours)
    return Supply(nearest=hits[0].score, local=local, isolation=isolation(hits[0].score, local),
                  within=within, within_capped=within >= depth, hits=hits)
