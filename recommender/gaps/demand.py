"""Demand: every user's learned target, weighted by how much and how recently they engaged.

User states live in the store's ``users`` namespace (the service packs each as a record,
``recommender.users.document``; a bare ``UserState.to_dict()`` body is read too).
A user counts once their target carries some signal (``min_events``). The weight of one
user is in (0, 1]: an engagement factor, ``1 − exp(−engagement / typical engagement)``
(the median over users, so the scale is the deployment's own: a heavy user is ~1, a user
who glanced at two images is ~0), times a recency factor halving every ``half_life_days``
counted back from the most recent activity in the data (a stale snapshot still has demand).
Above ``max_users`` a uniform reservoir sample is kept and the report says so.

Searches (``recommender.searches``) are demand too: each recorded (user, query) is one
point, weighted by recency alone (someone typing what they want is as engaged as demand
gets). Above ``max_searches`` the most recent are kept. Each user also carries a
*satisfaction* figure from their own dwell history: how far their best views (the 90th
percentile of recent log dwells) stand above their typical one. Someone served what they
want has a long upper tail; someone shown only the nearest substitutes does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexer.store.base import Store
from recommender.errors import BadState
from recommender.searches import Search, iter_searches
from recommender.state import UserState
from recommender.users.document import NAMESPACE as USERS_NAMESPACE
from recommender.users.document import state_body

DAY = 86400.0


@dataclass(frozen=True)
class DemandOptions:
    min_events: int = 5  # fewer: the target is still mostly cold-start exploration
    half_life_days: float = 30.0
    max_users: int = 200_000  # reservoir sample above this
    max_searches: int = 50_000  # most recent searches kept above this
    now: float | None = None  # recency reference; None: the latest activity in the data
    seed: int = 0


@dataclass
class Demand:
    user_ids: list[str]
    targets: NDArray[np.float32]  # (n, d) unit rows
    weights: NDArray[np.float64]  # (n,) in (0, 1]
    engagement: NDArray[np.float64]  # (n,) dwell seconds
    last_active: NDArray[np.float64]  # (n,) unix seconds
    scanned: int  # user documents read
    eligible: int  # users with a usable target (before sampling)
    skipped: dict[str, int]  # reason -> users left out
    reference_time: float
    satisfaction: NDArray[np.float64] | None = None  # (n,) best-view lift, log units
    searches: list[Search] = field(default_factory=list)
    search_weights: NDArray[np.float64] | None = None  # (m,) recency factor

    @property
    def sampled(self) -> bool:
        return len(self.user_ids) < self.eligible

    @property
    def scale(self) -> float:
        """Multiply sample sums by this to estimate totals over all eligible users."""
        return self.eligible / len(self.user_ids) if self.user_ids else 1.0

    def sampling(self) -> dict[str, Any]:
        return {
            "users_scanned": self.scanned, "users_eligible": self.eligible,
            "users_used": len(self.user_ids), "sampled": self.sampled,
            "skipped": dict(self.skipped), "searches": len(self.searches),
        }


def recency(last: NDArray[np.float64], reference: float, half_life_days: float
            ) -> NDArray[np.float64]:
    """In (0, 1]: halving every ``half_life_days`` before ``reference`` (unix seconds)."""
    age_days = np.maximum(0.0, reference - last) / DAY
    return np.asarray(np.power(0.5, age_days / max(half_life_days, 1e-9)))


def user_weights(
    engagement: NDArray[np.float64], last_active: NDArray[np.float64], reference: float,
    half_life_days: float,
) -> NDArray[np.float64]:
    positive = engagement[engagement > 0]
    typical = float(np.median(positive)) if positive.size else 1.0
    engaged = 1.0 - np.exp(-np.maximum(engagement, 0.0) / max(typical, 1e-9))
    return np.maximum(engaged * recency(last_active, reference, half_life_days), 1e-12)


def demand_from_states(states: Iterable[Mapping[str, Any]], options: DemandOptions) -> Demand:
    """Build demand from users document bodies, sampling if needed."""
    rng = np.random.default_rng(options.seed)
    kept: list[tuple[str, NDArray[np.float32], float, float, float]] = []
    skipped = {"no_target": 0, "few_events": 0, "unreadable": 0}
    scanned = eligible = 0
    dim: int | None = None
    for body in states:
        scanned += 1
        try:
            st = UserState.from_dict(state_body(body))
        except BadState:
            skipped["unreadable"] += 1
            continue
        t = st.target
        if t is None or not np.all(np.isfinite(t)) or float(np.linalg.norm(t)) == 0:
            skipped["no_target"] += 1
            continue
        if dim is None:
            dim = t.shape[0]
        if t.shape[0] != dim:
            skipped["unreadable"] += 1
            continue
        if st.events < options.min_events:
            skipped["few_events"] += 1
            continue
        eligible += 1
        row = (st.user_id, (t / np.linalg.norm(t)).astype(np.float32), st.engagement,
               st.last_active, satisfaction(st.dwell.history))
        # Reservoir sampling (algorithm R): a uniform sample of any stream length.
        if len(kept) < options.max_users:
            kept.append(row)
        else:
            j = int(rng.integers(eligible))
            if j < options.max_users:
                kept[j] = row
    engagement = np.array([r[2] for r in kept], dtype=np.float64)
    last = np.array([r[3] for r in kept], dtype=np.float64)
    reference = options.now if options.now is not None else (
        float(last.max()) if last.size else 0.0)
    targets = (np.stack([r[1] for r in kept]) if kept
               else np.zeros((0, dim or 0), dtype=np.float32))
    return Demand(
        user_ids=[r[0] for r in kept], targets=targets,
        weights=user_weights(engagement, last, reference, options.half_life_days),
        engagement=engagement, last_active=last, scanned=scanned, eligible=eligible,
        skipped=skipped, reference_time=reference if math.isfinite(reference) else 0.0,
        satisfaction=np.array([r[4] for r in kept], dtype=np.float64),
    )


def satisfaction(history: list[float]) -> float:
    """How far a user's best recent views stand above their typical one (log dwell)."""
    if len(history) < 8:
        return float("nan")
    h = np.asarray(history, dtype=np.float64)
    return float(np.quantile(h, 0.9) - np.median(h))


def add_searches(demand: Demand, searches: Iterable[Search], options: DemandOptions) -> Demand:
    """``demand`` with ``searches`` added (the most recent ``max_searches``)."""
    found = sorted(searches, key=lambda s: -s.last)[: options.max_searches]
    demand.searches = found
    last = np.array([s.last for s in found], dtype=np.float64)
    ref = options.now if options.now is not None else max(
        demand.reference_time, float(last.max()) if last.size else 0.0)
    demand.search_weights = recency(last, ref, options.half_life_days)
    return demand


def read_demand(store: Store, options: DemandOptions = DemandOptions()) -> Demand:
    """Scan the store's user documents and searches into demand."""
    bodies = (doc.body for doc in store.scroll_documents(USERS_NAMESPACE))
    return add_searches(demand_from_states(bodies, options), iter_searches(store), options)
