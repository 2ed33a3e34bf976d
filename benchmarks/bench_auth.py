"""What credentials and rate limits cost per request.

CPU time, in one process: each piece alone (a key check, a token check, a rate-limit count),
then whole requests (``GET /v1/users/{id}`` of a stored user, over a small in-memory
store) through the app with nothing configured and limits off (the baseline) against the
app with tokens and the default limits, alternating rounds so that machine noise hits
both alike. Reports the difference per request and the ratio to the baseline. The rate-limit
count is also timed on the wall clock with the counts spaced out as requests arrive.

    python benchmarks/bench_auth.py            # ~1 minute
    python benchmarks/bench_auth.py --requests 500 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from indexer.store.server import ServerStore
from recommender.api import tokens
from recommender.api.app import create_app
from recommender.api.ratelimit import RateLimiter
from recommender.api.security import Access, Caller, Role, authorize
from recommender.api.tokens import mint
from recommender.settings import Settings
from recommender.sim.corpus import load_corpus, make_corpus

SECRET = "b" * 64
PACE_S = 0.012  # ~80 requests/s for one process: counts arrive one by one


def per_call_us(fn: Any, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def settings(folder: Path, **extra: Any) -> Settings:
    base: dict[str, Any] = {"data": folder, "qdrant_url": None, "api_key": None,
                            "admin_key": None, "token_secret": None,
                            "rate_limit_user": "", "rate_limit_key": ""}
    return Settings(**(base | extra))


def pieces(n: int) -> None:
    keyed = Settings(api_key="k" * 32, token_secret=SECRET)
    token = mint(keyed, "alice")
    key_us = per_call_us(lambda: authorize(keyed, "k" * 32, Access.OWNER, "alice"), n)
    def first_time() -> None:
        tokens._checked.cache_clear()  # as for a token never seen before
        authorize(keyed, token, Access.OWNER, "alice")

    first_us = per_call_us(first_time, n)
    token_us = per_call_us(lambda: authorize(keyed, token, Access.OWNER, "alice"), n)
    limiter = RateLimiter("1000000/second", "1000000/second", "memory://")
    caller = Caller(Role.USER, "alice")

    async def counted() -> float:
        start = time.process_time()
        for _ in range(n):
            await limiter.check(caller, "alice")
        return (time.process_time() - start) / n * 1e6

    async def paced(calls: int) -> float:
        """Wall time per count when counts come apart, as a service's requests do: a cost
        that is waiting, not CPU (a thread started and waited for), shows here only."""
        times = []
        for _ in range(calls):
            await asyncio.sleep(PACE_S)
            start = time.perf_counter()
            await limiter.check(caller, "alice")
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e6

    limit_us = asyncio.run(counted())
    paced_us = asyncio.run(paced(min(n, 300)))
    print(f"service key check {key_us:5.1f} us   token check: first {first_us:5.1f} us, "
          f"remembered {token_us:5.1f} us   per-user count {limit_us:5.1f} us   "
          f"(CPU, each alone, {n} calls)")
    print(f"per-user count one every {PACE_S * 1e3:.0f} ms: {paced_us:5.1f} us "
          f"(wall time, median of {min(n, 300)})")


async def requests_us(client: httpx.AsyncClient, headers: dict[str, str], n: int) -> float:
    """CPU time of this process per request (all threads): on a shared machine, wall time
    mostly measures the neighbours."""
    start = time.process_time()
    for _ in range(n):
        r = await client.get("/v1/users/alice", headers=headers)
        assert r.status_code == 200, r.text
    return (time.process_time() - start) / n * 1e6


async def whole_requests(plain: FastAPI, guarded: FastAPI, token: str, n: int,
                         rounds: int) -> tuple[list[float], list[float]]:
    """Both apps started in this event loop and called in-process (ASGI, no sockets)."""
    async with plain.router.lifespan_context(plain), guarded.router.lifespan_context(guarded):
        a = httpx.AsyncClient(transport=httpx.ASGITransport(plain), base_url="http://t")
        b = httpx.AsyncClient(transport=httpx.ASGITransport(guarded), base_url="http://t")
        headers = {"authorization": f"Bearer {token}"}
        await requests_us(a, {}, n // 5)  # warm both
        await requests_us(b, headers, n // 5)
        base, with_auth = [], []
        for _ in range(rounds):
            base.append(await requests_us(a, {}, n))
            with_auth.append(await requests_us(b, headers, n))
        return base, with_auth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000, help="requests per round (1000)")
    ap.add_argument("--rounds", type=int, default=9, help="alternating rounds (9)")
    args = ap.parse_args()
    pieces(args.requests * 5)

    store = ServerStore(":memory:")
    corpus = make_corpus(200, dim=16, clusters=4, seed=1)
    load_corpus(store, corpus)
    tmp = Path(tempfile.mkdtemp())
    plain = create_app(settings(tmp / "a"), store=store)
    # Limits high enough that the timed loop measures counting, never a 429.
    guarded_settings = settings(tmp / "b", token_secret=SECRET,
                                rate_limit_user="1000000/second", rate_limit_key="2000/second")
    guarded = create_app(guarded_settings, store=store)
    plain_client = TestClient(plain)
    with plain_client:
        plain_client.post("/v1/users/alice/seed", json={"item_ids": [corpus.ids[0]]})
    base, with_auth = asyncio.run(whole_requests(
        plain, guarded, mint(guarded_settings, "alice"), args.requests, args.rounds))
    store.close()
    b0, b1 = statistics.median(base), statistics.median(with_auth)
    print(f"GET /v1/users/{{id}}, CPU per request: open, no limits {b0:7.1f} us   "
          f"token + limits {b1:7.1f} us   "
          f"difference {b1 - b0:+6.1f} us ({b1 / b0:.3f}x)   "
          f"[median of {args.rounds} alternating rounds of {args.requests}, in-process ASGI]")


if __name__ == "__main__":
    main()
