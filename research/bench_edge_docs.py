"""User-document writes on the embedded store (Qdrant Edge): the figures behind
``Store.warm()`` and the service's periodic flush (docs/store.md, docs/api.md).

Through ``EdgeStore.put_document`` with ~15 KB bodies (one user state) over 32 users:
1. write p50 on a fresh store, then after closing and reopening it, and after reopening
   plus ``warm()``, each in the same process;
2. how the write-ahead log and the document segments grow with writes, with and without a
   flush between rounds;
3. how long a flush takes and how long a writer in another thread stalls meanwhile;
4. write and read p50 by document size (what a smaller document per request would save).

    python research/bench_edge_docs.py            # ~20 s, writes ~400 MB under /tmp
    python research/bench_edge_docs.py --sizes-only
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from indexer.store.base import Store
from indexer.store.edge import EdgeStore

USERS = 32
# Base64 of random bytes, as a state's vectors are: a run of one letter would compress away.
BODY = {"state": base64.b64encode(os.urandom(11_250)).decode("ascii")}


class Writer:
    """Rewrites 32 users' documents round-robin, keeping each one's version."""

    def __init__(self, store: Store, body: dict[str, str] = BODY) -> None:
        self.store = store
        self.body = body
        self.versions = [0] * USERS
        self.k = 0

    def resume(self) -> None:
        """Pick up the stored versions (a reopened store)."""
        for u in range(USERS):
            doc = self.store.get_document("users", f"u{u}")
            self.versions[u] = doc.version if doc is not None else 0

    def write(self, n: int) -> list[float]:
        times = []
        for _ in range(n):
            u = self.k % USERS
            t = time.perf_counter()
            doc = self.store.put_document("users", f"u{u}", self.body,
                                          expected_version=self.versions[u])
            times.append(time.perf_counter() - t)
            self.versions[u] = doc.version
            self.k += 1
        return times


def ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1e3:.3f} ms"


def disk_mb(folder: Path, pattern: str) -> float:
    return sum(f.stat().st_blocks * 512 for f in folder.glob(pattern) if f.is_file()) / 2**20


def reopen_costs(root: Path, n: int) -> None:
    with EdgeStore(root / "a") as store:
        writer = Writer(store)
        print(f"fresh store:           write p50 {ms(writer.write(n))}")
    with EdgeStore(root / "a") as store:
        writer = Writer(store)
        writer.resume()
        print(f"reopened:              write p50 {ms(writer.write(n))} (first {n}), "
              f"{ms(writer.write(n))} (next {n})")
    with EdgeStore(root / "a") as store:
        t = time.perf_counter()
        store.warm()
        warm_s = time.perf_counter() - t
        writer = Writer(store)
        writer.resume()
        print(f"reopened, then warm(): write p50 {ms(writer.write(n))} (first {n}); warm() took "
              f"{warm_s:.2f} s for {disk_mb(root / 'a', '**/documents/segments/**/*'):.0f} MB")


def growth(root: Path, rounds: int, per_round: int) -> None:
    for flush in (False, True):
        folder = root / ("flushed" if flush else "unflushed")
        with EdgeStore(folder) as store:
            writer = Writer(store)
            sizes = []
            for _ in range(rounds):
                writer.write(per_round)
                if flush:
                    store.flush()
                sizes.append((disk_mb(folder, "**/documents/segments/**/*"),
                              disk_mb(folder, "**/documents/wal/*")))
        label = "flush after each round" if flush else "no flush             "
        print(f"{label}: segments / log MB after each {per_round} writes: "
              + ", ".join(f"{s:.0f}/{w:.0f}" for s, w in sizes))


def flush_stall(root: Path) -> None:
    with EdgeStore(root / "stall") as store:
        writer = Writer(store)
        writer.write(3000)
        done = threading.Event()
        took: list[float] = []

        def flush() -> None:
            t = time.perf_counter()
            store.flush()
            took.append(time.perf_counter() - t)
            done.set()

        thread = threading.Thread(target=flush)
        stamps = [time.perf_counter()]
        thread.start()
        while not done.is_set():
            writer.write(1)
            stamps.append(time.perf_counter())
        thread.join()
        # Edge holds the interpreter lock during a flush, so the writer's stall shows
        # between its writes, not inside one: the longest gap between two completions.
        stall = max(b - a for a, b in zip(stamps, stamps[1:], strict=False))
        print(f"flush after 3000 writes: {took[0] * 1e3:.0f} ms; a writer in another thread "
              f"stalled up to {stall * 1e3:.0f} ms ({len(stamps) - 1} writes meanwhile)")


def by_size(root: Path, n: int) -> None:
    """Write and read p50 per document size, sizes interleaved in rounds (the machine's
    drift hits every size alike), each size its own 32 users in one warm store."""
    sizes = (2, 4, 8, 15, 30)
    with EdgeStore(root / "sizes") as store:
        writers = {kb: Writer(store, {"state": base64.b64encode(os.urandom(kb * 750)).decode()})
                   for kb in sizes}
        for kb, w in writers.items():  # each size's users created and warmed
            for u in range(USERS):
                w.versions[u] = store.put_document("users", f"{kb}-{u}", w.body,
                                                   expected_version=0).version
        writes: dict[int, list[float]] = {kb: [] for kb in sizes}
        reads: dict[int, list[float]] = {kb: [] for kb in sizes}
        for _ in range(4):
            for kb, w in writers.items():
                for _ in range(n // 4):
                    u = w.k % USERS
                    t = time.perf_counter()
                    doc = store.put_document("users", f"{kb}-{u}", w.body,
                                             expected_version=w.versions[u])
                    writes[kb].append(time.perf_counter() - t)
                    w.versions[u] = doc.version
                    w.k += 1
                    t = time.perf_counter()
                    store.get_document("users", f"{kb}-{u}")
                    reads[kb].append(time.perf_counter() - t)
    print("document size:  " + "".join(f"{kb:>8} KB" for kb in sizes))
    print("write p50 (ms):  " + "".join(f"{statistics.median(writes[kb]) * 1e3:>11.3f}"
                                        for kb in sizes))
    print("read p50 (ms):   " + "".join(f"{statistics.median(reads[kb]) * 1e3:>11.3f}"
                                        for kb in sizes))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writes", type=int, default=2000, help="writes per timed batch")
    ap.add_argument("--sizes-only", action="store_true", help="only the sizes table (4.)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sumo-edge-docs-"))
    try:
        by_size(root, args.writes)
        if args.sizes_only:
            return 0
        reopen_costs(root, args.writes)
        growth(root, rounds=4, per_round=2500)
        flush_stall(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
