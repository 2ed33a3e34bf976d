"""The floor under ``sumo serve``'s latency: the engine alone behind uvicorn.

``bench_load.py`` divides the service's recommendation p50 by its engine's. What lies
between the two is partly the service's (auth, rate limits, validation, the user
document's read and compare-and-set write) and partly what any HTTP service over this
embedded store pays on the machine: the loopback round trip, uvicorn, and waiting while
the one event loop serves another user (threads gain almost nothing over the store's
calls: docs/api.md, "The GIL hand-back"). This server keeps only what cannot be left out: the same
routes and JSON, the same ``Engine`` over the same store, users' state in a dict (never
written anywhere), no auth, no limits, no checks. Run beside the service, the ratio of
the two is the service's own share with the transport and the queueing held equal.

    python -m benchmarks.bare_server --data DIR --port 8001 [--policy sumo]

It answers ``GET /readyz``, ``GET /healthz``, ``GET /v1/users/{id}/recommendations
?limit=N``, ``POST /v1/users/{id}/feedback`` (``{"events": [{"item_id", "dwell_ms"}]}``)
and ``DELETE /v1/users/{id}``, each recommendation with the service's ``Server-Timing``
header. A benchmark tool, not a product: it trusts its one client.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson

from indexer.store.edge import EdgeStore
from recommender.api import server_timing
from recommender.engine import Engine, Observation
from recommender.state import UserState

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class BareApp:
    """A raw ASGI app: the engine's two calls and nothing else."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.users: dict[str, UserState] = {}

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        parts = scope["path"].strip("/").split("/")
        method = scope["method"]
        if parts in (["healthz"], ["readyz"]):
            await respond(send, 200, {"status": "ok"})
        elif len(parts) == 4 and parts[:2] == ["v1", "users"] and method == "GET":
            query = parse_qs(scope["query_string"].decode())
            await self.recommend(send, parts[2], int(query.get("limit", ["5"])[0]), start)
        elif len(parts) == 4 and parts[:2] == ["v1", "users"] and method == "POST":
            await self.feedback(send, parts[2], orjson.loads(await body_of(receive)))
        elif len(parts) == 3 and parts[:2] == ["v1", "users"] and method == "DELETE":
            self.users.pop(parts[2], None)
            await respond(send, 200, {"deleted": True})
        else:
            await respond(send, 404, {"error": "not found"})

    def _state(self, user_id: str) -> UserState:
        state = self.users.get(user_id)
        if state is None:
            state = self.users[user_id] = self.engine.new_state(user_id)
        return state

    async def recommend(self, send: Send, user_id: str, limit: int, start: float) -> None:
        state = self._state(user_id)
        t = time.perf_counter()
        hits = self.engine.recommend(state, limit)
        engine_s = time.perf_counter() - t
        body = {"items": [{"id": h.id, "score": h.score} for h in hits],
                "policy": state.policy}
        timing = server_timing.header({"engine": engine_s}, time.perf_counter() - start)
        await respond(send, 200, body, [(b"server-timing", timing)])

    async def feedback(self, send: Send, user_id: str, payload: dict[str, Any]) -> None:
        events = payload["events"]
        items = self.engine.store.retrieve([e["item_id"] for e in events], with_vectors=True)
        vectors = {it.id: it.vector for it in items if it.vector is not None}
        self.engine.observe(self._state(user_id), [
            Observation(e["item_id"], vectors[e["item_id"]], float(e["dwell_ms"]))
            for e in events])
        await respond(send, 200, {"accepted": len(events)})


async def body_of(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(send: Send, status: int, body: object,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--policy", default="sumo")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import uvicorn

    with EdgeStore(args.data) as store:
        engine = Engine(store, default_policy=args.policy, seed=args.seed)
        engine.warm()
        # As `sumo serve` runs uvicorn: its default loop and HTTP parser, no access log.
        uvicorn.run(BareApp(engine), host="127.0.0.1", port=args.port, access_log=False,
                    log_level="warning", lifespan="off")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
