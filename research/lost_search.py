"""A search that stops on the prior: the regions unit test's user, traced, and how soon
``sumo`` shows a clear taste's cluster against random picks.

The corpus of ``tests/recommender/test_regions.py`` (3,000 items, 64-d, 12 clusters); a
user looks ~7x longer (log dwell 9.0 against 7.0, sd 0.5) at one cluster's items.

- ``trace``: the test's old scenario (engine seed 3, cluster 5, 12 batches of 5) over the
  stored region map, per batch: the clusters shown and the four likeliest regions (index,
  nearest cluster, probability, lift, lift sd); with no view of cluster 5, a region's lift
  can read credible from the prior alone and the search stops there.
- ``first``: 48 users (cluster ``seed % 12``, seeds 0-47), the view at which their cluster
  is first shown (101: not in 100), ``sumo`` against ``random``.

    PYTHONPATH=. python research/lost_search.py trace
    PYTHONPATH=. python research/lost_search.py first
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from indexer.store.edge import EdgeStore
from recommender.engine import Engine, Observation
from recommender.policies.evidence import RegionEvidence
from recommender.regions import regions_for
from recommender.sim.corpus import SyntheticCorpus, load_corpus, make_corpus
from recommender.state import UserState


def views(engine: Engine, corpus: SyntheticCorpus, liked: int, seed: int, batches: int
          ) -> Iterator[tuple[list[int], UserState]]:
    """Batch by batch: the clusters ``engine`` showed, and the state after their dwells."""
    state = engine.new_state("u")
    rng = np.random.default_rng(seed)
    for _ in range(batches):
        hits = engine.recommend(state, 5)
        labels = [int(corpus.labels[corpus.index(h.id)]) for h in hits]
        engine.observe(state, [
            Observation(h.id, corpus.vectors[corpus.index(h.id)],
                        float(np.exp(rng.normal(9.0 if c == liked else 7.0, 0.5))))
            for h, c in zip(hits, labels, strict=True)])
        yield labels, state


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("trace", "first"))
    args = ap.parse_args()
    corpus = make_corpus(3000, dim=64, clusters=12, seed=4)
    with tempfile.TemporaryDirectory() as tmp, EdgeStore(Path(tmp)) as store:
        load_corpus(store, corpus)
        m = regions_for(store)
        assert m is not None
        if args.what == "trace":
            near = [int(np.argmax(corpus.centers @ c)) for c in m.centroids]
            engine = Engine(store, default_policy="sumo", seed=3)
            for b, (labels, state) in enumerate(views(engine, corpus, 5, 0, 12)):
                post = RegionEvidence.load(state, m).posterior()
                top = np.argsort(-post.probs)[:4]
                print(b, labels, [(int(r), near[r], round(float(post.probs[r]), 3),
                                   round(float(post.g[r]), 2), round(float(post.g_sd[r]), 2))
                                  for r in top])
            return 0
        for policy in ("sumo", "random"):
            firsts = []
            for seed in range(48):
                liked = seed % 12
                first = 101
                engine = Engine(store, default_policy=policy, seed=seed)
                for b, (labels, _) in enumerate(views(engine, corpus, liked, seed, 20)):
                    if liked in labels:
                        first = b * 5 + labels.index(liked) + 1
                        break
                firsts.append(first)
            print(f"{policy}: first shown after a median {np.median(firsts)} views (mean "
                  f"{np.mean(firsts):.1f}); not in 100 views for {firsts.count(101)} of 48")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
