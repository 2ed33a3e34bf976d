"""Would a query at the posterior's own best point find what valuing every item finds?

``sumo`` values the unseen items nearest a few composed points (the posterior's blend of
centres, its likeliest mode's blend, the likeliest centre). Valuing every unseen item
once the search has found its region gained +0.117 on narrow tastes on one corpus
(``research/candidate_pool.py --vs sumo-all-found``). This registers ``sumo-ascent``:
once the search is done, a few steps of gradient ascent on the sphere climb the
posterior-expected dwell itself (``RegionEvidence.value``) from the best of those points,
and the items nearest where it ends are valued too (one more query):

    PYTHONPATH=. python research/value_ascent.py --world default --items 10000 \\
        --users 24 --exact --paired --vs sumo-ascent --models niche,drift,broad --seed 1

``sumo-ascent-always`` climbs while the search is on too.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from candidate_pool import searching  # research/ is on the path as a script

from indexer.store.base import Hit, Vector
from recommender.centres import lists_for
from recommender.policies import REGISTRY
from recommender.policies.evidence import (
    GRADED,
    KNEE,
    SHARPNESS,
    SUPPORT,
    Posterior,
    RegionEvidence,
)
from recommender.policies.sumo import (
    CANDIDATES,
    LINEAR_QUERY,
    SumoPolicy,
    likeliest_mode,
    mode_members,
)
from recommender.regions import RegionMap, regions_for
from recommender.state import UserState, unit

STEPS = 12
ANGLE = 0.08  # radians per step at first, halved whenever a step does not gain


def region_value(regions: RegionMap, post: Posterior, x: np.ndarray
                 ) -> tuple[float, np.ndarray]:
    """The places' part of the posterior-expected dwell at ``x`` and its gradient."""
    p = post.probs
    keep = np.flatnonzero(p >= SUPPORT)
    c = regions.centroids[keep].astype(np.float64)
    scale = (regions.top[keep] - regions.median[keep]).astype(np.float64)
    z = (c @ x - regions.median[keep]) / scale
    step = 1.0 / (1.0 + np.exp(-SHARPNESS * (z - KNEE)))
    i = GRADED * np.clip(z, 0.0, 1.0) + (1.0 - GRADED) * step
    w = p[keep] * np.exp(post.a[keep] + post.g[keep] * i)
    di = GRADED * ((z > 0) & (z < 1)) + (1.0 - GRADED) * SHARPNESS * step * (1.0 - step)
    grad = (w * post.g[keep] * di / scale) @ c
    return float(w.sum()), grad


def ascend(regions: RegionMap, post: Posterior, starts: list[Vector]) -> Vector:
    """Riemannian gradient ascent of ``region_value`` from the best of ``starts``."""
    x = max((np.asarray(s, np.float64) for s in starts),
            key=lambda s: region_value(regions, post, s)[0])
    v, g = region_value(regions, post, x)
    angle = ANGLE
    for _ in range(STEPS):
        t = g - (g @ x) * x
        n = float(np.linalg.norm(t))
        if n < 1e-12:
            break
        y = np.cos(angle) * x + np.sin(angle) * t / n
        y /= np.linalg.norm(y)
        vy, gy = region_value(regions, post, y)
        if vy > v:
            x, v, g = y, vy, gy
        else:
            angle /= 2
    return unit(x.astype(np.float32))


class PosteriorKept(SumoPolicy):
    """``sumo``, keeping the request's posterior for ``_neighbours`` (which is not given it;
    ``SumoPolicy.recommend`` computes it again, which a study can afford)."""

    _post: Posterior | None = None

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        regions = regions_for(self.store)
        self._post = None
        if regions is not None:
            ev = RegionEvidence.load(state, regions)
            if not ev.empty:
                self._post = ev.posterior()
        return super().recommend(state, limit, exclude)


class AscentPolicy(PosteriorKept):
    name = "sumo-ascent"
    description = "sumo plus a query where the posterior's expected dwell peaks (research)"
    always = False

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str], *, mode: Vector | None = None
                    ) -> list[list[Hit]]:
        found = super()._neighbours(regions, points, limit, exclude, mode=mode)
        post = self._post
        if post is None or (searching(points) and not self.always):
            return found
        starts: list[Vector] = [q if not isinstance(q, int) else regions.centroids[q]
                                for q in points]
        m = likeliest_mode(regions, post.probs)
        if m is not None:
            starts.append(m)
        peak = ascend(regions, post, starts)
        more = self.store.search(peak, max(CANDIDATES, limit), exclude=exclude,
                                 with_vectors=True)
        return [*found, more]


class AscentAlways(AscentPolicy):
    name = "sumo-ascent-always"
    always = True


MODE_LISTS = 4  # likeliest regions of the mode whose lists are valued once found


class ModeLists(PosteriorKept):
    """Once found and no direction is likely: the lists of the ``MODE_LISTS`` likeliest
    regions of the likeliest mode (the picks ``sumo-all-found`` makes beyond ``sumo``'s own
    candidates lie mostly in likely regions' lists)."""

    name = "sumo-mode-lists"
    description = "sumo valuing the likeliest mode's best regions' lists once found (research)"

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str], *, mode: Vector | None = None
                    ) -> list[list[Hit]]:
        found = super()._neighbours(regions, points, limit, exclude, mode=mode)
        lists = lists_for(self.store, regions)
        post = self._post
        if post is None or lists is None or searching(points) or post.linear >= LINEAR_QUERY:
            return found
        members = mode_members(regions, post.probs)
        ranked = np.argsort(-np.where(members, post.probs, -1.0))[:MODE_LISTS]
        more = [h for r in ranked if members[r] for h in lists.near[int(r)]
                if h.id not in exclude]
        return [*found, more]


for _policy in (AscentPolicy, AscentAlways, ModeLists):
    REGISTRY[_policy.name] = _policy

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
