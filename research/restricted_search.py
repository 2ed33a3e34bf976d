"""Would an exact search within the likeliest regions answer ``sumo``'s composed queries
better than the HNSW graph does?

At 100k items exact search lifts ``sumo`` over the graph (docs/research.md, "the
approximate index": mean 0.343 against 0.327, `flat` 0.458 against 0.388): the queries it
composes, the posterior's blend of centres and its likeliest mode's blend, lie between the
data, where the graph finds 0.4-0.8 of their true neighbours. A store could answer them
exactly and cheaply by scanning only the items of the posterior's ``K`` likeliest regions
(a payload filter on each item's region, which Qdrant serves by a plain scan when it is
selective). This registers ``sumo-restricted``: those two queries answered by exact search
over the unseen items whose nearest centre is one of the ``K`` likeliest regions (by the
region posterior), everything else as the product does. A bound for a study, in memory:

    PYTHONPATH=. python research/restricted_search.py --world flat --items 100000 \\
        --users 12 --paired --vs sumo-restricted

``sumo-restricted-broad`` does so only while "a direction" holds ``LINEAR_QUERY`` of the
posterior (when ``sumo`` queries along one too).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from candidate_pool import every_item, members_of  # research/ is on the path as a script
from value_ascent import PosteriorKept

from indexer.store.base import Hit, Vector
from recommender.policies import REGISTRY
from recommender.policies.sumo import LINEAR_QUERY
from recommender.regions import RegionMap

K = 8  # likeliest regions scanned


class RestrictedSearch(PosteriorKept):
    name = "sumo-restricted"
    description = "sumo with its composed queries answered exactly within the likeliest regions"
    min_linear = 0.0  # only once "a direction" holds this much of the posterior

    def _neighbours(self, regions: RegionMap, points: list[Vector | int], limit: int,
                    exclude: Collection[str], *, mode: Vector | None = None
                    ) -> list[list[Hit]]:
        found = super()._neighbours(regions, points, limit, exclude, mode=mode)
        post = self._post
        if post is None or post.linear < self.min_linear:
            return found
        ids, vectors = every_item(self.store)
        rows = members_of(vectors, regions, np.argsort(-post.probs)[:K])
        rows = np.array([r for r in rows if ids[r] not in exclude], dtype=np.int64)
        if not len(rows):
            return found

        def exact(q: Vector) -> list[Hit]:
            sims = vectors[rows] @ np.asarray(q, np.float32)
            top = rows[np.argsort(-sims)[:limit]]
            return [Hit(id=ids[r], score=float(vectors[r] @ q), vector=vectors[r]) for r in top]

        out = list(found)
        out[0] = exact(np.asarray(points[0], np.float32))  # the whole posterior's blend
        if mode is not None:
            out[-1] = exact(mode)
        return out


class RestrictedWhileBroad(RestrictedSearch):
    name = "sumo-restricted-broad"
    description = "sumo-restricted only while a direction is a likely taste (research)"
    min_linear = LINEAR_QUERY


for _policy in (RestrictedSearch, RestrictedWhileBroad):
    REGISTRY[_policy.name] = _policy

if __name__ == "__main__":
    import bench_variants  # research/ is on the path when run as a script

    raise SystemExit(bench_variants.main())
