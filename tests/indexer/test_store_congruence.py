"""The same calls on both backends give the same answers.

EdgeStore runs a real Qdrant Edge shard in a temporary folder; ServerStore runs through
qdrant-client's local mode, which speaks the same client API as a Qdrant server. At this
size both search exactly, so ids must match and scores agree to 1e-4; each query is also
checked against a NumPy computation of Qdrant's documented formula.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Collection, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.errors import CollectionMismatch, ConflictError, NotFound, StoreUnavailable
from indexer.store.base import (
    CollectionSpec,
    FeedbackPair,
    FeedbackParams,
    Hit,
    Item,
    RecommendStrategy,
    Store,
)
from indexer.store.edge import EdgeStore
from indexer.store.server import ServerStore

DIM = 16
N = 300
SPEC = CollectionSpec(dim=DIM, model="test/none")
REPO = Path(__file__).resolve().parents[2]


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(7)
    centers = _unit(rng.standard_normal((8, DIM)))
    labels = rng.integers(0, 8, N)
    x = _unit(centers[labels] + 0.35 * rng.standard_normal((N, DIM)))
    return [f"img-{i:03d}" for i in range(N)], x


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return _unit(np.random.default_rng(11).standard_normal((6, DIM)))


def _load(store: Store, ids: list[str], x: np.ndarray) -> Store:
    store.ensure_collection(SPEC)
    store.upsert([
        Item(i, x[k] * 3.0, {"n": k, "tags": ["a", str(k % 3)]}) for k, i in enumerate(ids)
    ])
    return store


@pytest.fixture
def pair(tmp_path: Path, corpus: tuple[list[str], np.ndarray]) -> Iterator[tuple[Store, Store]]:
    ids, x = corpus
    edge = _load(EdgeStore(tmp_path / "edge"), ids, x)
    server = _load(ServerStore(":memory:"), ids, x)
    yield edge, server
    edge.close()
    server.close()


@pytest.fixture(params=["edge", "server"])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store: Store = EdgeStore(tmp_path / "e") if request.param == "edge" else ServerStore(":memory:")
    yield store
    store.close()


def _same(a: list[Hit], b: list[Hit], tol: float = 1e-4) -> None:
    assert [h.id for h in a] == [h.id for h in b]
    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=tol)


def _top(scores: np.ndarray, ids: list[str], k: int, exclude: Collection[str] = ()) -> list[str]:
    order = [int(i) for i in np.argsort(-scores, kind="stable") if ids[int(i)] not in exclude]
    return [ids[i] for i in order[:k]]


def test_point_ids_are_uuid5_of_the_item_id() -> None:
    import uuid

    from indexer.store.base import _POINT_NAMESPACE, point_id

    for item_id in ["", "a", "photo/ümlaut/漢字.jpg", "x" * 5000, "sha256:" + "0" * 64]:
        assert point_id(item_id) == str(uuid.uuid5(_POINT_NAMESPACE, item_id))


# --- schema --------------------------------------------------------------------------------
def test_spec_is_recorded_and_a_different_model_or_dim_is_refused(empty: Store) -> None:
    assert empty.spec() is None and empty.count() == 0
    assert empty.ensure_collection(SPEC) == SPEC
    assert empty.ensure_collection(SPEC) == SPEC
    with pytest.raises(CollectionMismatch, match=r"test/none.*ViT-B-32/laion"):
        empty.ensure_collection(CollectionSpec(DIM, "ViT-B-32/laion2b_s34b_b79k"))
    with pytest.raises(CollectionMismatch, match=rf"{DIM}-d.*512-d"):
        empty.ensure_collection(CollectionSpec(512, "test/none"))
    with pytest.raises(CollectionMismatch):
        empty.upsert([Item("x", np.ones(DIM + 1, np.float32))])


def test_queries_on_a_missing_collection_are_empty_and_writes_say_so(empty: Store) -> None:
    v = np.ones(DIM, np.float32)
    assert empty.search(v, 5) == [] and empty.sample(3) == [] and list(empty.scroll()) == []
    assert empty.retrieve(["a"]) == []
    with pytest.raises(NotFound, match="sumo import"):
        empty.upsert([Item("a", v)])


def test_edge_spec_items_and_documents_survive_reopen(tmp_path: Path, corpus) -> None:
    ids, x = corpus
    with _load(EdgeStore(tmp_path), ids[:50], x[:50]) as s:
        s.put_document("users", "u", {"k": 1}, expected_version=0)
    with EdgeStore(tmp_path) as s:
        assert s.spec() == SPEC and s.count() == 50
        doc = s.get_document("users", "u")
        assert doc is not None and doc.version == 1
        with pytest.raises(CollectionMismatch):
            s.ensure_collection(CollectionSpec(DIM, "other"))


# --- items ---------------------------------------------------------------------------------
def test_upsert_retrieve_scroll_count(pair, corpus) -> None:
    ids, x = corpus
    edge, server = pair
    assert edge.count() == server.count() == N
    want = [ids[5], "missing", ids[0], ids[299]]
    for s in pair:
        got = s.retrieve(want, with_vectors=True)
        assert [i.id for i in got] == [ids[5], ids[0], ids[299]]
        # Cosine collections store unit vectors: the 3x scaling is gone.
        np.testing.assert_allclose(got[0].vector, x[5], atol=1e-6)
        assert got[1].payload["n"] == 0 and got[1].payload["tags"] == ["a", "0"]
        assert got[1].payload["item_id"] == ids[0]
    a = {i.id: i.payload for i in edge.scroll(batch=64)}
    b = {i.id: i.payload for i in server.scroll(batch=64)}
    assert a == b and set(a) == set(ids)
    slim = list(edge.scroll(with_payload=False, with_vectors=True, batch=100))
    assert len(slim) == N and slim[0].payload == {} and slim[0].vector.shape == (DIM,)


def test_set_payload_and_delete(pair, corpus) -> None:
    ids, _ = corpus
    for s in pair:
        s.set_payload(ids[1], {"paths": ["/a.jpg"], "n": 99})
        p = s.retrieve([ids[1]])[0].payload
        assert p["paths"] == ["/a.jpg"] and p["n"] == 99 and p["tags"] == ["a", "1"]
        with pytest.raises(NotFound):
            s.set_payload("no-such-item", {"a": 1})
        s.delete([ids[2], ids[3], "never-there"])
        assert s.count() == N - 2 and s.retrieve([ids[2], ids[3]]) == []
        near = s.retrieve([ids[4]], with_vectors=True)[0].vector
        assert ids[2] not in {h.id for h in s.search(near, 50)}


# --- queries -------------------------------------------------------------------------------
def test_search_with_exclusions_matches_across_backends_and_numpy(pair, corpus, queries) -> None:
    ids, x = corpus
    edge, server = pair
    for q in queries:
        exclude = set(_top(x @ q, ids, 7)[::2]) | {"not-an-item"}
        a = edge.search(q, 10, exclude=exclude)
        b = server.search(q, 10, exclude=exclude)
        _same(a, b)
        assert [h.id for h in a] == _top(x @ q, ids, 10, exclude)
        np.testing.assert_allclose(
            [h.score for h in a], [float(x[ids.index(h.id)] @ q) for h in a], atol=1e-5
        )
    many_a = edge.search_many(list(queries), 5, exclude={ids[0]})
    many_b = server.search_many(list(queries), 5, exclude={ids[0]})
    for q, ha, hb in zip(queries, many_a, many_b, strict=True):
        _same(ha, hb)
        _same(ha, edge.search(q, 5, exclude={ids[0]}))
    # With vectors (one round trip for several query points): the same hits, each with the
    # item's own vector.
    for s in pair:
        many = s.search_many(list(queries), 5, exclude={ids[0]}, with_vectors=True)
        for q, hits in zip(queries, many, strict=True):
            _same(hits, s.search(q, 5, exclude={ids[0]}))
            for h in hits:
                assert h.vector is not None
                np.testing.assert_allclose(h.vector, x[ids.index(h.id)], atol=1e-5)
    hit = edge.search(queries[0], 1, with_payload=True, with_vectors=True)[0]
    assert hit.payload is not None and "tags" in hit.payload and hit.vector is not None


def _mmr_reference(x: np.ndarray, q: np.ndarray, ids: list[str], limit: int,
                   diversity: float, candidates: int, exclude: set[str]) -> list[str]:
    """Qdrant's MMR: pick argmax (1-d)·sim(q,c) − d·max_{s∈S} sim(c,s) among candidates."""
    sims = x @ q
    pool = [int(i) for i in np.argsort(-sims) if ids[int(i)] not in exclude][:candidates]
    chosen: list[int] = []
    while len(chosen) < limit:
        def score(c: int) -> float:
            red = max((float(x[c] @ x[s]) for s in chosen), default=0.0)
            return (1 - diversity) * float(sims[c]) - diversity * red
        chosen.append(max((c for c in pool if c not in chosen), key=score))
    return [ids[c] for c in chosen]


def test_mmr_same_ids_as_reference_and_scores_are_similarity(pair, corpus, queries) -> None:
    ids, x = corpus
    edge, server = pair
    for q in queries[:3]:
        exclude = set(_top(x @ q, ids, 3))
        for diversity in (0.0, 0.3, 0.8):
            a = edge.search_mmr(q, 6, diversity=diversity, candidates=40, exclude=exclude)
            b = server.search_mmr(q, 6, diversity=diversity, candidates=40, exclude=exclude)
            _same(a, b)
            assert [h.id for h in a] == _mmr_reference(x, q, ids, 6, diversity, 40, exclude)
            np.testing.assert_allclose(
                [h.score for h in a], [float(x[ids.index(h.id)] @ q) for h in a], atol=1e-5
            )
        plain = [h.id for h in edge.search(q, 6, exclude=exclude)]
        diverse = edge.search_mmr(q, 6, diversity=0.8, candidates=40, exclude=exclude)
        assert [h.id for h in edge.search_mmr(q, 6, diversity=0.0, exclude=exclude)] == plain
        assert [h.id for h in diverse] != plain
        # The sumo policy sends a plain search when it exploits one item: MMR's first pick
        # is the nearest neighbour whatever the diversity, on both backends.
        for store in pair:
            for diversity in (0.1, 0.8):
                first = store.search_mmr(q, 1, diversity=diversity, candidates=20,
                                         exclude=exclude)
                assert [h.id for h in first] == plain[:1]


@pytest.mark.parametrize("strategy", list(RecommendStrategy))
def test_recommend_each_strategy(pair, corpus, strategy: RecommendStrategy) -> None:
    ids, x = corpus
    edge, server = pair
    pos, neg = [x[0], x[10], x[20]], [x[30], x[40]]
    exclude = {ids[0], ids[10], ids[20], ids[30], ids[40]}
    a = edge.recommend(pos, neg, 8, strategy=strategy, exclude=exclude)
    b = server.recommend(pos, neg, 8, strategy=strategy, exclude=exclude)
    _same(a, b)
    assert len(a) == 8 and not exclude & {h.id for h in a}
    sp, sn = x @ np.stack(pos).T, x @ np.stack(neg).T
    if strategy is RecommendStrategy.AVERAGE_VECTOR:
        v = _unit(2 * np.mean(pos, axis=0) - np.mean(neg, axis=0))
        ref = x @ v
    elif strategy is RecommendStrategy.SUM_SCORES:
        ref = sp.sum(1) - sn.sum(1)
    else:  # best_score: best positive if it beats the best negative, else penalised
        bp, bn = sp.max(1), sn.max(1)
        ref = np.where(bp > bn, bp, -(bn * bn))
    assert [h.id for h in a] == _top(ref, ids, 8, exclude)


def test_relevance_feedback_follows_qdrants_formula(pair, corpus, queries) -> None:
    ids, x = corpus
    edge, server = pair
    target = queries[0]
    pairs = [  # several pairs, as the formula allows any number
        FeedbackPair(x[1], x[2], 0.9), FeedbackPair(x[3], x[4], 0.2),
        FeedbackPair(x[5], x[6], 0.6), FeedbackPair(x[7], x[8], 0.05),
    ]
    params = FeedbackParams(a=0.7, b=1.5, c=0.8)
    exclude = {ids[1], ids[3]}
    a = edge.relevance_feedback(target, pairs, 10, params=params, exclude=exclude)
    b = server.relevance_feedback(target, pairs, 10, params=params, exclude=exclude)
    _same(a, b)
    ref = params.a * (x @ target) + sum(
        params.c * p.confidence ** params.b * (x @ p.positive - x @ p.negative) for p in pairs
    )
    assert [h.id for h in a] == _top(ref, ids, 10, exclude)
    np.testing.assert_allclose([h.score for h in a], [ref[ids.index(h.id)] for h in a], atol=1e-4)
    for s in pair:  # no feedback yet: a·similarity to the target
        plain = s.relevance_feedback(target, [], 5, params=params)
        _same(plain, [Hit(h.id, params.a * h.score) for h in s.search(target, 5)])


def test_sample_respects_exclusion_and_size(pair, corpus) -> None:
    ids, _ = corpus
    for s in pair:
        exclude = set(ids[: N - 5])
        got = s.sample(10, exclude=exclude)
        assert sorted(h.id for h in got) == sorted(ids[N - 5:])
        many = s.sample(40, exclude=set(ids[:100]))
        assert len(many) == 40 and len({h.id for h in many}) == 40
        assert all(h.id in ids[100:] for h in many)
        assert {h.id for h in s.sample(40)} != {h.id for h in s.sample(40)}  # p(same) ~ 1e-50
        seeded = [h.id for h in s.sample(20, exclude=set(ids[:10]), seed=3)]
        assert seeded == [h.id for h in s.sample(20, exclude=set(ids[:10]), seed=3)]
        assert len(set(seeded)) == 20 and not set(seeded) & set(ids[:10])
        assert seeded != [h.id for h in s.sample(20, seed=4)]
    edge, server = pair
    # Both page through point ids in the same order, so seeded samples agree too.
    assert [h.id for h in edge.sample(15, seed=9)] == [h.id for h in server.sample(15, seed=9)]


# --- documents -----------------------------------------------------------------------------
def test_documents_compare_and_set(empty: Store) -> None:
    assert empty.get_document("users", "u1") is None
    d1 = empty.put_document("users", "u1", {"taste": [1.0, 2.5], "n": {"x": None}},
                            expected_version=0)
    assert (d1.version, d1.body) == (1, {"taste": [1.0, 2.5], "n": {"x": None}})
    with pytest.raises(ConflictError):
        empty.put_document("users", "u1", {"x": 1}, expected_version=0)
    with pytest.raises(ConflictError):
        empty.put_document("users", "u2", {"x": 1}, expected_version=3)
    assert empty.put_document("users", "u1", {"x": 2}, expected_version=1).version == 2
    with pytest.raises(ConflictError):
        empty.put_document("users", "u1", {"x": 3}, expected_version=1)
    got = empty.get_document("users", "u1")
    assert got is not None and (got.version, got.body) == (2, {"x": 2})
    empty.put_document("other", "u1", {"y": 1}, expected_version=0)
    empty.put_document("users", "u3", {"z": 1}, expected_version=0)
    assert sorted((d.key, d.version) for d in empty.scroll_documents("users", batch=1)) == [
        ("u1", 2), ("u3", 1)]
    assert empty.delete_document("users", "u1") and not empty.delete_document("users", "u1")
    assert empty.get_document("users", "u1") is None
    assert empty.put_document("users", "u1", {"again": True}, expected_version=0).version == 1
    assert empty.get_document("other", "u1").body == {"y": 1}  # type: ignore[union-attr]


def test_concurrent_increments_lose_nothing(empty: Store) -> None:
    empty.put_document("c", "n", {"n": 0}, expected_version=0)
    conflicts = []

    def bump(times: int) -> None:
        for _ in range(times):
            while True:
                doc = empty.get_document("c", "n")
                assert doc is not None
                try:
                    empty.put_document("c", "n", {"n": doc.body["n"] + 1},
                                       expected_version=doc.version)
                    break
                except ConflictError:
                    conflicts.append(1)

    threads = [threading.Thread(target=bump, args=(15,)) for _ in range(6)]
    # Switch threads every microsecond: a check-then-write that is not atomic loses updates
    # every run instead of once in a while (qdrant-client's local mode did, before the
    # server store serialised document access in local mode).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    doc = empty.get_document("c", "n")
    assert doc is not None and doc.body["n"] == 90 and doc.version == 91


def test_update_document_retries_a_lost_race_and_never_gives_up_silently(empty: Store) -> None:
    def add(n: int):  # type: ignore[no-untyped-def]
        return lambda doc: (n, {"n": (doc.body["n"] if doc else 0) + n})

    assert empty.update_document("c", "k", add(2)) == 2  # absent: created at version 1
    calls = []

    def raced(doc):  # type: ignore[no-untyped-def]
        # Another writer gets in between our read and our write, on the first two tries.
        calls.append(doc.version)
        if len(calls) <= 2:
            empty.put_document("c", "k", {"n": doc.body["n"] + 10},
                               expected_version=doc.version)
        return "ok", {"n": doc.body["n"] + 1}

    assert empty.update_document("c", "k", raced) == "ok"
    assert calls == [1, 2, 3]  # re-read after each lost race, the change applied afresh
    doc = empty.get_document("c", "k")
    assert doc is not None and (doc.version, doc.body) == (4, {"n": 23})
    # A clean change writes nothing.
    assert empty.update_document("c", "k", lambda d: ("same", None)) == "same"
    assert empty.get_document("c", "k").version == 4  # type: ignore[union-attr]

    def always_raced(doc):  # type: ignore[no-untyped-def]
        empty.put_document("c", "k", {"n": 0}, expected_version=doc.version)
        return None, {"n": -1}

    with pytest.raises(ConflictError, match="lost 3 concurrent updates"):
        empty.update_document("c", "k", always_raced, attempts=3)


def test_in_process_says_where_calls_run(empty: Store) -> None:
    # Edge runs in this process (callers may call it from the event loop); a server store
    # waits on the network, even in qdrant-client's local mode (its calls hold a lock).
    assert empty.in_process is isinstance(empty, EdgeStore)


# --- failure modes -------------------------------------------------------------------------
def test_edge_folder_held_by_another_process_is_unavailable(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import sys, time
        from indexer.store.edge import EdgeStore
        s = EdgeStore({str(tmp_path)!r})
        print("open", flush=True)
        sys.stdin.readline()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        held = rf"in use by another process \(pid {holder.pid}\)"
        with pytest.raises(StoreUnavailable, match=held):
            EdgeStore(tmp_path)
    finally:
        holder.communicate("\n", timeout=30)
    with EdgeStore(tmp_path) as s:  # released when the holder exits
        assert s.count() == 0


def test_edge_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from indexer.store.base import CollectionSpec, Item
        from indexer.store.edge import EdgeStore
        s = EdgeStore({str(tmp_path)!r})
        s.ensure_collection(CollectionSpec(4, "m"))
        for i in range(200):
            s.upsert([Item(f"i{{i}}", np.array([1, i, 0, 1], np.float32), {{"i": i}})])
        s.delete(["i7"])
        s.set_payload("i5", {{"late": True}})
        s.put_document("users", "u", {{"v": 1}}, expected_version=0)
        s.put_document("users", "u", {{"v": 2}}, expected_version=1)
        print("acked", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert run.stdout.strip() == "acked" and run.returncode == -signal.SIGKILL
    with EdgeStore(tmp_path) as s:
        assert s.count() == 199 and s.retrieve(["i7"]) == []
        assert s.retrieve(["i5"])[0].payload["late"] is True
        assert s.get_document("users", "u").body == {"v": 2}  # type: ignore[union-attr]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_down_is_store_unavailable_and_nothing_broken_is_cached() -> None:
    port = _free_port()
    store = ServerStore(f"http://127.0.0.1:{port}", timeout=2)  # nothing listening yet
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.count()

    seen: list[str] = []

    class Overloaded(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(503)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", port), Overloaded)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        # The same store object reaches the server as soon as it listens: no stale state.
        with pytest.raises(StoreUnavailable, match="503"):
            store.count()
        with pytest.raises(StoreUnavailable, match="503"):
            store.get_document("users", "u")
        assert len(seen) >= 2
    finally:
        httpd.shutdown()
        httpd.server_close()
        store.close()


def test_local_mode_folder_in_use_is_unavailable(tmp_path: Path) -> None:
    first = ServerStore(f"path:{tmp_path}")
    try:
        with pytest.raises(StoreUnavailable):
            ServerStore(f"path:{tmp_path}")
    finally:
        first.close()


@pytest.mark.skipif(os.environ.get("SUMO_QDRANT_TEST_URL") is None,
                    reason="set SUMO_QDRANT_TEST_URL to also run against a real Qdrant server")
def test_real_server_roundtrip(corpus) -> None:
    ids, x = corpus
    url, name = os.environ["SUMO_QDRANT_TEST_URL"], "sumo_test_congruence"
    store = ServerStore(url, collection=name)
    try:
        if store.spec() is not None:
            store.client.delete_collection(store.collection)
            store.client.delete_collection(store.documents)
            store = ServerStore(url, collection=name)
        _load(store, ids, x)
        assert store.count() == N
        assert store.search(x[0], 1)[0].id == ids[0]
    finally:
        store.close()


def test_exact_edge_search_is_the_true_nearest_at_a_size_the_graph_serves(tmp_path: Path) -> None:
    # 6,000 random 512-d vectors: over the shard's full-scan threshold, so a plain store
    # walks the HNSW graph (approximate, and built at random); ``exact`` compares them all,
    # whether the store is built for it or one call asks.
    rng = np.random.default_rng(3)
    x = _unit(rng.standard_normal((6000, 512)))
    ids = [f"v{i}" for i in range(len(x))]
    queries = list(_unit(rng.standard_normal((20, 512))))
    truth = [_top(x @ q, ids, 10, {"v0"}) for q in queries]

    def found(store: Store, **kw: object) -> list[list[str]]:
        hits = store.search_many(queries, 10, exclude={"v0"}, **kw)  # type: ignore[arg-type]
        return [[h.id for h in r] for r in hits]

    def recall(got: list[list[str]]) -> float:
        return float(np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth, strict=True)]))

    for exact, name in ((True, "exact"), (False, "graph")):
        with EdgeStore(tmp_path / name, exact=exact) as store:
            store.ensure_collection(CollectionSpec(dim=512, model="test/none"))
            store.upsert([Item(i, v) for i, v in zip(ids, x, strict=True)])
            store.optimize()
            if exact:  # a narrow beam asked of an exact store changes nothing
                assert found(store) == found(store, ef=16) == truth
                continue
            assert found(store, exact=True) == truth
            assert [[h.id for h in store.search(q, 10, exclude={"v0"}, exact=True)]
                    for q in queries] == truth
            # The beam reaches the graph: a narrow one finds less than the default (which
            # misses some here, so the exact answers above were not the graph's anyway),
            # and one beam per query is each query searched with its own.
            assert recall(found(store, ef=16)) < recall(found(store)) < 1.0
            mixed = found(store, ef=[16 if k % 2 else None for k in range(len(queries))])
            assert mixed == [a if k % 2 else b for k, (a, b) in
                             enumerate(zip(found(store, ef=16), found(store), strict=True))]


def test_edge_keeps_an_int8_copy_and_a_store_made_without_one_gains_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    import indexer.store.edge as edge
    from indexer.store import common

    def config(root: Path) -> dict[str, Any]:
        cfg: dict[str, Any] = json.loads(
            (root / "sumo_items" / "items" / "edge_config.json").read_text())
        return cfg

    def copy(root: Path) -> object:
        return config(root).get("quantization_config")

    def beam(root: Path) -> object:
        return config(root)["hnsw_config"]["ef_construct"]

    rng = np.random.default_rng(5)
    x = _unit(rng.standard_normal((6000, 64)))
    ids = [f"v{i}" for i in range(len(x))]
    queries = list(_unit(rng.standard_normal((10, 64))))
    truth = [_top(x @ q, ids, 10) for q in queries]
    with EdgeStore(tmp_path / "new") as store:
        store.ensure_collection(CollectionSpec(dim=64, model="test/none"))
    assert copy(tmp_path / "new") == {"scalar": {"type": "int8", "quantile": common.QUANTILE,
                                                 "always_ram": True}}
    assert beam(tmp_path / "new") == common.HNSW_EF_CONSTRUCT
    with monkeypatch.context() as m:  # a store as made before the copy existed
        m.setattr(edge, "_QUANTIZATION", None)
        m.setattr(common, "HNSW_EF_CONSTRUCT", 64)
        with EdgeStore(tmp_path / "old") as store:
            store.ensure_collection(CollectionSpec(dim=64, model="test/none"))
            store.upsert([Item(i, v) for i, v in zip(ids, x, strict=True)])
            store.optimize()
        assert copy(tmp_path / "old") is None and beam(tmp_path / "old") == 64
    with EdgeStore(tmp_path / "old") as store:
        assert copy(tmp_path / "old") == copy(tmp_path / "new")
        assert beam(tmp_path / "old") == common.HNSW_EF_CONSTRUCT
        store.optimize()  # builds the copy
        got = [[h.id for h in r] for r in store.search_many(queries, 10, ef=512)]
        assert np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth, strict=True)]) > 0.9
        assert [[h.id for h in r] for r in store.search_many(queries, 10, exact=True)] == truth


def test_search_beams_are_congruent_and_checked(pair, queries) -> None:
    # At this size both backends search exactly whatever the beam; a list of beams must
    # have one per query.
    edge, server = pair
    efs = [None, 512, 16, None, 64, 1024]
    for ef in (efs, 512):
        for a, b in zip(edge.search_many(list(queries), 5, ef=ef),
                        server.search_many(list(queries), 5, ef=ef, exact=True), strict=True):
            _same(a, b)
    for s in pair:
        with pytest.raises(ValueError, match="search beams"):
            s.search_many(list(queries), 5, ef=[None, 512])


def test_only_a_store_that_sees_every_write_has_a_revision(pair, corpus) -> None:
    ids, x = corpus
    edge, server = pair
    assert server.revision is None
    before = edge.revision
    edge.upsert([Item("new", x[0])])
    after_upsert = edge.revision
    edge.delete(["new"])
    assert len({before, after_upsert, edge.revision}) == 3
