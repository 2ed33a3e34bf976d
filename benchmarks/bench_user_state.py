"""How big one user's stored state is, per policy and per number of seen items: the
figures behind the capacity arithmetic in deploy/README.md (users collection size for 1M
users) and the storage bounds in docs/store.md.

1. Per policy: a simulated user (recommender.sim) scrolls a 512-d synthetic corpus through
   the real Engine for N events; the stored document is measured exactly as the service
   writes it (``recommender.users.document.pack``: the state's JSON plus the idempotency
   memory of event-id digests).
2. Per seen count (1k, 10k, 20k by default): ``--users`` users of the default policy, each
   with that many seen items (32-hex ids, as the indexer's), are written to a real Qdrant
   Edge store holding the items; then every user posts ``--posts`` feedback events one at
   a time through ``UserRepository`` (in-process: item lookup, engine update, document
   encode, compare-and-set write) and asks for ``--posts`` recommendations. Reported: the
   document (= bytes written per event), the same state in the previous format (seen as a
   JSON list), bytes on disk per user (the final documents written to a fresh documents
   shard, flushed), posts/s and recommendations/s (one thread), and the false-hide rate of
   the seen fingerprints (the share of 100,000 never-seen ids that test as seen).

3. ``--burst S``: one user posting from 8 threads for S seconds on a 20,000-item store
   (in-process, through ``UserRepository``): the documents folder's largest size during
   the burst and its size after a clean close, and posts/s in the first and last fifth.

    python -m benchmarks.bench_user_state            # ~3 min
    python -m benchmarks.bench_user_state --events 1000 --seen 20000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from indexer.errors import ConflictError
from indexer.store.edge import DOCUMENTS_DIR, EdgeStore
from recommender.engine import Engine, Observation
from recommender.sim.corpus import SyntheticCorpus, load_corpus, make_corpus
from recommender.sim.users import make_users
from recommender.users import EVENT_MEMORY, NAMESPACE, UserRepository, event_digest
from recommender.users.document import pack


def size(obj: Any) -> int:
    return len(json.dumps(obj, separators=(",", ":")).encode())


def disk(folder: Path) -> int:
    """Bytes allocated on disk (Edge's files are sparse: their length says little)."""
    return sum(f.stat().st_blocks * 512 for f in folder.rglob("*") if f.is_file())


@dataclass
class Event:
    item_id: str
    dwell_ms: float
    event_id: str | None
    ts: float | datetime | None = None


def kept_per_user(folder: Path, docs: dict[str, Any]) -> float:
    """Bytes on disk per user: these documents written once to a fresh documents shard."""
    with EdgeStore(folder) as store:
        store.flush()
        segments = folder / "sumo_items" / DOCUMENTS_DIR / "segments"
        before = disk(segments)
        for uid, doc in docs.items():
            store.put_document(NAMESPACE, uid, doc.body, expected_version=0)
        store.flush()
        after = disk(segments)
    shutil.rmtree(folder)
    return (after - before) / len(docs)


def hex_corpus(items: int) -> SyntheticCorpus:
    """A synthetic corpus whose ids are 32-hex, like the indexer's content hashes."""
    corpus = make_corpus(items, dim=512, clusters=50, seed=1)
    corpus.ids = [hashlib.blake2b(i.encode(), digest_size=16).hexdigest() for i in corpus.ids]
    corpus._index = {}
    return corpus


def seen_growth(levels: list[int], users: int, posts: int) -> None:
    corpus = hex_corpus(max(levels) + 2000)
    rng = np.random.default_rng(0)
    others = [rng.bytes(16).hex() for _ in range(100_000)]  # never seen by anyone
    print(f"\nseen growth: {users} users per row (policy sumo), {len(corpus.ids)} items, "
          f"{posts} posts and {posts} recommendations per user, one thread, in-process")
    print(f"{'seen':>6}{'doc B':>9}{'format-1 B':>12}{'disk B/user':>13}{'posts/s':>9}"
          f"{'recs/s':>8}{'false-hide':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        with EdgeStore(base) as store:
            load_corpus(store, corpus)
            Engine(store, seed=0).recommend(Engine(store).new_state("warm"), 1)  # region map
        for level in levels:
            folder = Path(tmp) / f"seen-{level}"
            shutil.copytree(base, folder)
            with EdgeStore(folder) as store:
                engine = Engine(store, seed=0)
                repo = UserRepository(store, engine)
                uids = [f"seen{level}-{u}" for u in range(users)]
                old_sizes = []
                to_post: dict[str, list[str]] = {}
                for u, uid in enumerate(uids):
                    state = engine.new_state(uid)
                    for _ in range(20):  # some real policy state
                        hit = engine.recommend(state, 1)[0]
                        v = corpus.vectors[corpus.index(hit.id)]
                        engine.observe(state, [Observation(hit.id, v, float(rng.lognormal(7, 1)))])
                    order = np.random.default_rng(u).permutation(len(corpus.ids))[:level]
                    seen_ids = [corpus.ids[i] for i in order]
                    state.mark_seen(seen_ids[: level - len(state.seen)])
                    fresh = (corpus.ids[i] for i in np.random.default_rng(u + 1).permutation(
                        len(corpus.ids)))
                    to_post[uid] = [i for _, i in zip(range(posts), (
                        i for i in fresh if i not in state.seen), strict=False)]
                    digests = [event_digest(str(uuid.uuid4())) for _ in range(EVENT_MEMORY)]
                    store.put_document(NAMESPACE, uid, pack(state, digests), expected_version=0)
                    v1 = {**state.to_dict(), "format": 1, "seen": seen_ids}
                    old_sizes.append(len(orjson.dumps({"state": v1, "event_ids": digests})))
                t = time.perf_counter()
                for k in range(posts):
                    for uid in uids:
                        repo.feedback(uid, [Event(to_post[uid][k], float(rng.lognormal(7, 1)),
                                                  f"{uid}-{k}")])
                post_s = time.perf_counter() - t
                t = time.perf_counter()
                for _ in range(posts):
                    for uid in uids:
                        repo.recommend(uid, 1, None)
                rec_s = time.perf_counter() - t
                bodies = {uid: store.get_document(NAMESPACE, uid) for uid in uids}
                record = repo.load(uids[0])
                assert record is not None
                doc = len(record.body()["record"])
                # (An exact seen list, as a version before the fingerprints kept: none.)
                exact = getattr(record.state.seen, "old_count", None) is None
                hidden = 0.0 if exact else sum(i in record.state.seen for i in others) / len(
                    others)
                per_user = kept_per_user(Path(tmp) / f"kept-{level}", bodies)
                print(f"{level:>6}{doc:>9}{int(np.mean(old_sizes)):>12}{per_user:>13.0f}"
                      f"{posts * users / post_s:>9.0f}{posts * users / rec_s:>8.0f}"
                      f"{hidden:>12.1e}")
            shutil.rmtree(folder)


def burst(seconds: float, threads: int = 8, items: int = 20_000) -> None:
    import threading

    corpus = hex_corpus(items)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        docs = folder / "sumo_items" / DOCUMENTS_DIR
        peak = 0
        stamps: list[float] = []
        with EdgeStore(folder) as store:
            load_corpus(store, corpus)
            engine = Engine(store, seed=0)
            engine.recommend(engine.new_state("warm"), 1)  # builds the region map
            repo = UserRepository(store, engine)
            order = iter(rng.permutation(items).tolist())
            dwell = rng.lognormal(7, 1, items).tolist()
            lock = threading.Lock()
            start = time.perf_counter()
            deadline = start + seconds

            def post() -> None:
                while time.perf_counter() < deadline:
                    with lock:
                        k = next(order, None)
                    if k is None:
                        return
                    try:
                        repo.feedback("heavy", [Event(corpus.ids[k], dwell[k], f"e{k}")])
                    except ConflictError:  # lost 64 races in a row: the client would retry
                        continue
                    stamps.append(time.perf_counter() - start)

            workers = [threading.Thread(target=post) for _ in range(threads)]
            for w in workers:
                w.start()
            while any(w.is_alive() for w in workers):
                peak = max(peak, disk(docs))
                time.sleep(0.5)
            record = repo.load("heavy")
            seen = len(record.state.seen) if record else 0
        closed = disk(docs)
    fifth = seconds / 5
    first = sum(t < fifth for t in stamps) / fifth
    last = sum(t >= seconds - fifth for t in stamps) / fifth
    print(f"\nburst: one user, {threads} threads, {seconds:.0f} s, {items} items: "
          f"{len(stamps)} posts, {seen} seen; posts/s {first:.0f} in the first fifth, "
          f"{last:.0f} in the last; documents folder at most {peak / 1e6:.0f} MB, "
          f"{closed / 1e6:.0f} MB after a clean close")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--events", type=int, default=300, help="feedback events per user")
    ap.add_argument("--seen", default="1000,10000,20000",
                    help="seen counts for the growth table ('' to skip it)")
    ap.add_argument("--users", type=int, default=16, help="users per seen count")
    ap.add_argument("--posts", type=int, default=20, help="posts (and recommendations) per user")
    ap.add_argument("--burst", type=float, default=0.0,
                    help="seconds of one user posting from 8 threads (0: skip)")
    args = ap.parse_args()
    if args.burst:
        burst(args.burst)

    corpus = make_corpus(args.items, dim=512, clusters=50, seed=0)
    user = make_users("multi", corpus, 1, seed=0)[0]
    with tempfile.TemporaryDirectory() as tmp, EdgeStore(tmp) as store:
        load_corpus(store, corpus)
        engine = Engine(store, seed=0)
        print(f"user state after {args.events} events, 512-d vectors, {args.items} items")
        print(f"{'policy':<22}{'state (no seen) B':>19}{'seen B/id':>11}"
              f"{'event ids B':>13}{'stored doc B':>14}")
        for name in engine.policy_names:
            rng = np.random.default_rng(1)
            state = engine.new_state(f"user-{name}")
            for _ in range(args.events):
                hit = engine.recommend(state, 1, name)[0]
                vector = corpus.vectors[corpus.index(hit.id)]
                dwell = user.dwell_ms(vector, rng, t=state.events)
                engine.observe(state, [Observation(hit.id, vector, dwell)])
            body = state.to_dict()
            seen = body.pop("seen")
            digests = [event_digest(str(uuid.uuid4())) for _ in range(EVENT_MEMORY)]
            doc = pack(state, digests)
            print(f"{name:<22}{size(body):>19}{size(seen) / len(state.seen):>11.1f}"
                  f"{len(''.join(digests)):>13}{size(doc):>14}")
    if args.seen:
        seen_growth([int(x) for x in args.seen.split(",")], args.users, args.posts)


if __name__ == "__main__":
    main()
