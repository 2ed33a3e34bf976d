"""The gap report: where demand gathers and the collection's supply does not reach.

1. Demand (``demand.py``): learned targets of engaged users (weighted by engagement and
   recency), recorded searches (``recommender.searches``, moved from the text cone to
   where an image with that content would sit), and each user's satisfaction.
2. Regions: weighted spherical k-means, k chosen by silhouette (``recommender.kmeans``),
   over targets and over searches apart (precise queries are not pulled into a cloud of
   rough targets).
3. Supply (``supply.py``) at each region's centroid, put on the items' shell: the nearest
   item's cosine, and ``reach`` = its angle / the angle the centre of served content keeps
   to its items (calibrated on the collection). The 50 regions listed first also get the
   local spacing, isolation, items within the radius and thumbnails.
4. Deficit = ln(min(reach / margin, concentration)), concentration = angle to the nearest
   item / angular spread of the region's demand (the mean of a smear of unrelated tastes
   falls between clusters, where no item is, and is no gap).
5. Score = wanting weight (targets and *unmet* searches: a search that found good results
   is served demand) × deficit. A gap: score > 0, wanting weight ≥ ``min_demand``, and
   supported: most of its searches unmet, or (targets alone, rough estimates) they sit
   tight or their users are unsatisfied. ``signals`` says which demand is behind a region.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

import numpy as np
from numpy.typing import NDArray

from indexer.embedder.registry import has_random_weights
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
    nearest_scores,
    onto_shell,
    onto_shell_rows,
    reach,
)
from recommender.kmeans import Clustering, cluster_targets, unit_rows

F32 = NDArray[np.float32]
SCORE_THRESHOLD = 0.0
MIN_SEARCHES_FOR_MEAN = 50  # searches whose mean stands in for the text cone's direction
SATISFACTION_Z = 2.0  # standard errors below everyone's best-view lift: "unsatisfied"
TARGETS_CONCENTRATION = 1.5  # how tight a region of targets alone must be to be a gap
MAX_QUERIES = 5  # example queries listed per region
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class GapOptions:
    min_demand: float = 3.0  # weighted users a region needs to count as a gap
    max_regions: int = 192  # largest k tried
    min_region_users: int = 3  # smallest cluster size k-means candidates aim for
    nearest: int = 6  # nearest items listed per region
    detail: int = 50  # regions listed first with supply measured in full (spacing, items)
    labels: int = 3
    fit_sample: int = 12000  # targets k-means is fitted on (all are assigned)
    reshell: bool = True
    isolation_margin: float = 1.1  # times the corpus's isolation quantile (reported)
    reach_margin: float = 1.1  # times the angle at which served centres' items stay
    seed: int = 0
    search_weight: float = 1.0  # one recorded search, in user equivalents
    demand: DemandOptions = DemandOptions()
    supply: SupplyOptions = SupplyOptions()


@dataclass(frozen=True)
class NearItem:
    id: str
    score: float
    name: str | None = None  # the image's file name (not its path: that stays private)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": round(self.score, 4), "name": self.name,
                "image_url": f"/v1/items/{quote(self.id, safe='')}/image"}


def file_name(payload: Mapping[str, Any] | None) -> str | None:
    paths = (payload or {}).get("paths") or []
    return PurePath(str(paths[0])).name if paths else None


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
    deficit: float  # ln(min(reach_ratio, concentration)): > 0 where content is missing
    score: float
    gap: bool
    nearest_items: list[NearItem]
    labels: list[Label] = field(default_factory=list)
    prompt: str | None = None
    searches: int = 0  # recorded searches in the region
    unmet_searches: int = 0  # of which the best match was far (calibrated)
    queries: list[str] = field(default_factory=list)  # a few of them
    satisfaction_z: float = float("nan")  # > 0: its users' best views are below everyone's
    signals: list[str] = field(default_factory=list)  # which kinds of demand support it
    reach_ratio: float = float("nan")  # angle to nearest item / served centres' (× margin)

    def to_dict(self, *, centroid_digits: int = 5) -> dict[str, Any]:
        s = self.supply
        return {
            "id": self.id,
            "gap": self.gap,
            "score": _r(self.score),
            "centroid": [round(float(v), centroid_digits) for v in self.centroid],
            "signals": list(self.signals),
            "demand": {"users": round(self.users, 1), "engagement": round(self.engagement, 1),
                       "weight": _r(self.weight), "share": _r(self.share),
                       "cohesion": _r(self.cohesion), "searches": self.searches,
                       "unmet_searches": self.unmet_searches, "queries": list(self.queries),
                       "satisfaction_z": _r(self.satisfaction_z, 2)},
            "supply": {"nearest_similarity": _r(s.nearest), "local_similarity": _r(s.local),
                       "isolation": _r(s.isolation),
                       "isolation_ratio": _r(self.isolation_ratio),
                       "reach_ratio": _r(self.reach_ratio),
                       "concentration": _r(self.concentration), "deficit": _r(self.deficit),
                       "items_within_radius": s.within if s.measured else None,
                       "within_capped": s.within_capped},
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
    items: int = 0  # in the collection
    model: str | None = None  # the collection's model ("<arch>/none": random weights)

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
            "reach_margin": self.options.reach_margin,
            "centre_nn": _r(cal.centre_nn) if cal else None,
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
                "items": self.items,
                "items_sampled_for_calibration": (
                    len(self.calibration.sample_ids) if self.calibration else 0),
                "targets_clustered": min(len(self.demand.user_ids), self.options.fit_sample),
            },
            "clusters": {"k": c.k, "silhouette": _r(c.silhouette),
                         "tried": {str(k): v for k, v in c.tried.items()}} if c else None,
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "labels_note": self.labels_note,
            "model": self.model,
            "random_weights": bool(self.model and has_random_weights(self.model)),
            "elapsed_s": round(self.elapsed_s, 2),
            "created": self.created,
        }


def text_to_image(vectors: F32, text_mean: F32 | None, cal: Calibration) -> F32:
    """Text embeddings where an image with that content would sit: CLIP's text and image
    towers meet in separate cones (the modality gap), so drop the text cone's own common
    direction, then put what remains on the items' shell."""
    x = vectors
    if text_mean is not None:
        x = x - np.outer(x @ text_mean, text_mean)
    return onto_shell_rows(unit_rows(x), cal)


def _text_mean(describer: Describer | None, demand: Demand) -> F32 | None:
    """The text cone's common direction: the label vocabulary's mean embedding when the
    encoder is at hand, else the searches' own mean once there are enough to average out."""
    if describer is not None:
        m = describer.matrix.mean(axis=0)
    elif len(demand.searches) >= MIN_SEARCHES_FOR_MEAN:
        m = np.stack([s.vector for s in demand.searches]).mean(axis=0)
    else:
        return None
    n = float(np.linalg.norm(m))
    return (m / n).astype(np.float32) if n > 0 else None


def _unmet(store: Store, points: F32, cal: Calibration, margin: float) -> NDArray[np.bool_]:
    """Searches whose best match is far by the collection's own calibration: the angle to
    the nearest item is more than ``margin`` x the angle the centre of served content keeps
    to its nearest item (``reach``)."""
    scores = nearest_scores(store, points)
    return np.array([reach(-1.0 if math.isnan(s) else float(s), cal) > margin
                     for s in scores], dtype=bool)


def _satisfaction_z(demand: Demand, members: NDArray[np.int64]) -> float:
    """How far below everyone's the region's users' best-view lift is, in standard errors
    (> 0: less satisfied than users at large)."""
    s = demand.satisfaction
    if s is None or members.size == 0:
        return float("nan")
    pop = s[np.isfinite(s)]
    mine = s[members]
    mine = mine[np.isfinite(mine)]
    if pop.size < 8 or mine.size < 3:
        return float("nan")
    sd = float(np.std(pop))
    return float((np.median(pop) - mine.mean()) / max(sd / math.sqrt(mine.size), 1e-9))


def _cluster_kinds(points: F32, weights: NDArray[np.float64], n_t: int,
                   options: GapOptions) -> Clustering:
    parts = [(0, n_t), (n_t, len(points))]
    centers: list[F32] = []
    labels = np.zeros(len(points), dtype=np.int64)
    tried: dict[int, float] = {}
    sil = float("nan")
    for lo, hi in parts:
        if hi - lo == 0:
            continue
        c = cluster_targets(points[lo:hi], weights[lo:hi], k_max=options.max_regions,
                            min_size=options.min_region_users, seed=options.seed,
                            fit_sample=options.fit_sample)
        labels[lo:hi] = c.labels + len(centers)
        centers.extend(c.centers)
        if lo == 0 or not math.isfinite(sil):
            tried, sil = c.tried, c.silhouette
    return Clustering(np.stack(centers).astype(np.float32), labels, len(centers), sil, tried)


def build_report(
    store: Store, options: GapOptions = GapOptions(), *, encoder: TextEmbedder | None = None,
    demand: Demand | None = None, progress: Progress | None = None,
) -> GapReport:
    """Read demand from ``store`` (unless given), cluster it, score every region.

    ``encoder`` (the collection's CLIP text side) labels the regions; without one, or when
    it did not make the collection's vectors, the report says why and has no labels.
    ``progress(step, done, total)`` hears about each step (the CLI draws it).
    """
    t0 = time.perf_counter()
    created = time.time()
    say = progress or (lambda step, done, total: None)
    spec = store.spec()
    model = spec.model if spec is not None else None
    labels_note = text_encoder_note(spec, encoder)
    say("reading users and searches", 0, 1)
    demand = demand if demand is not None else read_demand(store, options.demand)
    n_t, n_s = len(demand.user_ids), len(demand.searches)
    items = store.count()
    if (n_t == 0 and n_s == 0) or items == 0:
        return GapReport([], None, demand, None, options, labels_note,
                         time.perf_counter() - t0, created, items, model)
    say("calibrating against the collection", 0, 1)
    cal = calibrate(store, options.supply)
    describer = None
    if encoder is not None and labels_note is None:
        say("embedding the label vocabulary", 0, 1)
        describer = Describer(encoder, mean_item=cal.sample_vectors.mean(axis=0))
    # Every demand point where an item with that content would sit: targets, then searches.
    dim = cal.sample_vectors.shape[1]
    targets = onto_shell_rows(demand.targets, cal) if options.reshell and n_t \
        else demand.targets.reshape(n_t, dim)
    if n_s:
        sv = np.stack([s.vector for s in demand.searches]).astype(np.float32)
        search_points = text_to_image(sv, _text_mean(describer, demand), cal)
        unmet = _unmet(store, search_points, cal, options.reach_margin)
    else:
        search_points = np.zeros((0, dim), np.float32)
        unmet = np.zeros(0, dtype=bool)
    points = np.concatenate([targets, search_points]).astype(np.float32)
    sw = demand.search_weights if demand.search_weights is not None else np.ones(n_s)
    weights = np.concatenate([demand.weights * demand.scale, sw * options.search_weight])
    say("finding regions", 0, 1)
    # Targets and searches are clustered apart: a search names its content precisely, a
    # learned target only roughly, and one blob of scattered targets would otherwise pull
    # several tight groups of queries into one region between them.
    cl = _cluster_kinds(points, weights, n_t, options)
    total_weight = float(weights.sum())
    regions: list[Region] = []
    say("measuring supply", 0, cl.k)
    # The decision needs only each centroid's nearest item: one light query per region,
    # batched. The full picture (items within the radius, local spacing, thumbnails) is
    # measured below for the regions listed first.
    shell_points = [onto_shell(c, cal) if options.reshell else c for c in cl.centers]
    nearest = [float(s) for s in nearest_scores(store, shell_points)]
    for j in range(cl.k):
        members = np.flatnonzero(cl.labels == j)
        if members.size == 0:
            continue
        users_m = members[members < n_t]
        searches_m = members[members >= n_t] - n_t
        w = weights[members]
        target_c = cl.centers[j]
        point = shell_points[j]
        sup = Supply(nearest[j], float("nan"), float("nan"), 0, False, [], measured=False)
        cohesion = float(np.sum(w * (points[members] @ target_c)) / w.sum())
        iso_ratio = float("nan")  # measured below for the regions listed first
        reach_ratio = reach(sup.nearest, cal) / options.reach_margin
        # Spread of the demand around the centroid, on the shell where the nearest item
        # was measured, so the two angles compare like with like.
        spread = float(np.sum(w * (points[members] @ point)) / w.sum())
        concentration = float(angle(sup.nearest) / angle(spread))
        deficit = math.log(min(reach_ratio, concentration)) if (
            math.isfinite(reach_ratio) and reach_ratio > 0) else float("nan")
        weight = float(w.sum())
        n_unmet = int(unmet[searches_m].sum())
        # A search that found good results is served demand, whatever the centroid says:
        # only targets and unmet searches count toward a gap.
        wanting = float(weights[users_m].sum() + weights[n_t + searches_m[unmet[searches_m]]].sum())
        score = wanting * deficit if math.isfinite(deficit) else float("-inf")
        sat_z = _satisfaction_z(demand, users_m)
        unsatisfied = math.isfinite(sat_z) and sat_z > SATISFACTION_Z
        if searches_m.size:
            # Most of what people asked for here found nothing good.
            supported = 2 * n_unmet >= searches_m.size
        else:
            # Targets alone are rough estimates: a loose group of them next to sparse
            # supply is what poorly learned, served users look like. They must sit tight
            # (or their users' best views stay below everyone's).
            supported = unsatisfied or concentration >= TARGETS_CONCENTRATION
        signals = []
        if users_m.size:
            signals.append("targets")
        if n_unmet:
            signals.append("unmet_searches")
        if unsatisfied:
            signals.append("unsatisfied")
        regions.append(Region(
            id="", centroid=point, target_centroid=target_c,
            users=float(users_m.size) * demand.scale,
            engagement=float(demand.engagement[users_m].sum()) * demand.scale,
            weight=weight, share=weight / total_weight if total_weight > 0 else 0.0,
            cohesion=cohesion, isolation_ratio=iso_ratio, concentration=concentration,
            reach_ratio=reach_ratio,
            supply=sup, deficit=deficit, score=score,
            gap=score > SCORE_THRESHOLD and wanting >= options.min_demand and supported,
            nearest_items=[],
            searches=int(searches_m.size), unmet_searches=n_unmet,
            queries=sorted({demand.searches[i].query for i in searches_m})[:MAX_QUERIES],
            satisfaction_z=sat_z, signals=signals,
        ))
    # Gaps first, best first; then the rest by score (least served first).
    regions.sort(key=lambda r: (not r.gap, -r.score if math.isfinite(r.score) else math.inf))
    say("labelling", 0, 1)
    for rank, r in enumerate(regions, start=1):
        r.id = f"r{rank}"
        if rank <= options.detail:
            r.supply = measure(store, r.centroid, cal, options.supply)
            r.isolation_ratio = r.supply.isolation / (cal.threshold * options.isolation_margin)
            r.nearest_items = [NearItem(h.id, h.score, file_name(h.payload))
                               for h in r.supply.hits[: options.nearest]]
        if describer is not None:
            r.labels = describer.labels(r.centroid, options.labels)
            r.prompt = describer.prompt_for(r.centroid)
    return GapReport(regions, cal, demand, cl, options, labels_note,
                     time.perf_counter() - t0, created, items, model)
