"""The capture benchmark's client protocols through the API, as ``benchmarks/bench_feed.py``
drives ``sumo serve``: every impression a new item, every dwell sent applied once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import httpx
import numpy as np
import pytest
from api_helpers import user
from fastapi.testclient import TestClient

from recommender.sim.clients import HttpClient, protocol, run_protocol
from recommender.sim.corpus import SyntheticCorpus
from recommender.sim.users import make_users


class Counting(HttpClient):
    """The benchmark's HTTP client, counting the dwells it sends."""

    sent = 0

    def feedback(self, events: Sequence[tuple[str, float]]) -> None:
        super().feedback(events)
        self.sent += len(events)


@pytest.mark.parametrize("name", ["batch5", "feed"])
def test_a_protocol_over_the_api(name: str, client: TestClient, corpus: SyntheticCorpus) -> None:
    uid = user()
    api = Counting(cast(httpx.Client, client), uid)  # the test client speaks httpx's API
    sim = make_users("niche", corpus, 1, seed=2)[0]
    run = run_protocol(api, protocol(name), corpus, sim, np.random.default_rng(0), 30)
    assert len(set(run.shown)) == 30
    info = client.get(f"/v1/users/{uid}").json()
    assert info["events"] == api.sent > 0
    assert info["seen"] >= 30
