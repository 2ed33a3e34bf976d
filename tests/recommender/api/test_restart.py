"""A `sumo serve` killed with SIGKILL loses no acknowledged event: restart it on the same
data folder and every effect (event count, seen items, idempotency memory) is there."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from serve_process import ServeProcess

from indexer.store.edge import EdgeStore
from recommender.sim.corpus import load_corpus, make_corpus
from recommender.users import NAMESPACE, state_from_document

N_ITEMS = 150


async def _burst(url: str, uid: str, items: list[str]) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as client:
        rs = await asyncio.gather(*(
            client.post(f"{url}/v1/users/{uid}/feedback", json={"events": [
                {"item_id": i, "dwell_ms": 2500, "event_id": f"burst-{i}"}]})
            for i in items
        ))
    return [r.status_code for r in rs]


def test_sigkill_loses_no_acknowledged_event(tmp_path: Path) -> None:
    data = tmp_path / "data"
    corpus = make_corpus(N_ITEMS, dim=16, clusters=5, seed=11)
    with EdgeStore(data) as store:
        load_corpus(store, corpus)
    uid = "restart-user"
    shown: list[str] = []
    acked = 0
    last_batch: list[dict[str, object]] = []

    server = ServeProcess(data, tmp_path / "serve.log")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for step in range(8):
                items = [i["id"] for i in c.get(f"/v1/users/{uid}/recommendations",
                                                params={"limit": 3}).json()["items"]]
                shown += items
                last_batch = [{"item_id": i, "dwell_ms": 400 + 300 * k, "event_id": f"s{step}-{k}"}
                              for k, i in enumerate(items[:2])]
                r = c.post(f"/v1/users/{uid}/feedback", json={"events": last_batch})
                assert r.status_code == 200
                acked += r.json()["applied"]
        # Items never shown get feedback in a concurrent burst; the kill follows the acks.
        burst = [i for i in corpus.ids if i not in shown][:20]
        assert asyncio.run(_burst(server.url, uid, burst)) == [200] * 20
        acked += 20
    finally:
        server.kill()
    assert acked == 36

    server = ServeProcess(data, tmp_path / "serve.log")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            info = c.get(f"/v1/users/{uid}").json()
            assert info["events"] == acked
            assert info["seen"] == len(shown) + len(burst)
            # The idempotency memory survived too: the last retried batch changes nothing.
            again = c.post(f"/v1/users/{uid}/feedback", json={"events": last_batch}).json()
            assert again == {"applied": 0, "duplicates": 2, "events": acked}
            rest: list[str] = []
            while batch := c.get(f"/v1/users/{uid}/recommendations",
                                 params={"limit": 50}).json()["items"]:
                rest += [i["id"] for i in batch]
    finally:
        server.stop()
    before = set(shown) | set(burst)
    assert not before & set(rest), "an item seen before the kill was shown again"
    assert len(rest) == len(set(rest)) == N_ITEMS - len(before)

    with EdgeStore(data) as store:
        doc = store.get_document(NAMESPACE, uid)
        assert doc is not None
        assert set(state_from_document(doc).seen.recent) == set(corpus.ids)
