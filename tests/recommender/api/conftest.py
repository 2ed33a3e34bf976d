"""Shared fixtures: a real store (Qdrant Edge in a tmp folder, or qdrant-client local mode)
loaded with a small synthetic corpus, and the app over it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_helpers import BACKENDS, DIM, N_ITEMS, make_settings, open_backend
from fastapi.testclient import TestClient

from indexer.store.base import Store
from recommender.api.app import create_app
from recommender.sim.corpus import SyntheticCorpus, load_corpus, make_corpus


@pytest.fixture(scope="module")
def corpus() -> SyntheticCorpus:
    return make_corpus(N_ITEMS, dim=DIM, clusters=8, seed=3)


@pytest.fixture(scope="module", params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    corpus: SyntheticCorpus,
) -> Iterator[Store]:
    s = open_backend(request.param, tmp_path_factory.mktemp(request.param))
    load_corpus(s, corpus)
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path_factory.mktemp("app")), store=store)
    with TestClient(app) as c:
        yield c
