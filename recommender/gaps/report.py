"""The gap report: where users' demand clusters and the collection's supply is thin.

1. Demand (``demand.py``): targets of engaged users, weighted by engagement and recency.
2. Regions: weighted spherical k-means over the targets, k chosen by silhouette
   (``recommender.kmeans``).
3. Supply (``supply.py``) around each region's centroid, put on the items' shell:
   nearest-item cosine, local item spacing, items within the calibrated radius, and the
   isolation ratio calibrated against the corpus's own items.
4. Emptiness, as the natural log of the smaller of two angle ratios, each > 1 only where
   content is missing:
   - isolation / (corpus threshold × margin): the nearest item is farther, in local item
     spacings, than all but ``1 − quantile`` of the collection's own items are from theirs
     (and by a safety ``margin``);
   - concentration = angle to the nearest item / angular spread of the region's targets:
     the demand sits tighter than the distance to any supply. This keeps the centroid of a
     smear of unrelated tastes (which falls between clusters, where no item is) from
     passing for a gap.
5. Score = demand mass × emptiness. A region is a gap when its score is above the
   report's threshold (0) and it carries at least ``min_demand`` weighted users; smaller
   regions are listed, never flagged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import numpy as np
from numpy.typing import NDArray

from indexer.embedder.text import TextEmbedder
from indexer.store.base import Store
from recommender.gaps.demand import Demand, DemandOptions, read_demand
from recommender.gaps.describe import Describer, Label, text_encoder_note
from recommender.gaps.supply import (
    Calibration,
    Supply,
    SupplyOptions,
    angle,
    calibrate,
    measure,
    onto_shell,
    onto_shell_rows,
)
from recommender.kmeans import Clustering, cluster_targets

F32 = NDArray[np.float32]
SCORE_THRESHOLD = 0.0


@dataclass(frozen=True)
class GapOptions:
    min_demand: float = 3.0  # weighted users a region needs to count as a gap
    max_regions: int = 192  # largest k tried
    min_region_users: int = 3  # smallest cluster size k-means candidates aim for
    nearest: int = 6  # nearest items listed per region
    labels: int = 3
    fit_sample: int = 12000  # targets k-means is fitted on (all are assigned)
    reshell: bool = True
    isolation_margin: float = 1.1  # times the corpus's isolation quantile
    seed: int = 0
    demand: DemandOptions = DemandOptions()
    supply: SupplyOptions = SupplyOptions()


@dataclass(frozen=True)
class NearItem:
    id: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": round(self.score, 4),
                "image_url": f"/v1/items/{quote(self.id, safe='')}/image"}


@dataclass
class Region:
    id: str
    centroid: F32  # on the items' shell: where an item with this content would sit
    target_centroid: F32  # the weighted mean direction of the users' targets
    users: float  # users in the region (estimated total when sampled)
    engagement: float  # their dwell seconds
    weight: float  # weighted demand (engagement × recency), user equivalents
    share: float  # of all weighted demand
    cohesion: float  # weighted mean cosine of members' targets to the target centroid
    supply: Supply
    isolation_ratio: float  # isolation / (corpus threshold × margin)
    concentration: float  # angle to nearest item / angular spread of the targets
    deficit: float  # ln(min(isolation_ratio, concentration)): > 0 where content is missing
    score: float
    gap: bool
    nearest_items: list[NearItem]
    labels: list[Label] = field(default_factory=list)
    prompt: str | None = None

    def to_dict(self, *, centroid_digits: int = 5) -> dict[str, Any]:
        s = self.supply
        return {
            "id": self.id,
            "gap": self.gap,
            "score": _r(self.score),
            "centroid": [round(float(v), centroid_digits) for v in self.centroid],
            "demand": {"users": round(self.users, 1), "engagement": round(self.engagement, 1),
                       "weight": _r(self.weight), "share": _r(self.share),
                       "cohesion": _r(self.cohesion)},
            "supply": {"nearest_similarity": _r(s.nearest), "local_similarity": _r(s.local),
                       "isolation": _r(s.isolation),
                       "isolation_ratio": _r(self.isolation_ratio),
                       "concentration": _r(self.concentration), "deficit": _r(self.deficit),
                       "items_within_radius": s.within, "within_capped": s.within_capped},
            "labels": [lb.to_dict() for lb in self.labels],
            "nearest_items": [n.to_dict() for n in self.nearest_items],
            "prompt": self.prompt,
        }


def _r(v: float, digits: int = 4) -> float | None:
    return round(float(v), digits) if math.isfinite(v) else None


@dataclass
class GapReport:
    regions: list[Region]
    calibration: Calibration | None
    demand: Demand
    clustering: Clustering | None
    options: GapOptions
    labels_note: str | None
    elapsed_s: float
    created: float

    @property
    def gaps(self) -> list[Region]:
        return [r for r in self.regions if r.gap]

    def threshold(self) -> dict[str, Any]:
        cal = self.calibration
        return {
            "score": SCORE_THRESHOLD, "min_demand": self.options.min_demand,
            "isolation": _r(cal.threshold * self.options.isolation_margin) if cal else None,
            "isolation_quantile": self.options.supply.quantile,
            "isolation_margin": self.options.isolation_margin,
        }

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        regions = self.regions if limit is None else self.regions[:limit]
        c = self.clustering
        return {
            "regions": [r.to_dict() for r in regions],
            "gaps": len(self.gaps),
            "threshold": self.threshold(),
            "sampled": {
                **self.demand.sampling(),
                "items": self.calibration.corpus_items if self.calibration else 0,
                "items_sampled_for_calibration": (
                    len(self.calibration.sample_ids) if self.calibration else 0),
                "targets_clustered": min(len(self.demand.user_ids), self.options.fit_sample),
            },
            "clusters": {"k": c.k, "silhouette": _r(c.silhouette),
                         "tried": {str(k): v for k, v in c.tried.items()}} if c else None,
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "labels_note": self.labels_note,
            "elapsed_s": round(self.elapsed_s, 2),
            "created": self.created,
        }


def build_report(
    store: Store, options: GapOptions = GapOptions(), *, encoder: TextEmbedder | None = None,
    demand: Demand | None = None,
) -> GapReport:
    """Read demand from ``store`` (unless given), cluster it, score every region.

    ``encoder`` (the collection's CLIP text side) labels the regions; without one, or when
    it did not make the collection's vectors, the report says why and has no labels.
    """
    t0 = time.perf_counter()
    created = time.time()
    labels_note = text_encoder_note(store.spec(), encoder)
    demand = demand if demand is not None else read_demand(store, options.demand)
    if not demand.user_ids or store.count() == 0:
        return GapReport([], None, demand, None, options, labels_note,
                         time.perf_counter() - t0, created)
    cal = calibrate(store, options.supply)
    cl = cluster_targets(
        demand.targets, demand.weights, k_max=options.max_regions,
        min_size=options.min_region_users, seed=options.seed, fit_sample=options.fit_sample,
    )
    describer = None
    if encoder is not None and labels_note is None:
        describer = Describer(encoder, mean_item=cal.sample_vectors.mean(axis=0))
    total_weight = float(demand.weights.sum())
    regions: list[Region] = []
    for j in range(cl.k):
        members = np.flatnonzero(cl.labels == j)
        if members.size == 0:
            continue
        w = demand.weights[members]
        target_c = cl.centers[j]
        point = onto_shell(target_c, cal) if options.reshell else target_c
        sup = measure(store, point, cal, options.supply)
        cohesion = float(np.sum(w * (demand.targets[members] @ target_c)) / w.sum())
        iso_ratio = sup.isolation / (cal.threshold * options.isolation_margin)
        # Spread of the targets around the centroid, measured where the nearest item was
        # (on the shell), so the two angles compare like with like.
        on_shell = onto_shell_rows(demand.targets[members], cal) if options.reshell \
            else demand.targets[members]
        spread = float(np.sum(w * (on_shell @ point)) / w.sum())
        concentration = float(angle(sup.nearest) / angle(spread))
        deficit = math.log(min(iso_ratio, concentration)) if (
            math.isfinite(iso_ratio) and iso_ratio > 0) else float("nan")
        weight = float(w.sum()) * demand.scale
        score = weight * deficit if math.isfinite(deficit) else float("-inf")
        regions.append(Region(
            id="", centroid=point, target_centroid=target_c,
            users=float(members.size) * demand.scale,
            engagement=float(demand.engagement[members].sum()) * demand.scale,
            weight=weight, share=float(w.sum()) / total_weight if total_weight > 0 else 0.0,
            cohesion=cohesion, isolation_ratio=iso_ratio, concentration=concentration,
            supply=sup, deficit=deficit, score=score,
            gap=score > SCORE_THRESHOLD and weight >= options.min_demand,
            nearest_items=[NearItem(h.id, h.score) for h in sup.hits[: options.nearest]],
        ))
    # Gaps first, best first; then the rest by score (least served first).
    regions.sort(key=lambda r: (not r.gap, -r.score if math.isfinite(r.score) else math.inf))
    for rank, r in enumerate(regions, start=1):
        r.id = f"r{rank}"
        if describer is not None:
            r.labels = describer.labels(r.centroid, options.labels)
            r.prompt = describer.prompt_for(r.centroid)
    return GapReport(regions, cal, demand, cl, options, labels_note,
                     time.perf_counter() - t0, created)
