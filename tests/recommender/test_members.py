"""Each region's members, kept per process: every item once, under its nearest centre."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.store.base import Item
from indexer.store.edge import EdgeStore
from indexer.store.server import ServerStore
from recommender import members, regions
from recommender.policies.evidence import linear_basis
from recommender.sim.corpus import SyntheticCorpus, load_corpus, make_corpus


@pytest.fixture(scope="module")
def corpus() -> SyntheticCorpus:
    return make_corpus(3000, dim=64, clusters=12, seed=4)


def test_every_item_belongs_to_its_nearest_centre(tmp_path: Path,
                                                  corpus: SyntheticCorpus) -> None:
    with EdgeStore(tmp_path / "s") as store:
        load_corpus(store, corpus)
        m = regions.refresh(store)
        assert m is not None
        got = members.members_for(store, m, linear_basis(m))
        assert got is not None and members.members_for(store, m, linear_basis(m)) is got  # kept
        assert sorted(got.ids) == sorted(corpus.ids)
        assert sorted(np.concatenate(got.rows).tolist()) == list(range(len(got.ids)))
        sims = np.stack([corpus.vectors[corpus.index(i)] for i in got.ids]) @ m.centroids.T
        for h, rows in enumerate(got.rows):
            assert (np.argmax(sims[rows], axis=1) == h).all()
        nearest = np.argsort(-sims, axis=1)[:, :members.NEAREST]
        assert (got.near == nearest).all()
        np.testing.assert_allclose(got.sims, np.take_along_axis(sims, nearest, axis=1),
                                   atol=2e-3)
        vectors = np.stack([corpus.vectors[corpus.index(i)] for i in got.ids])
        np.testing.assert_allclose(got.coords, linear_basis(m)(vectors), atol=1e-2, rtol=2e-3)
        pool = got.pool(np.array([2, 5]))
        assert sorted(pool.tolist()) == sorted([*got.rows[2], *got.rows[5]])


def test_the_best_leave_out_the_seen_and_a_write_renews_them(tmp_path: Path,
                                                             corpus: SyntheticCorpus) -> None:
    with EdgeStore(tmp_path / "s") as store:
        load_corpus(store, corpus)
        m = regions.refresh(store)
        assert m is not None
        got = members.members_for(store, m, linear_basis(m))
        assert got is not None
        rows = got.rows[0]
        value = np.arange(len(rows), dtype=np.float64)  # the last row is the best
        best = [got.ids[int(r)] for r in rows[::-1][:4]]
        assert got.best(rows, value, 3, exclude={best[0]}) == best[1:]
        store.upsert([Item("at-the-centre", m.centroids[0])])
        after = members.members_for(store, m, linear_basis(m))
        assert after is not None and after is not got
        assert "at-the-centre" in {after.ids[int(r)] for r in after.rows[0]}


def test_a_server_store_keeps_no_members(corpus: SyntheticCorpus) -> None:
    # Other processes write to a server: nothing here could tell when they went stale.
    with ServerStore(":memory:") as store:
        load_corpus(store, corpus)
        m = regions.refresh(store)
        assert m is not None and members.members_for(store, m, linear_basis(m)) is None
