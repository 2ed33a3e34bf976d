"""How big one user's stored state is, per policy: the figure behind the capacity arithmetic
in deploy/README.md (users collection size for 1M users).

A simulated user (recommender.sim) scrolls a 512-d synthetic corpus through the real Engine
for N events per policy; the stored document is measured exactly as the service writes it
(``recommender.users.document.pack``: the state's JSON plus the idempotency memory of
event-id digests).

    python -m benchmarks.bench_user_state            # ~20 s
    python -m benchmarks.bench_user_state --events 1000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import uuid
from typing import Any

import numpy as np

from indexer.store.edge import EdgeStore
from recommender.engine import Engine, Observation
from recommender.sim.corpus import load_corpus, make_corpus
from recommender.sim.users import make_users
from recommender.users import EVENT_MEMORY, event_digest
from recommender.users.document import pack


def size(obj: Any) -> int:
    return len(json.dumps(obj, separators=(",", ":")).encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--events", type=int, default=300, help="feedback events per user")
    args = ap.parse_args()

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
            print(f"{name:<22}{size(body):>19}{size(seen) / len(seen):>11.1f}"
                  f"{size(digests):>13}{size(doc):>14}")


if __name__ == "__main__":
    main()
