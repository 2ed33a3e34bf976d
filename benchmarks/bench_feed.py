"""Taste capture as clients get it: the benchmark's simulated users driving the engine the
way a client does, in-process or over HTTP.

The capture benchmark (``sumo bench recommend``) asks for a batch, shows all of it, and
feeds every dwell back before it asks again. A client that keeps images ready cannot: the
feed page (``recommender/web/feed.js``) asks for ``PAGE`` items at a time while
``PREFETCH_AT`` of them are still unseen, so those are shown before their dwells can count,
and sends dwells in groups of ``BATCH`` (or ``BATCH_MS`` after the first waits), except
that with ``FLUSH_MS`` above 0 it sends what waits before it asks for a page. This runs
the same users both ways and reports what each gets:

- ``batchN``: the benchmark's own protocol with batches of N;
- ``feed``: the feed page's, its constants read from ``feed.js`` (a simulated clock
  advances by each dwell, so the ``BATCH_MS`` timer fires when it would in a browser);
  ``feed:PAGE=8;PREFETCH_AT=3;FLUSH_MS=0`` the page with some constants changed.

Clients: ``engine`` calls ``Engine.recommend`` / ``Engine.observe`` in this process over
a store built from the world's corpus (``--exact`` searches exactly, so two protocols
differ only by the protocol); ``http`` writes the corpus to ``.npy`` + ids, loads it with
``sumo import`` and drives ``sumo serve`` on loopback through ``/v1/users/{id}/...``, the
public surface (it checks that what the service does is what the benchmark measures).

Capture is the benchmark's, against the same in-process oracle runs (``recommender.sim``):

    python -m benchmarks.bench_feed --world default --items 10000 --users 16 --exact
    python -m benchmarks.bench_feed --client http --protocols batch5,feed
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from indexer.store.edge import EdgeStore
from recommender.engine import Engine
from recommender.sim.clients import (
    Client,
    EngineClient,
    HttpClient,
    UnknownProtocol,
    feed_constants,
    protocol,
    run_protocol,
)
from recommender.sim.corpus import SyntheticCorpus, load_corpus
from recommender.sim.harness import user_seed
from recommender.sim.runner import capture, run_user
from recommender.sim.worlds import world
from tests.serve_process import ServeProcess

Clients = Callable[[str, str, int], Client]  # (protocol, taste, user) -> a fresh session


def imported_folder(corpus: SyntheticCorpus, work: Path) -> Path:
    """The corpus loaded into a fresh data folder by ``sumo import``, as a user would."""
    np.save(work / "vectors.npy", corpus.vectors)
    (work / "ids.txt").write_text("\n".join(corpus.ids) + "\n")
    data = work / "data"
    done = subprocess.run([sys.executable, "-m", "sumo", "import", str(work / "vectors.npy"),
                           "--ids", str(work / "ids.txt"), "--data", str(data)],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"sumo import failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return data


@contextmanager
def served(data: Path, policy: str, log: Path) -> Iterator[Clients]:
    """``sumo serve`` over ``data``; each session a new user of its user routes."""
    server = ServeProcess(data, log, env={"SUMO_POLICY": policy,
                                          "SUMO_RATE_LIMIT_USER": "1000000/second"},
                          ready_s=300)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            yield lambda name, taste, i: HttpClient(http, f"{name}-{taste}-{i}")
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", default="default", help="CORPUS:DWELL[:TASTE] or a preset")
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=16, help="per taste")
    ap.add_argument("--models", default=None, help="comma-separated tastes (default: all)")
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policy", default="sumo")
    ap.add_argument("--client", choices=("engine", "engine-stored", "http"), default="engine",
                    help="engine-stored: the state goes through the service's user document "
                    "after every call")
    ap.add_argument("--protocols", default="batch5,feed",
                    help="comma-separated: batchN (the benchmark's, N per request), feed, "
                    "feed:PAGE=8;PREFETCH_AT=3 (the page with constants changed)")
    ap.add_argument("--exact", action="store_true",
                    help="engine client: exact search (runs repeat exactly)")
    args = ap.parse_args()
    try:
        protocols = {name: protocol(name) for name in args.protocols.split(",")}
    except UnknownProtocol as exc:
        ap.error(str(exc))

    t0 = time.perf_counter()
    w = world(args.world)
    corpus = w.make_corpus(args.items, args.seed)
    models = args.models.split(",") if args.models else list(w.tastes)
    users = {m: w.make_users(m, corpus, args.users, seed=args.seed) for m in models}
    print(f"world {args.world}, {args.items} items, {args.users} users per taste, "
          f"T={args.horizon}, policy {args.policy}, client {args.client}"
          f"{', exact search' if args.exact else ''}; feed.js: {feed_constants()}", flush=True)
    caps: dict[str, dict[str, list[float]]] = {p: {m: [] for m in models} for p in protocols}
    firsts: dict[str, dict[str, list[int]]] = {p: {m: [] for m in models} for p in protocols}

    def run_all(clients: Clients, oracle: dict[tuple[str, int], np.ndarray]) -> None:
        for name, session in protocols.items():
            for m in models:
                for i, user in enumerate(users[m]):
                    rng = np.random.default_rng([user_seed(args.seed, i), i, 7])
                    got = run_protocol(clients(name, m, i), session, corpus, user, rng,
                                       args.horizon)
                    caps[name][m].append(capture(got.expected, got.baseline, oracle[m, i]))
                    firsts[name][m].append(got.first_like or args.horizon + 1)

    with tempfile.TemporaryDirectory(prefix="sumo-feed-") as tmp:
        work = Path(tmp)
        http = args.client == "http"
        folder = imported_folder(corpus, work) if http else work / "store"
        with EdgeStore(folder, exact=args.exact) as store:
            if not http:
                load_corpus(store, corpus)
            # What a policy that knows the hidden taste earns: capture's denominator.
            oracle = {(m, i): run_user(store, corpus, user, i, "oracle", horizon=args.horizon,
                                       batch=5, seed=user_seed(args.seed, i)).expected
                      for m in models for i, user in enumerate(users[m])}
            if not http:
                run_all(lambda name, m, i: EngineClient(
                    Engine(store, default_policy=args.policy, seed=user_seed(args.seed, i)),
                    corpus, f"{m}-{i}", stored=args.client == "engine-stored"), oracle)
        if http:
            with served(folder, args.policy, work / "serve.log") as clients:
                run_all(clients, oracle)
    report(caps, firsts, models)
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


def report(caps: dict[str, dict[str, list[float]]], firsts: dict[str, dict[str, list[int]]],
           models: Sequence[str]) -> None:
    """Per protocol and taste: mean capture (median first like); then the mean over tastes
    and its difference from the first protocol's, user by user (the same users and dwell
    draws: with the engine client and exact search, the protocol is the only difference)."""
    width = max(14, *(len(m) for m in models))
    names = list(caps)
    nw = max(10, *(len(n) for n in names))
    print(f"\n{'protocol':<{nw}} " + "  ".join(f"{m:>{width}}" for m in models)
          + f"  {'mean (se)':>14}  vs {names[0]} (se)")
    first = np.array([caps[names[0]][m] for m in models])
    for name in names:
        cells = [f"{np.mean(caps[name][m]):.3f} ({np.median(firsts[name][m]):>3.0f})"
                 for m in models]
        got = np.array([caps[name][m] for m in models])  # taste x user
        diff = got - first
        print(f"{name:<{nw}} " + "  ".join(c.rjust(width) for c in cells)
              + f"  {got.mean():.3f} ({_se(got):.3f})".rjust(16)
              + f"  {diff.mean():+.3f} ({_se(diff):.3f})")
    print("cells: mean capture at T (median impressions to the first liked item)")


def _se(values: np.ndarray) -> float:
    """Standard error of the mean over tastes of per-taste means (rows: tastes)."""
    n = values.shape[1]
    if n < 2:
        return 0.0
    return float(np.sqrt((values.var(axis=1, ddof=1) / n).sum()) / values.shape[0])


if __name__ == "__main__":
    raise SystemExit(main())
