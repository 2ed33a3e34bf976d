"""Load benchmark of `sumo serve`: simulated users against a real server on loopback.

100k synthetic CLIP-like items (512-d) in the embedded store (built once, then cached),
`sumo serve` in a subprocess (uvicorn, one worker), and U concurrent simulated users: each
step fetches one recommendation, "looks" at it, and posts one dwell event. Reports
throughput and p50/p99 of both calls, next to the raw store query latency measured in the
same run (``store.search`` of 1 item excluding as many ids as the users have seen) and the
in-process ``Engine.recommend``, each measured before the server starts and again after it
stops (the ratios use both, so a drift in the machine's load over the run hits both sides),
and a paced ``GET /healthz``: the loopback round trip that every paced figure includes.
Each recommendation's ``Server-Timing`` header gives its own engine time inside the server:
the like-for-like denominator, since an engine woken from idle between paced requests is
slower than one run back to back (``benchmarks/bench_engine_idle.py``).

A warm-up first (``--warmup-steps`` per user without think time: start-up costs, reported
but not judged), then two phases:
- **paced**: every user thinks ``--think-ms`` (jittered) between calls, as people do; the
  latency targets are judged here;
- **saturated**: no think time, to find the throughput ceiling (latency there is queueing:
  with U users in a closed loop, latency ~ U / throughput).

With ``--bare`` the paced phase also runs against ``benchmarks/bare_server.py`` (the same
engine and store behind uvicorn, nothing else: no auth, limits, validation or user
documents), once before the service and once after: the service's p50 over the bare one's
is its own share with the round trip and the queueing held equal.

Loopback only, bounded by ``--steps`` and ``--max-seconds``. Example:

    python -m benchmarks.bench_load                      # 100k items, 32 users, 60 steps
    python -m benchmarks.bench_load --items 20000 --steps 20   # quicker
    python -m benchmarks.bench_load --skip-saturated --bare    # and the bare floor
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import orjson

from indexer.store import common
from indexer.store.edge import EdgeStore
from recommender.api import server_timing
from recommender.sim.corpus import SyntheticCorpus, load_corpus, make_corpus
from recommender.sim.users import SimUser, make_users
from tests.serve_process import ServeProcess

SEED = 0
DIM = 512
CLUSTERS = 200
# What a cached store was built with: a store's layout changes with these (docs/store.md).
BUILD = f"int8 copy q{common.QUANTILE}, ef_construct {common.HNSW_EF_CONSTRUCT}\n"


def cache_dir(items: int) -> Path:
    base = Path(os.environ.get("SUMO_BENCH_CACHE", Path.home() / ".cache" / "sumo-bench"))
    return base / f"load-{items}-{DIM}d-seed{SEED}"


def corpus_and_data(items: int) -> tuple[SyntheticCorpus, Path]:
    """The corpus (regenerated: it is deterministic) and a data folder holding it, built
    again when the store's layout has changed since (``BUILD``)."""
    corpus = make_corpus(items, dim=DIM, clusters=CLUSTERS, seed=SEED)
    folder = cache_dir(items)
    done = folder / "READY"
    if not done.exists() or done.read_text() != BUILD:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"building the store in {folder} (once) ...", flush=True)
        t = time.perf_counter()
        with EdgeStore(folder) as store:
            load_corpus(store, corpus)  # upserts, then builds the HNSW index
        done.write_text(BUILD)
        print(f"  built in {time.perf_counter() - t:.0f} s", flush=True)
    return corpus, folder


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000.0, q)) if samples else float("nan")


def raw_query_latency(
    folder: Path, corpus: SyntheticCorpus, seen: int, n: int = 600
) -> list[float]:
    """Seconds per ``store.search(v, 1, exclude=<seen ids>)``, one at a time."""
    rng = np.random.default_rng(1)
    out: list[float] = []
    with EdgeStore(folder) as store:
        for k in range(n + 50):
            v = corpus.vectors[rng.integers(len(corpus.ids))]
            exclude = [corpus.ids[i] for i in rng.integers(0, len(corpus.ids), seen)]
            t = time.perf_counter()
            store.search(v, 1, exclude=exclude)
            if k >= 50:  # warm-up excluded
                out.append(time.perf_counter() - t)
    return out


def engine_latency(
    folder: Path, corpus: SyntheticCorpus, users: list[SimUser], steps: int, policy: str
) -> list[float]:
    """Seconds per ``Engine.recommend(state, 1)`` in-process (policy + store queries, no
    HTTP and no user-state I/O), for the same kind of users over the same steps."""
    from recommender.engine import Engine, Observation

    index = {item_id: k for k, item_id in enumerate(corpus.ids)}
    out: list[float] = []
    with EdgeStore(folder) as store:
        engine = Engine(store, default_policy=policy, seed=SEED)
        engine.warm()
        for k, sim in enumerate(users[:8]):
            state = engine.new_state(f"engine-{k}")
            rng = np.random.default_rng(k)
            for _ in range(steps):
                t = time.perf_counter()
                hits = engine.recommend(state, 1)
                out.append(time.perf_counter() - t)
                if not hits:
                    break
                v = corpus.vectors[index[hits[0].id]]
                engine.observe(state, [Observation(hits[0].id, v, sim.dwell_ms(v, rng))])
    return out


@dataclass
class Phase:
    name: str
    rec: list[float] = field(default_factory=list)
    # Inside the server, per recommendation (its Server-Timing header): the engine's part
    # and the app's whole, under the conditions each request actually met.
    rec_engine: list[float] = field(default_factory=list)
    rec_app: list[float] = field(default_factory=list)
    fb: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # CPU seconds the server process used during the phase
    client_cpu: float = 0.0  # ... and this process (the load generator)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux; 0 elsewhere).

    Unlike latency, CPU per request hardly depends on what else runs on the machine, so
    it is the figure to compare between versions on a shared box."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams.

    The load generator shares the two cores with the server, so its own cost per request
    lands in every latency it measures. httpx's async client spends ~1-3 ms of CPU per
    request here (more than the server does); this client spends a few microseconds, so
    the figures describe the service, not the client.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.timing: dict[str, float] = {}  # the last response's Server-Timing, in seconds

    async def request(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        data = b"" if body is None else orjson.dumps(body)
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Content-Length: {len(data)}\r\n")
        if data:
            head += "Content-Type: application/json\r\n"
        line = await self._send(head.encode() + b"\r\n" + data)
        if not line:
            # The server closed the connection while it sat idle (uvicorn keeps one open 5 s
            # without a request: a user who finished early). Every request the benchmark
            # sends may be repeated (feedback carries event ids), so send it once more.
            await self.close()
            line = await self._send(head.encode() + b"\r\n" + data)
        assert self.reader is not None
        status = int(line.split()[1])
        length = 0
        self.timing = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "server-timing":
                self.timing = server_timing.parse(value)
            elif name.lower() == "transfer-encoding":
                raise RuntimeError("chunked responses are not expected from the API")
        payload = await self.reader.readexactly(length) if length else b""
        return status, (orjson.loads(payload) if payload else None)

    async def _send(self, message: bytes) -> bytes:
        """Write one request, opening the connection if need be; the status line."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(message)
        try:
            return await self.reader.readline()
        except ConnectionResetError:
            return b""

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()
            self.reader = self.writer = None


@contextlib.asynccontextmanager
async def connections(url: str, n: int) -> AsyncIterator[list[Connection]]:
    """``n`` keep-alive connections to ``url``, each opened with one ``GET /healthz``
    (connection set-up is not what we measure), closed after."""
    host, port = urlsplit(url).hostname or "127.0.0.1", urlsplit(url).port or 80
    conns = [Connection(host, port) for _ in range(n)]
    try:
        await asyncio.gather(*(c.request("GET", "/healthz") for c in conns))
        yield conns
    finally:
        await asyncio.gather(*(c.close() for c in conns))


async def pause(jitter: random.Random, think_ms: float) -> None:
    """A simulated person's pause: ``think_ms`` on average, jittered by +-50 %."""
    if think_ms:
        await asyncio.sleep(jitter.uniform(0.5, 1.5) * think_ms / 1000.0)


async def run_phase(
    url: str, name: str, users: list[SimUser], corpus: SyntheticCorpus, steps: int,
    think_ms: float, max_seconds: float, server_pid: int,
) -> Phase:
    phase = Phase(name)
    run_id = os.urandom(4).hex()  # the cached store keeps users: never reuse one
    index = {item_id: k for k, item_id in enumerate(corpus.ids)}
    deadline = time.monotonic() + max_seconds

    async def one_user(k: int, sim: SimUser, conn: Connection) -> None:
        uid = f"{name}-{run_id}-{k}"
        rng = np.random.default_rng(k)
        jitter = random.Random(k)
        # Paced users arrive spread over a pause, as they continue: all 32 first requests
        # at one instant would queue behind each other and read as the phase's tail.
        await pause(jitter, think_ms)
        for step in range(steps):
            if time.monotonic() > deadline:
                return
            t0 = time.perf_counter()
            status, body = await conn.request(
                "GET", f"/v1/users/{uid}/recommendations?limit=1")
            t1 = time.perf_counter()
            items = body["items"] if status == 200 and isinstance(body, dict) else []
            if not items:
                phase.errors += 1
                continue
            phase.rec.append(t1 - t0)
            if "engine" in conn.timing:
                phase.rec_engine.append(conn.timing["engine"])
                phase.rec_app.append(conn.timing["app"])
            item = items[0]["id"]
            dwell = sim.dwell_ms(corpus.vectors[index[item]], rng)
            await pause(jitter, think_ms)
            t2 = time.perf_counter()
            status, _ = await conn.request("POST", f"/v1/users/{uid}/feedback", {"events": [
                {"item_id": item, "dwell_ms": dwell, "event_id": f"{uid}-{step}"}]})
            phase.fb.append(time.perf_counter() - t2)
            if status != 200:
                phase.errors += 1
            await pause(jitter, think_ms)

    async with connections(url, len(users)) as conns:
        start = time.perf_counter()
        cpu0, client0 = process_cpu(server_pid), time.process_time()
        pairs = enumerate(zip(users, conns, strict=True))
        await asyncio.gather(*(one_user(k, u, c) for k, (u, c) in pairs))
        phase.seconds = time.perf_counter() - start
        phase.server_cpu = process_cpu(server_pid) - cpu0
        phase.client_cpu = time.process_time() - client0
        # Leave the cached store as we found it.
        await asyncio.gather(*(c.request("DELETE", f"/v1/users/{name}-{run_id}-{k}")
                               for k, c in enumerate(conns)))
    return phase


async def round_trips(url: str, users: int, steps: int, think_ms: float) -> list[float]:
    """Seconds per ``GET /healthz`` (no store, no auth) with ``users`` paced like the
    paced phase: the loopback round trip of processes woken from idle, the floor under
    every figure of that phase."""
    out: list[float] = []

    async def one(k: int, conn: Connection) -> None:
        jitter = random.Random(k)
        for _ in range(steps):
            await pause(jitter, think_ms)
            start = time.perf_counter()
            await conn.request("GET", "/healthz")
            out.append(time.perf_counter() - start)

    async with connections(url, users) as conns:
        await asyncio.gather(*(one(k, c) for k, c in enumerate(conns)))
    return out


def report(
    phase: Phase, raw: list[float], core: list[float], users: int, think_ms: float
) -> None:
    steps = len(phase.fb)
    print(f"\n[{phase.name}] {users} users, think {think_ms:.0f} ms, {steps} steps in "
          f"{phase.seconds:.1f} s: {steps / phase.seconds:.0f} steps/s, "
          f"{(len(phase.rec) + steps) / phase.seconds:.0f} requests/s, errors {phase.errors}")
    raw50, raw99 = pct(raw, 50), pct(raw, 99)
    for label, xs in (("recommendation", phase.rec), ("feedback", phase.fb)):
        p50, p99 = pct(xs, 50), pct(xs, 99)
        print(f"  {label:<15} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms   "
              f"(x raw query: p50 {p50 / raw50:4.1f}  p99 {p99 / raw99:4.1f})")
    rec50 = pct(phase.rec, 50)
    print(f"  recommendation p50 / in-process engine p50 (before and after): "
          f"{rec50 / pct(core, 50):.2f}x "
          f"(everything between the client and an engine run back to back: the service, "
          f"the round trip, queueing, a core woken from idle)")
    if phase.rec_engine:
        # The in-process engine runs back to back; the server's engine runs after idle gaps
        # (a core woken from idle is slower: benchmarks/bench_engine_idle.py), so the same
        # requests' own engine time is the like-for-like denominator.
        eng50 = pct(phase.rec_engine, 50)
        print(f"  inside the server (Server-Timing, the same requests): engine p50 "
              f"{eng50:.2f} ms, app p50 {pct(phase.rec_app, 50):.2f} ms; recommendation p50 / "
              f"their engine p50: {rec50 / eng50:.2f}x")
    requests = len(phase.rec) + steps
    if requests and phase.server_cpu:
        print(f"  CPU per request (both kinds together): "
              f"server {phase.server_cpu / requests * 1e3:.2f} ms, "
              f"load generator {phase.client_cpu / requests * 1e3:.2f} ms")


def bare_phase(folder: Path, sims: list[SimUser], corpus: SyntheticCorpus,
               args: argparse.Namespace) -> Phase:
    """The paced phase against ``benchmarks/bare_server.py`` over the same store and users
    (after the same unjudged warm-up): the floor of the service's latency."""
    server = ServeProcess(folder, folder.parent / f"{folder.name}-bare.log", ready_s=120,
                          command=[sys.executable, "-m", "benchmarks.bare_server",
                                   "--data", str(folder), "--policy", args.policy,
                                   "--seed", str(SEED)])
    try:
        if args.warmup_steps:
            asyncio.run(run_phase(server.url, "bare-warm-up", sims, corpus, args.warmup_steps,
                                  0.0, args.max_seconds, server.proc.pid))
        return asyncio.run(run_phase(server.url, "bare", sims, corpus, args.steps,
                                     args.think_ms, args.max_seconds, server.proc.pid))
    finally:
        server.stop()


def report_bare(paced: Phase, bare: list[Phase], core: list[float], users: int,
                think_ms: float) -> None:
    """The service's paced phase beside the bare server's (its runs before and after the
    service's pooled, as the engine's baselines are)."""
    pooled = Phase("bare", seconds=sum(b.seconds for b in bare))
    for b in bare:
        pooled.rec += b.rec
        pooled.rec_engine += b.rec_engine
        pooled.fb += b.fb
        pooled.errors += b.errors
        pooled.server_cpu += b.server_cpu
    rec50, eng50 = pct(pooled.rec, 50), pct(pooled.rec_engine, 50)
    service50 = pct(paced.rec, 50)
    print(f"\n[bare] the engine alone behind uvicorn ({len(bare)} runs around the service's, "
          f"{users} users, think {think_ms:.0f} ms), errors {pooled.errors}")
    print(f"  recommendation  p50 {rec50:6.2f} ms  p99 {pct(pooled.rec, 99):6.2f} ms; "
          f"feedback p50 {pct(pooled.fb, 50):6.2f} ms")
    print(f"  recommendation p50 / in-process engine p50: {rec50 / pct(core, 50):.2f}x; "
          f"/ its own engine p50 ({eng50:.2f} ms): {rec50 / eng50:.2f}x (this machine's floor)")
    requests = len(pooled.rec) + len(pooled.fb)
    print(f"  CPU per request (both kinds together): server "
          f"{pooled.server_cpu / requests * 1e3:.2f} ms, the service's "
          f"{paced.server_cpu / (len(paced.rec) + len(paced.fb)) * 1e3:.2f} ms")
    print(f"  service recommendation p50 / bare p50: {service50 / rec50:.2f}x "
          f"(the service's own share, transport and queueing held equal)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=32)
    ap.add_argument("--steps", type=int, default=60, help="steps per user and phase")
    ap.add_argument("--think-ms", type=float, default=250.0,
                    help="paced phase: mean pause before each call (a person looks ~2 s)")
    ap.add_argument("--policy", default="sumo")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="cap per phase")
    ap.add_argument("--skip-saturated", action="store_true")
    ap.add_argument("--warmup-steps", type=int, default=40,
                    help="unjudged steps per user first, no think time (0: judge a cold store)")
    ap.add_argument("--bare", action="store_true",
                    help="also run the paced phase against the engine alone behind uvicorn "
                         "(benchmarks/bare_server.py), before and after the service")
    args = ap.parse_args()

    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores; other work on the machine inflates every figure)")
    corpus, folder = corpus_and_data(args.items)
    sims = make_users("broad", corpus, args.users, seed=SEED)
    # Users see about one item per step: the raw baseline excludes the mid-run seen count.
    seen = max(1, args.steps // 2)
    raw = raw_query_latency(folder, corpus, seen)
    print(f"raw store query (EdgeStore.search, limit 1, excluding {seen} ids, one at a time): "
          f"p50 {pct(raw, 50):.2f} ms  p99 {pct(raw, 99):.2f} ms")
    core = engine_latency(folder, corpus, sims, args.steps, args.policy)
    print(f"in-process engine.recommend (policy {args.policy}, limit 1, users' first "
          f"{args.steps} steps): "
          f"p50 {pct(core, 50):.2f} ms  p99 {pct(core, 99):.2f} ms")

    bare: list[Phase] = []
    if args.bare:
        bare.append(bare_phase(folder, sims, corpus, args))
    server = ServeProcess(folder, folder.parent / f"{folder.name}-serve.log",
                          # Rate limits counted (their cost is measured) but never reached.
                          env={"SUMO_POLICY": args.policy,
                               "SUMO_RATE_LIMIT_USER": "1000000/second"}, ready_s=120)
    done: list[tuple[Phase, float]] = []
    try:
        if args.warmup_steps:
            # Start-up costs are not the steady state: first calls into each code path, the
            # decode memo, the page cache (the store pre-reads its user documents at open,
            # since a reopened Edge shard otherwise writes ~5x slower for thousands of
            # writes). The warm-up is reported, not judged.
            done.append((asyncio.run(run_phase(server.url, "warm-up", sims, corpus,
                                               args.warmup_steps, 0.0, args.max_seconds,
                                               server.proc.pid)), 0.0))
        floor = asyncio.run(round_trips(server.url, args.users, min(args.steps, 20),
                                        args.think_ms))
        phases = [("paced", args.think_ms)] + ([] if args.skip_saturated else [("saturated", 0)])
        for name, think in phases:
            done.append((asyncio.run(run_phase(server.url, name, sims, corpus, args.steps,
                                               think, args.max_seconds, server.proc.pid)), think))
    finally:
        server.stop()
    if args.bare:
        bare.append(bare_phase(folder, sims, corpus, args))
    # The store is free again: both baselines once more. The machine's load drifts over the
    # minutes of a run, so the ratios are taken to the samples of before and after together.
    raw_after = raw_query_latency(folder, corpus, seen, n=300)
    core_after = engine_latency(folder, corpus, sims, args.steps, args.policy)
    print(f"after the run: raw store query p50 {pct(raw_after, 50):.2f} ms  "
          f"p99 {pct(raw_after, 99):.2f} ms; in-process engine.recommend p50 "
          f"{pct(core_after, 50):.2f} ms  p99 {pct(core_after, 99):.2f} ms")
    print(f"GET /healthz paced like the paced phase ({args.users} users): p50 "
          f"{pct(floor, 50):.2f} ms  p99 {pct(floor, 99):.2f} ms (the round trip alone)")
    for phase, think in done:
        report(phase, raw + raw_after, core + core_after, args.users, think)
    if bare:
        paced = next(phase for phase, think in done if phase.name == "paced")
        report_bare(paced, bare, core + core_after, args.users, args.think_ms)
    print(f"\nitems {args.items}, dim {DIM}, policy {args.policy}, cpu cores {os.cpu_count()}, "
          f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
