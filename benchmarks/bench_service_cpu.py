"""CPU per request of the service, in-process, split into its layers.

``bench_load.py`` judges the service by latency on loopback, which on a shared 2-core
machine mixes three things: the service's own work, the round trip, and waiting for the
one event loop while it serves other users. This benchmark measures the first alone, as
CPU time (which hardly depends on what else runs on the machine): the app from
``create_app`` over the same cached 100k-item store, driven by ASGI calls in this process
(no socket, no uvicorn), one request at a time. Per step of a simulated user (one
recommendation, one feedback event), the CPU of:

- the whole request through the app (routing, auth, rate limit, validation, response);
- its user-repository call (``UserRepository.recommend`` / ``.feedback``: the user
  document's read, decode, encode and compare-and-set write, around the engine);
- the engine call inside it (``Engine.recommend`` / ``Engine.observe``).

Layers are timed by wrapping those methods, so each figure is CPU of this process between
entering and leaving it (``time.process_time``: every thread, Edge's included).

    python -m benchmarks.bench_service_cpu                  # 100k items, 8 users x 60 steps
    python -m benchmarks.bench_service_cpu --items 20000     # quicker
    python -m benchmarks.bench_service_cpu --server-timing-cost 3

The last prices the ``Server-Timing`` header: two apps over the same store, one sending it
and one not, run in turn (ABBA order, the policies seeded alike) in this one process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI

from benchmarks.bench_load import SEED, corpus_and_data
from indexer.store.edge import EdgeStore
from recommender.api.app import create_app
from recommender.settings import Settings
from recommender.sim.corpus import SyntheticCorpus
from recommender.sim.users import make_users

Samples = dict[str, list[float]]


async def call(app: FastAPI, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP request through the ASGI app: (status, body). Raw ASGI rather than httpx's
    ASGI transport, whose own CPU per request would land in every figure."""
    raw, _, query = path.partition("?")
    headers = [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": raw, "raw_path": raw.encode(), "root_path": "",
        "query_string": query.encode(), "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }
    pending: list[MutableMapping[str, Any]] = [
        {"type": "http.request", "body": body, "more_body": False}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # nothing more: a disconnect never comes
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def timed(samples: Samples, key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, recording the process CPU of each call under ``key``."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            samples[key].append(time.process_time() - start)
    return wrapper


async def run(app: FastAPI, corpus: SyntheticCorpus, users: int, steps: int
              ) -> tuple[Samples, float]:
    """CPU samples per kind of call, and the process CPU of the whole run."""
    samples: Samples = {k: [] for k in ("recommendation", "repository recommend",
                                        "engine recommend", "feedback",
                                        "repository feedback", "engine observe", "healthz")}
    index = {item_id: k for k, item_id in enumerate(corpus.ids)}
    run_id = os.urandom(4).hex()  # the cached store keeps users: never reuse one
    async with app.router.lifespan_context(app):
        context = app.state.sumo
        repo, engine = context.users.repo, context.engine
        repo.recommend = timed(samples, "repository recommend", repo.recommend)
        repo.feedback = timed(samples, "repository feedback", repo.feedback)
        engine.recommend = timed(samples, "engine recommend", engine.recommend)
        engine.observe = timed(samples, "engine observe", engine.observe)
        sims = make_users("broad", corpus, users, seed=SEED)
        begin = time.process_time()
        for k, sim in enumerate(sims):
            uid = f"cpu-{run_id}-{k}"
            rng = np.random.default_rng(k)
            for step in range(steps):
                start = time.process_time()
                await call(app, "GET", "/healthz")
                samples["healthz"].append(time.process_time() - start)

                start = time.process_time()
                status, body = await call(app, "GET", f"/v1/users/{uid}/recommendations?limit=1")
                samples["recommendation"].append(time.process_time() - start)
                if status != 200:
                    raise SystemExit(f"recommendation: {status} {body[:200]!r}")
                item = orjson.loads(body)["items"][0]["id"]

                dwell = sim.dwell_ms(corpus.vectors[index[item]], rng)
                event = {"item_id": item, "dwell_ms": dwell, "event_id": f"{uid}-{step}"}
                payload = orjson.dumps({"events": [event]})
                start = time.process_time()
                status, body = await call(app, "POST", f"/v1/users/{uid}/feedback", payload)
                samples["feedback"].append(time.process_time() - start)
                if status != 200:
                    raise SystemExit(f"feedback: {status} {body[:200]!r}")
            await call(app, "DELETE", f"/v1/users/{uid}")  # leave the cached store as found
        # The whole process over the run, between requests too: what the store's background
        # threads (its optimizer merging rewritten documents) take from the same cores
        # shows here, on top of this driver's own work (dwell draws, JSON, deletes).
        total = time.process_time() - begin
    return samples, total


def report(samples: Samples, total: float, warmup: int) -> None:
    def mean_ms(key: str) -> float:
        xs = samples[key][warmup:]  # the first calls: imports, caches, the page cache
        return float(np.mean(xs)) * 1000.0

    print(f"{'CPU per call (ms, mean)':<26}{'request':>9}{'repository':>12}{'engine':>9}")
    for route, repo, core_call in (("recommendation", "recommend", "recommend"),
                                   ("feedback", "feedback", "observe")):
        whole, store, core = (mean_ms(route), mean_ms(f"repository {repo}"),
                              mean_ms(f"engine {core_call}"))
        print(f"{route:<26}{whole:9.3f}{store:12.3f}{core:9.3f}   HTTP layer "
              f"{whole - store:.3f}, repository around the engine {store - core:.3f}, "
              f"request / engine {whole / core:.2f}x")
    print(f"{'GET /healthz':<26}{mean_ms('healthz'):9.3f}")
    requests = [x for k in ("healthz", "recommendation", "feedback") for x in samples[k]]
    outside = total - sum(requests)
    steps = len(samples["feedback"])
    print(f"process CPU outside the timed requests (background threads and this driver): "
          f"{outside / steps * 1e3:.3f} ms per step ({outside / total:.0%} "
          f"of the run's)")


def server_timing_cost(folder: Path, corpus: SyntheticCorpus, args: argparse.Namespace) -> None:
    """Mean CPU per call with the Server-Timing header on and off, runs in ABBA order."""
    means: dict[bool, list[list[float]]] = {True: [], False: []}
    kinds = ("recommendation", "engine recommend", "feedback", "healthz")
    with EdgeStore(folder) as store:
        for r in range(args.server_timing_cost):
            for on in (True, False) if r % 2 == 0 else (False, True):
                settings = Settings(data=folder, policy=args.policy, seed=SEED,
                                    rate_limit_user="1000000/second",
                                    server_timing=on)  # type: ignore[call-arg]
                samples, _ = asyncio.run(run(create_app(settings, store=store), corpus,
                                             args.users, args.steps))
                means[on].append([float(np.mean(samples[k][args.warmup:])) * 1e3
                                  for k in kinds])
    print(f"{'CPU per call (ms, mean)':<26}" + "".join(f"{k:>18}" for k in kinds))
    for on in (True, False):
        row = np.mean(means[on], axis=0)
        print(f"{'Server-Timing ' + ('on' if on else 'off'):<26}"
              + "".join(f"{x:18.3f}" for x in row))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--steps", type=int, default=60, help="steps per user")
    ap.add_argument("--policy", default="sumo")
    ap.add_argument("--warmup", type=int, default=20, help="first calls of each kind not counted")
    ap.add_argument("--server-timing-cost", type=int, default=0, metavar="ROUNDS",
                    help="instead: ROUNDS pairs of runs with the Server-Timing header on and off")
    args = ap.parse_args()
    corpus, folder = corpus_and_data(args.items)
    if args.server_timing_cost:
        server_timing_cost(folder, corpus, args)
        return 0
    with EdgeStore(folder) as store:
        # As `sumo serve` runs it, with limits counted (their cost is measured) but never hit.
        settings = Settings(data=folder, policy=args.policy,
                            rate_limit_user="1000000/second")  # type: ignore[call-arg]
        samples, total = asyncio.run(run(create_app(settings, store=store), corpus,
                                         args.users, args.steps))
    report(samples, total, args.warmup)
    print(f"\nitems {args.items}, policy {args.policy}, {args.users} users x {args.steps} "
          f"steps, cpu cores {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
