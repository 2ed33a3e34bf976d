"""The HTTP API end to end over real stores (Qdrant Edge and qdrant-client local mode)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from api_helpers import DIM, make_settings, user
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from indexer.errors import StoreUnavailable
from indexer.store.base import Item, Store
from indexer.store.edge import EdgeStore
from indexer.store.server import ServerStore
from recommender.api.app import create_app
from recommender.sim.corpus import SyntheticCorpus, load_corpus


def rec(client: TestClient, uid: str, limit: int = 5, **params: Any) -> list[str]:
    r = client.get(f"/v1/users/{uid}/recommendations", params={"limit": limit, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    for item in body["items"]:
        assert set(item) >= {"id", "score", "image_url"}
        assert item["image_url"].endswith(f"/v1/items/{item['id']}/image")
    return [item["id"] for item in body["items"]]


def post(client: TestClient, uid: str, events: list[dict[str, Any]]) -> Any:
    # json.dumps, not httpx's encoder: the tests send NaN and Infinity on purpose.
    return client.post(f"/v1/users/{uid}/feedback", content=json.dumps({"events": events}),
                       headers={"content-type": "application/json"})


def error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    return dict(body["error"])


def test_recommendations_never_repeat_until_the_corpus_runs_out(
    client: TestClient, store: Store
) -> None:
    uid = user()
    total = store.count()
    first = rec(client, uid, limit=7)
    assert len(first) == 7
    # Items given feedback without being shown are never shown either.
    viewed = [i for i in store.sample(30, exclude=first, seed=1) if i.id not in first][:10]
    r = post(client, uid, [{"item_id": h.id, "dwell_ms": 900.0} for h in viewed])
    assert r.status_code == 200 and r.json()["applied"] == len(viewed)
    shown = list(first)
    while batch := rec(client, uid, limit=100):
        shown += batch
    assert len(shown) == len(set(shown)), "an item was recommended twice"
    assert not set(shown) & {h.id for h in viewed}
    assert len(shown) + len(viewed) == total
    assert client.get(f"/v1/users/{uid}").json()["seen"] == total


def test_feedback_is_idempotent_per_event_id(client: TestClient) -> None:
    uid = user()
    ids = rec(client, uid, limit=4)
    events = [{"item_id": i, "dwell_ms": 1200 + 100 * k, "event_id": f"e{k}"}
              for k, i in enumerate(ids)]
    first = post(client, uid, events).json()
    assert first == {"applied": 4, "duplicates": 0, "events": 4}
    assert post(client, uid, events).json() == {"applied": 0, "duplicates": 4, "events": 4}
    # A batch repeating one id counts it once; events without an id always count.
    again = [{"item_id": ids[0], "dwell_ms": 10, "event_id": "x"}] * 2
    assert post(client, uid, again).json() == {"applied": 1, "duplicates": 1, "events": 5}
    anon = [{"item_id": ids[1], "dwell_ms": 10}]
    assert post(client, uid, anon).json()["events"] == 6
    assert post(client, uid, anon).json()["events"] == 7
    info = client.get(f"/v1/users/{uid}").json()
    assert info["events"] == 7 and info["user_id"] == uid and info["last_active"] is not None


def test_bad_events_are_all_listed_and_nothing_is_applied(client: TestClient) -> None:
    uid = user()
    ids = rec(client, uid, limit=3)
    post(client, uid, [{"item_id": ids[0], "dwell_ms": 500, "event_id": "ok"}])
    before = client.get(f"/v1/users/{uid}").json()
    events = [
        {"item_id": ids[1], "dwell_ms": 800, "event_id": "good"},
        {"item_id": "no-such-item", "dwell_ms": 800},
        {"item_id": ids[2], "dwell_ms": -5},
        {"item_id": ids[2], "dwell_ms": float("nan")},
        {"item_id": ids[2], "dwell_ms": float("inf")},
        {"item_id": ids[2], "dwell_ms": 10, "ts": float("nan")},
    ]
    err = error(post(client, uid, events), 422, "invalid_feedback")
    assert sorted(d["index"] for d in err["details"]) == [1, 2, 3, 4, 5]
    assert all(d["error"] for d in err["details"])
    assert client.get(f"/v1/users/{uid}").json() == before
    # The good event was not applied either: sending it alone now applies it.
    assert post(client, uid, events[:1]).json()["applied"] == 1


def test_malformed_requests_list_each_field(client: TestClient) -> None:
    uid = user()
    bad = [{"item_id": "a"}, {"dwell_ms": 3}, {"item_id": "b", "dwell_ms": "x"}]
    r = client.post(f"/v1/users/{uid}/feedback", json={"events": bad})
    err = error(r, 422, "validation_error")
    assert len(err["details"]) == 3
    error(client.post(f"/v1/users/{uid}/feedback", json={"events": []}), 422, "validation_error")
    error(client.get("/v1/users/bad%20id/recommendations"), 422, "validation_error")
    error(client.get("/v1/nothing-here"), 404, "not_found")


def test_caps_on_limit_batch_and_body(client: TestClient) -> None:
    uid = user()
    error(client.get(f"/v1/users/{uid}/recommendations", params={"limit": 101}), 422,
          "validation_error")
    ids = rec(client, uid, limit=1)
    too_many = [{"item_id": ids[0], "dwell_ms": 1}] * 65
    error(post(client, uid, too_many), 422, "validation_error")
    huge = json.dumps({"events": [{"item_id": "x" * 200, "dwell_ms": 1}] * 1100})
    r = client.post(f"/v1/users/{uid}/feedback", content=huge,
                    headers={"content-type": "application/json"})
    error(r, 413, "payload_too_large")
    # A chunked body (no Content-Length) is counted as it arrives.
    chunks = (huge[i:i + 50_000].encode() for i in range(0, len(huge), 50_000))
    r = client.post(f"/v1/users/{uid}/feedback", content=chunks,
                    headers={"content-type": "application/json"})
    error(r, 413, "payload_too_large")
    assert client.get(f"/v1/users/{uid}").json()["events"] == 0
    # Without a limit, the batch SUMO learns best from (docs/recommender.md).
    assert len(client.get(f"/v1/users/{user()}/recommendations").json()["items"]) == 5


def test_unknown_policy_names_the_valid_ones_and_changes_nothing(client: TestClient) -> None:
    uid = user()
    err = error(client.get(f"/v1/users/{uid}/recommendations", params={"policy": "nope"}),
                422, "unknown_policy")
    valid = err["details"][0]["valid"]
    assert "sumo" in valid and "random" in valid and "random" in err["message"]
    error(client.get(f"/v1/users/{uid}"), 404, "not_found")
    r = client.get(f"/v1/users/{uid}/recommendations", params={"policy": "random", "limit": 2})
    assert r.json()["policy"] == "random"
    assert client.get(f"/v1/users/{uid}").json()["policy"] == "random"
    # A user stays on the policy a request last named.
    assert client.get(f"/v1/users/{uid}/recommendations").json()["policy"] == "random"


def test_delete_forgets_the_user(client: TestClient) -> None:
    uid = user()
    ids = rec(client, uid, limit=5)
    post(client, uid, [{"item_id": ids[0], "dwell_ms": 4000, "event_id": "e1"}])
    assert client.delete(f"/v1/users/{uid}").json() == {"user_id": uid, "deleted": True}
    error(client.get(f"/v1/users/{uid}"), 404, "not_found")
    assert client.delete(f"/v1/users/{uid}").json()["deleted"] is False
    # Forgotten means forgotten: the old event id applies again, from zero.
    again = post(client, uid, [{"item_id": ids[0], "dwell_ms": 4000, "event_id": "e1"}])
    assert again.json() == {"applied": 1, "duplicates": 0, "events": 1}


def test_seed_with_liked_items(client: TestClient, corpus: SyntheticCorpus) -> None:
    uid = user()
    liked = [i for i, lab in zip(corpus.ids, corpus.labels, strict=True) if lab == 2][:3]
    r = client.post(f"/v1/users/{uid}/seed", json={"item_ids": liked})
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == uid
    # The warm start points the "sumo" policy at cluster 2.
    ids = rec(client, uid, limit=10)
    labels = [int(corpus.labels[corpus.ids.index(i)]) for i in ids if i in corpus.ids]
    assert labels.count(2) >= 3, labels  # random picks would give about 1 in 8
    err = error(client.post(f"/v1/users/{uid}/seed", json={"item_ids": ["nope", liked[0]]}),
                422, "validation_error")
    assert err["details"] == [{"index": 0, "item_id": "nope", "error": "unknown item"}]
    error(client.post(f"/v1/users/{uid}/seed", json={}), 422, "validation_error")
    # Imported vectors: no text encoder matches them, so a text seed is refused clearly.
    err = error(client.post(f"/v1/users/{uid}/seed", json={"text": "red boats"}), 409,
                "text_encoder_unavailable")
    assert "import:" in err["message"]
    error(client.get("/v1/search", params={"q": "boats"}), 409, "text_encoder_unavailable")


def test_item_metadata_hides_file_paths(client: TestClient, store: Store, tmp_path: Path) -> None:
    store.upsert([Item("meta-1", vector=_unit(7), payload={
        "item_id": "meta-1", "paths": ["/secret/x.jpg"], "files": [{"path": "/secret/x.jpg"}],
        "width": 640, "height": 480, "caption": "a boat"})])
    body = client.get("/v1/items/meta-1").json()
    assert body["width"] == 640 and body["metadata"]["caption"] == "a boat"
    assert "/secret" not in json.dumps(body)
    error(client.get("/v1/items/missing"), 404, "not_found")


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def test_images_are_resized_cached_and_only_from_indexed_roots(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    root, outside = tmp_path / "photos", tmp_path / "private"
    root.mkdir()
    outside.mkdir()
    Image.new("RGB", (1200, 800), (200, 30, 30)).save(root / "red.png")
    Image.new("RGB", (300, 200), (30, 30, 200)).save(outside / "blue.png")
    os.symlink(outside / "blue.png", root / "link.png")
    items = {
        "img-ok": [str(root / "red.png")],
        "img-outside": [str(outside / "blue.png")],
        "img-symlink": [str(root / "link.png")],
        "img-relative": ["photos/red.png"],
        "img-dotdot": [str(root / ".." / "private" / "blue.png")],
    }
    store.upsert([Item(k, vector=_unit(n), payload={"item_id": k, "paths": v})
                  for n, (k, v) in enumerate(items.items())])
    doc = store.get_document("corpus", "roots")
    store.put_document("corpus", "roots", {"roots": [str(root)]},
                       expected_version=doc.version if doc else 0)

    r = client.get("/v1/items/img-ok/image", params={"size": 200})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = Image.open(io.BytesIO(r.content))
    assert img.format == "JPEG" and img.size == (256, 171)  # 200 snaps up to 256
    again = client.get("/v1/items/img-ok/image", params={"size": 256},
                       headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304
    webp = client.get("/v1/items/img-ok/image", headers={"accept": "image/webp,*/*"})
    assert webp.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(webp.content)).size == (1024, 683)
    full = client.get("/v1/items/img-ok/image", params={"size": 4000, "format": "jpeg"})
    assert Image.open(io.BytesIO(full.content)).size == (1200, 800)  # never enlarged
    for bad in ("img-outside", "img-symlink", "img-relative", "img-dotdot", "nope"):
        error(client.get(f"/v1/items/{bad}/image"), 404, "not_found")


def test_transparent_images_keep_their_alpha(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "cutouts"
    root.mkdir()
    # A red disc on a transparent square, as a logo or sticker is: the feed must show the
    # page through the corners, not a white box.
    im = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse((50, 50, 350, 350), fill=(220, 20, 20, 255))
    im.save(root / "disc.png")
    Image.new("RGBA", (300, 300), (10, 120, 10, 255)).save(root / "opaque.png")
    store.upsert([Item(k, vector=_unit(40 + n), payload={"item_id": k, "paths": [str(root / f)]})
                  for n, (k, f) in enumerate((("disc", "disc.png"), ("opaque", "opaque.png")))])
    doc = store.get_document("corpus", "roots")
    roots = list(doc.body.get("roots", [])) if doc else []
    store.put_document("corpus", "roots", {"roots": roots + [str(root)]},
                       expected_version=doc.version if doc else 0)

    # A fresh app: the shared one remembers the indexed roots for a few seconds.
    with TestClient(create_app(make_settings(tmp_path), store=store)) as client:
        _check_alpha(client)


def _check_alpha(client: TestClient) -> None:
    as_jpeg = client.get("/v1/items/disc/image", params={"size": 256, "format": "jpeg"})
    assert as_jpeg.status_code == 200 and as_jpeg.headers["content-type"] == "image/png"
    png = Image.open(io.BytesIO(as_jpeg.content))
    assert png.mode == "RGBA" and png.size == (256, 256)
    assert png.getpixel((2, 2))[3] == 0 and png.getpixel((128, 128)) == (220, 20, 20, 255)
    webp = client.get("/v1/items/disc/image", params={"size": 256, "format": "webp"})
    assert webp.headers["content-type"] == "image/webp"
    w = Image.open(io.BytesIO(webp.content))
    assert w.mode == "RGBA" and w.getpixel((2, 2))[3] == 0 and w.getpixel((128, 128))[3] > 250
    # An alpha channel with nothing transparent is an ordinary photo: JPEG as asked.
    opaque = client.get("/v1/items/opaque/image", params={"format": "jpeg"})
    assert opaque.headers["content-type"] == "image/jpeg"


def test_probes_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["model"] == "not_needed" and ready.json()["items"] > 0
    uid = user()
    ids = rec(client, uid, limit=2)
    post(client, uid, [{"item_id": ids[0], "dwell_ms": 50, "event_id": "m"}] * 2)
    text = client.get("/metrics").text
    assert 'sumo_feedback_events_total{outcome="duplicate"}' in text
    assert 'route="/v1/users/{user_id}/recommendations"' in text
    assert "sumo_recommendation_duration_seconds_bucket" in text
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/users/{user_id}/recommendations", "/v1/users/{user_id}/feedback",
            "/v1/search", "/v1/items/{item_id}/image"} <= set(paths)


def server_timing(response: Any) -> dict[str, float]:
    """The response's ``Server-Timing`` header as seconds by name."""
    from recommender.api.server_timing import parse

    return parse(response.headers["server-timing"])


def test_server_timing_says_what_the_engine_took_inside_the_app(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    uid = user()
    r = client.get(f"/v1/users/{uid}/recommendations?limit=3")
    spans = server_timing(r)
    assert set(spans) == {"engine", "app"} and 0 < spans["engine"] <= spans["app"]
    fb = client.post(f"/v1/users/{uid}/feedback", json={"events": [
        {"item_id": r.json()["items"][0]["id"], "dwell_ms": 900}]})
    assert 0 < server_timing(fb)["engine"] <= server_timing(fb)["app"]
    # No engine work, no engine span: only the app's own time.
    assert set(server_timing(client.get("/healthz"))) == {"app"}
    off = create_app(make_settings(tmp_path, server_timing=False), store=store)
    with TestClient(off) as quiet:
        assert "server-timing" not in quiet.get(f"/v1/users/{uid}/recommendations").headers


# --- a store that goes down and comes back ----------------------------------------------
class _Outage:
    """Mixin: every public store call raises ``StoreUnavailable`` while ``down`` is set."""

    down = False

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name not in {"down", "close"} and \
                object.__getattribute__(self, "down"):
            raise StoreUnavailable("store is down (test outage)")
        return object.__getattribute__(self, name)


class FlakyEdgeStore(_Outage, EdgeStore):
    pass


class FlakyServerStore(_Outage, ServerStore):
    pass


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_store_outage_gives_503_then_recovers_by_itself(
    kind: str, tmp_path: Path, corpus: SyntheticCorpus
) -> None:
    flaky: EdgeStore | ServerStore = (
        FlakyEdgeStore(tmp_path / "data") if kind == "edge" else FlakyServerStore(":memory:")
    )
    load_corpus(flaky, corpus)
    app = create_app(make_settings(tmp_path), store=flaky)
    with TestClient(app) as client:
        uid = user()
        ids = rec(client, uid, limit=2)
        flaky.down = True
        err = error(client.get(f"/v1/users/{uid}/recommendations"), 503, "store_unavailable")
        assert "down" in err["message"]
        r = post(client, uid, [{"item_id": ids[0], "dwell_ms": 1000, "event_id": "a"}])
        assert r.status_code == 503 and r.headers["retry-after"]
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
        flaky.down = False
        assert client.get("/readyz").status_code == 200
        assert post(client, uid, [{"item_id": ids[0], "dwell_ms": 1000, "event_id": "a"}]
                    ).json()["applied"] == 1
        assert len(rec(client, uid, limit=3)) == 3
    flaky.close()


# --- text features through a real (tiny, random-weight) open_clip model -----------------
@pytest.fixture(scope="module")
def tiny_embedder() -> Any:
    from indexer.embedder import load_embedder
    from indexer.settings import CorpusSettings

    return load_embedder(CorpusSettings(model="sumo-tiny", pretrained="none", device="cpu"))


def test_search_and_text_seed_use_the_text_encoder(tiny_embedder: Any, tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "data")
    store.ensure_collection(tiny_embedder.spec())
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((100, tiny_embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.upsert([Item(f"t{i}", vector=v, payload={"item_id": f"t{i}"})
                  for i, v in enumerate(vectors)])
    app = create_app(make_settings(tmp_path), store=store, embedder=tiny_embedder)
    with TestClient(app) as client:
        assert client.get("/readyz").json()["model"] == "loaded"
        r = client.get("/v1/search", params={"q": "a red boat", "limit": 5})
        assert r.status_code == 200, r.text
        query = tiny_embedder.encode_texts(["a red boat"])[0]
        expected = [h.id for h in store.search(query, 5)]
        assert [i["id"] for i in r.json()["items"]] == expected
        uid = user()
        assert client.post(f"/v1/users/{uid}/seed", json={"text": "a red boat"}).status_code == 200
        assert len(rec(client, uid, limit=3)) == 3
        error(client.get("/v1/search", params={"q": "x", "limit": 101}), 422, "validation_error")
    store.close()


def test_text_features_refused_for_vectors_of_another_model(
    tiny_embedder: Any, tmp_path: Path
) -> None:
    from indexer.store.base import CollectionSpec

    store = ServerStore(":memory:")
    spec = CollectionSpec(dim=tiny_embedder.dim, model="ViT-B-32/laion2b_s34b_b79k")
    store.ensure_collection(spec)
    store.upsert([Item("a", vector=_unit(1)[:1].repeat(tiny_embedder.dim) / 8.0)])
    app = create_app(make_settings(tmp_path), store=store, embedder=tiny_embedder)
    with TestClient(app) as client:
        err = error(client.get("/v1/search", params={"q": "boat"}), 409, "text_encoder_unavailable")
        assert "ViT-B-32/laion2b_s34b_b79k" in err["message"] and "sumo-tiny" in err["message"]
    store.close()


def test_text_features_start_once_a_collection_appears(tiny_embedder: Any, tmp_path: Path) -> None:
    # API replicas may start before the first index run: no restart should be needed.
    store = ServerStore(":memory:")
    app = create_app(make_settings(tmp_path), store=store, embedder=tiny_embedder)
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["store"] == "empty"
        assert client.get("/v1/users/early/recommendations").json()["items"] == []
        error(client.get("/v1/users/early"), 404, "not_found")  # nothing stored for nothing
        store.ensure_collection(tiny_embedder.spec())
        store.upsert([Item(f"t{i}", vector=tiny_embedder.encode_texts([f"thing {i}"])[0])
                      for i in range(5)])
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready" and ready["model"] == "loaded" and ready["items"] == 5
        hits = client.get("/v1/search", params={"q": "thing 3", "limit": 1}).json()["items"]
        assert hits[0]["id"] == "t3"
    store.close()
