"""Parallel requests for one user lose no update: real uvicorn servers on loopback, real
thread concurrency in the store, and compare-and-set across replicas."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from api_helpers import LiveServer, make_settings, user

from indexer.store.base import Store
from recommender.api.app import create_app
from recommender.engine import Engine, Observation
from recommender.sim.corpus import SyntheticCorpus
from recommender.users import UserRecord, UserRepository


async def _post_all(urls: list[str], uid: str, items: list[str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*(
            client.post(f"{urls[k % len(urls)]}/v1/users/{uid}/feedback", json={"events": [
                {"item_id": item, "dwell_ms": 300 + 40 * k, "event_id": f"ev-{k}"}]})
            for k, item in enumerate(items)
        ))


async def _recommend_all(urls: list[str], uid: str, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*(
            client.get(f"{urls[k % len(urls)]}/v1/users/{uid}/recommendations",
                       params={"limit": 3})
            for k in range(n)
        ))


def test_50_concurrent_feedback_posts_are_all_counted(
    store: Store, corpus: SyntheticCorpus, tmp_path: Path
) -> None:
    app = create_app(make_settings(tmp_path), store=store)
    uid, items = user(), corpus.ids[:50]
    with LiveServer(app) as server:
        responses = asyncio.run(_post_all([server.url], uid, items))
        assert [r.status_code for r in responses] == [200] * 50
        info = httpx.get(f"{server.url}/v1/users/{uid}").json()
    assert info["events"] == 50
    record = UserRepository(store, Engine(store)).load(uid)
    assert record is not None and set(record.state.seen.recent) == set(items)
    assert len(record.event_ids) == 50


def test_two_replicas_share_users_without_losing_or_repeating(
    store: Store, corpus: SyntheticCorpus, tmp_path: Path
) -> None:
    # Two apps over one store are two replicas: their in-process queues are separate, so
    # only compare-and-set keeps them from overwriting each other.
    replicas = [create_app(make_settings(tmp_path), store=store) for _ in range(2)]
    uid = user()
    with LiveServer(replicas[0]) as a, LiveServer(replicas[1]) as b:
        urls = [a.url, b.url]
        recs = asyncio.run(_recommend_all(urls, uid, 20))
        assert all(r.status_code == 200 for r in recs)
        shown = [i["id"] for r in recs for i in r.json()["items"]]
        assert len(shown) == 60 and len(set(shown)) == 60, "a replica repeated an item"
        posts = asyncio.run(_post_all(urls, uid, shown[:40]))
        assert all(r.status_code == 200 for r in posts)
        retried = asyncio.run(_post_all(urls, uid, shown[:40]))  # every event again
        assert sum(r.json()["duplicates"] for r in retried) == 40
        info = httpx.get(f"{b.url}/v1/users/{uid}").json()
    assert info["events"] == 40 and info["seen"] == 60


def test_a_lost_race_is_retried_on_the_fresh_state(store: Store, corpus: SyntheticCorpus) -> None:
    engine = Engine(store)
    mine, other = UserRepository(store, engine), UserRepository(store, engine)
    uid = user()
    vectors = {i: v for i, v in zip(corpus.ids[:2], corpus.vectors[:2], strict=True)}
    attempts: list[int] = []

    def other_change(record: UserRecord) -> tuple[Any, bool]:
        engine.observe(record.state, [Observation(corpus.ids[1], vectors[corpus.ids[1]], 700)])
        return None, True

    def change(record: UserRecord) -> tuple[Any, bool]:
        attempts.append(record.version)
        if len(attempts) == 1:
            other.update(uid, other_change)  # another replica writes after we read
        engine.observe(record.state, [Observation(corpus.ids[0], vectors[corpus.ids[0]], 900)])
        return None, True

    mine.update(uid, change)
    assert attempts == [0, 1]
    record = mine.load(uid)
    assert record is not None and record.state.events == 2
    assert set(record.state.seen.recent) == set(corpus.ids[:2])
