"""Inputs that cannot break a record: feedback times in milliseconds or far in the past or
future, booleans for numbers, empty seeds; the user stays readable afterwards."""

from __future__ import annotations

import json
import time
from typing import Any

from api_helpers import user
from fastapi.testclient import TestClient

from recommender.dwell import TS_MIN, validate_ts


def post(client: TestClient, uid: str, events: list[dict[str, Any]]) -> Any:
    return client.post(f"/v1/users/{uid}/feedback", content=json.dumps({"events": events}),
                       headers={"content-type": "application/json"})


def an_item(client: TestClient, uid: str) -> str:
    r = client.get(f"/v1/users/{uid}/recommendations", params={"limit": 1})
    assert r.status_code == 200, r.text
    item: str = r.json()["items"][0]["id"]
    return item


def test_milliseconds_are_refused_with_a_hint_and_the_user_stays_readable(
    client: TestClient,
) -> None:
    uid = user()
    item = an_item(client, uid)
    ms = 1764100000500  # Date.now() in a browser
    r = post(client, uid, [{"item_id": item, "dwell_ms": 1500, "ts": ms}])
    assert r.status_code == 422, r.text
    (problem,) = r.json()["error"]["details"]
    assert "seconds since the epoch" in problem["error"]
    assert "ts / 1000" in problem["error"] and "1764100000.500" in problem["error"]
    # Nothing was stored: the user reads, seeds and takes feedback as before.
    assert client.get(f"/v1/users/{uid}").json()["events"] == 0
    assert client.post(f"/v1/users/{uid}/seed", json={"item_ids": [item]}).status_code == 200
    r = post(client, uid, [{"item_id": item, "dwell_ms": 1500, "ts": ms / 1000}])
    assert r.status_code == 200
    assert client.get(f"/v1/users/{uid}").json()["last_active"].startswith("2025-11-25")


def test_times_outside_the_plausible_range_are_refused(client: TestClient) -> None:
    uid = user()
    item = an_item(client, uid)
    now = time.time()
    bad = [-1e12, 0, TS_MIN - 1, now + 2 * 86_400, 1e300, "9999-01-01T00:00:00Z",
           "1969-07-20T20:17:00Z"]
    events = [{"item_id": item, "dwell_ms": 1000, "ts": ts} for ts in bad]
    r = post(client, uid, events)
    assert r.status_code == 422, r.text
    details = r.json()["error"]["details"]
    assert sorted(d["index"] for d in details) == list(range(len(bad)))
    assert all("seconds since the epoch" in d["error"] for d in details)
    # A clock a little ahead, ISO 8601 and plain seconds are fine.
    good = [now + 3600, "2024-05-01T12:00:00Z", now - 86_400]
    r = post(client, uid, [{"item_id": item, "dwell_ms": 1000, "ts": ts} for ts in good])
    assert r.status_code == 200 and r.json()["applied"] == 3
    assert client.get(f"/v1/users/{uid}").json()["last_active"] is not None


def test_booleans_and_strings_are_not_numbers(client: TestClient) -> None:
    uid = user()
    item = an_item(client, uid)
    for event in ({"item_id": item, "dwell_ms": True}, {"item_id": item, "dwell_ms": "1500"},
                  {"item_id": item, "dwell_ms": 1500, "ts": True}):
        r = post(client, uid, [event])
        assert r.status_code == 422, (event, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    assert client.get(f"/v1/users/{uid}").json()["events"] == 0  # nothing was applied


def test_a_seed_needs_something(client: TestClient) -> None:
    uid = user()
    for body in ({}, {"text": None}, {"item_ids": []}, {"text": ""}):
        r = client.post(f"/v1/users/{uid}/seed", json=body)
        assert r.status_code == 422, (body, r.text)


def test_validate_ts_bounds() -> None:
    now = 1_800_000_000.0
    assert validate_ts(None, now) is None
    assert validate_ts(TS_MIN, now) is None
    assert validate_ts(now + 86_400, now) is None
    assert validate_ts(now + 86_401, now) is not None
    assert validate_ts(float("nan"), now) is not None
    assert "milliseconds" in (validate_ts(now * 1000, now) or "")
    assert "milliseconds" not in (validate_ts(-1e12, now) or "")
