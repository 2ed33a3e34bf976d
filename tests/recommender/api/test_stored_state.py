"""Users stored by an older version, or holding a value no version should have stored, are
served: the API repairs what it reads (with a log line) instead of answering 500."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from api_helpers import user
from fastapi.testclient import TestClient

from indexer.store.base import Store
from recommender.sim.corpus import SyntheticCorpus
from recommender.users.document import NAMESPACE


def store_old_user(store: Store, uid: str, **state: Any) -> None:
    """A document as the version before the seen fingerprints wrote it (format 1)."""
    body = {"format": 1, "user_id": uid, "policy": "sumo", "target": None, "events": 2,
            "engagement": 3.0, "last_active": 1.7e9, "seen": [], "dwell": {}, "data": {}}
    record = {"state": body | state, "event_ids": ["AAAAAAAAAAAA"]}
    store.put_document(NAMESPACE, uid, {"record": json.dumps(record)}, expected_version=0)


def test_a_millisecond_last_active_is_repaired_not_a_500(
    client: TestClient, store: Store, corpus: SyntheticCorpus, caplog: pytest.LogCaptureFixture
) -> None:
    uid = user()
    seen = corpus.ids[:3]
    store_old_user(store, uid, last_active=1_700_000_000_000.0, seen=seen)
    with caplog.at_level(logging.WARNING):
        r = client.get(f"/v1/users/{uid}")
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["last_active"].startswith("2023-11-14") and info["seen"] == 3
    assert "looks like milliseconds" in caplog.text
    # The user goes on as usual, and the old seen list still keeps items from coming back.
    r = client.get(f"/v1/users/{uid}/recommendations", params={"limit": 20})
    assert r.status_code == 200, r.text
    assert not {item["id"] for item in r.json()["items"]} & set(seen)
    assert client.get(f"/v1/users/{uid}").json()["seen"] == 23


@pytest.mark.parametrize("bad", [
    {"last_active": "yesterday"}, {"last_active": 1e300}, {"target": "%%%"},
    {"events": -1}, {"dwell": {"history": ["slow"]}}, {"data": ["not", "a", "dict"]},
    {"policy": "retired-policy"},
])
def test_other_bad_values_are_dropped_with_a_warning(
    client: TestClient, store: Store, bad: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    uid = user()
    store_old_user(store, uid, **bad)
    with caplog.at_level(logging.WARNING):
        assert client.get(f"/v1/users/{uid}").status_code == 200
        assert client.get(f"/v1/users/{uid}/recommendations").status_code == 200
    assert uid in caplog.text
