"""A 2-D map of supply and demand for the HTML report: PCA over a sample of both.

The axes are the two principal directions of items and targets together (after removing
the items' shared component, which would otherwise be the whole first axis), so a gap shows
as a cluster of demand points with no grey supply points under it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from recommender.gaps.report import GapReport
from recommender.gaps.supply import onto_shell_rows


def _round(a: NDArray[np.float64]) -> list[list[float]]:
    return [[round(float(x), 4), round(float(y), 4)] for x, y in a]


def project(report: GapReport, *, max_items: int = 1500, max_targets: int = 1500,
            seed: int = 0) -> dict[str, Any]:
    """``{"items": [[x, y]...], "targets": [[x, y]...], "target_region": [...],
    "regions": [{"id", "x", "y", "gap"}]}``; empty lists when there is nothing to show."""
    cal, demand, cl = report.calibration, report.demand, report.clustering
    if cal is None or cl is None or not report.regions:
        return {"items": [], "targets": [], "target_region": [], "regions": [],
                "sampled": {"items": 0, "targets": 0}}
    rng = np.random.default_rng(seed)
    items = cal.sample_vectors[: max_items]
    t_idx = np.sort(rng.choice(len(demand.user_ids), size=min(max_targets, len(demand.user_ids)),
                               replace=False))
    targets = demand.targets[t_idx]
    if report.options.reshell:
        targets = onto_shell_rows(targets, cal)
    centroids = np.stack([r.centroid for r in report.regions])
    both = np.concatenate([items, targets]).astype(np.float64)
    mean = both.mean(axis=0)
    _, _, vt = np.linalg.svd(both - mean, full_matrices=False)
    axes = vt[:2].T  # (d, 2)

    def proj(a: NDArray[np.floating]) -> NDArray[np.float64]:
        return np.asarray((np.asarray(a, np.float64) - mean) @ axes)

    # The region of each plotted target, by the report's own region ids.
    centre_to_region = {}
    for r in report.regions:
        centre_to_region[int(np.argmax(cl.centers @ r.target_centroid))] = r.id
    labels = [centre_to_region.get(int(cl.labels[i]), "") for i in t_idx]
    c2 = proj(centroids)
    return {
        "items": _round(proj(items)),
        "targets": _round(proj(targets)),
        "target_region": labels,
        "regions": [{"id": r.id, "x": round(float(c2[k, 0]), 4), "y": round(float(c2[k, 1]), 4),
                     "gap": r.gap, "labels": [lb.text for lb in r.labels]}
                    for k, r in enumerate(report.regions)],
        "sampled": {"items": len(items), "targets": len(targets)},
    }
