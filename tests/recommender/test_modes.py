"""The posterior's likeliest mode, queried around the blend of its own regions' centres."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from indexer.store.base import Beams, Hit, Vector, beams
from indexer.store.edge import EdgeStore
from recommender import regions
from recommender.policies.sumo import MODE_MASS, WIDE_EF, SumoPolicy, likeliest_mode
from recommender.regions import RegionMap
from recommender.sim.corpus import load_corpus, make_corpus

DIM = 64


def _map(centroids: np.ndarray) -> RegionMap:
    # An item at cosine 0.9 of a centre is one of its favourites; orthogonal is unrelated.
    k = len(centroids)
    return RegionMap(centroids=centroids.astype(np.float32), top=np.full(k, 0.9, np.float32),
                     median=np.zeros(k, np.float32), items=1000, version=f"modes-{k}")


def _neighbours_and_strangers(k: int = 8) -> RegionMap:
    """Regions 0 and 1 are neighbours (centres at cosine 0.95); the others orthogonal."""
    c = np.eye(k, DIM)
    c[1] = 0.95 * c[0] + np.sqrt(1 - 0.95**2) * c[1]
    return _map(c)


def _probs(k: int, mass: dict[int, float]) -> np.ndarray:
    p = np.zeros(k)
    for r, m in mass.items():
        p[r] = m
    rest = np.flatnonzero(p == 0)
    p[rest] = (1 - p.sum()) / len(rest)
    return p


def test_a_taste_straddling_neighbours_is_one_mode_between_them() -> None:
    m = _neighbours_and_strangers()
    p = _probs(8, {0: 0.35, 1: 0.2, 4: 0.2, 6: 0.2})
    blend = likeliest_mode(m, p)
    assert blend is not None
    assert abs(float(np.linalg.norm(blend)) - 1) < 1e-5
    # Between the two centres, nearer the likelier one, and away from the others...
    cos = m.centroids @ blend
    assert cos[0] > cos[1] > 0.95
    assert np.all(cos[2:] < 0.1)
    # ...where the whole posterior's blend is pulled toward those.
    whole = p @ m.centroids
    assert float(m.centroids[0] @ whole) / float(np.linalg.norm(whole)) < cos[0] - 0.05


def test_the_likeliest_mode_leaves_a_separate_interest_out() -> None:
    m = _neighbours_and_strangers()
    blend = likeliest_mode(m, _probs(8, {0: 0.2, 1: 0.1, 4: 0.5}))
    assert blend is not None
    assert float(m.centroids[4] @ blend) > 0.999


def test_no_mode_stands_out_of_a_flat_posterior() -> None:
    k = int(2 / MODE_MASS)
    assert likeliest_mode(_map(np.eye(k, max(k, DIM))), np.full(k, 1 / k)) is None


class _BeamRecorder(EdgeStore):
    """Records the beam of every query a request sends (not the exact ones that find the
    centre lists)."""

    beams: list[int | None]

    def search_many(self, vectors: Sequence[Vector], limit: int, *,
                    exclude: Collection[str] = (), with_vectors: bool = False,
                    ef: Beams = None, exact: bool = False) -> list[list[Hit]]:
        if not exact:
            self.beams += list(beams(ef, len(vectors)))
        return super().search_many(vectors, limit, exclude=exclude, with_vectors=with_vectors,
                                   ef=ef, exact=exact)


def test_with_the_mode_asked_both_blends_take_the_stores_beam(tmp_path: Path) -> None:
    corpus = make_corpus(3000, dim=64, clusters=12, seed=4)
    with _BeamRecorder(tmp_path / "s") as store:
        load_corpus(store, corpus)
        m = regions.refresh(store)
        assert m is not None
        policy = SumoPolicy(store, np.random.default_rng(0))
        whole, mode = m.centroids[0], m.centroids[1]
        for asked, expected in ((None, [WIDE_EF]), (mode, [None, None])):
            store.beams = []
            got = policy._neighbours(m, [whole, 2], 10, set(), mode=asked)
            assert store.beams == expected
            assert len(got) == 2 + (asked is not None) and all(len(hits) == 10 for hits in got)
