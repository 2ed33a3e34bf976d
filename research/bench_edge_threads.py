"""Can Qdrant Edge searches run beside other Python work, or beside each other?

The service runs Edge calls on its event loop (docs/api.md, "The GIL hand-back"): a call
made from a worker thread has to win the interpreter lock back afterwards, which under load
costs up to a switch interval. Whether anything could run in parallel with a search decides
whether more threads could ever help. This times, over a world's corpus in an Edge store:

1. the same searches one after the other, and split over two threads;
2. the searches while a second thread counts in pure Python, against that count alone for
   as long: the share of its own pace the counter keeps says how much of a search's time
   the interpreter lock is free.

    PYTHONPATH=. python research/bench_edge_threads.py --items 100000
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from indexer.store.base import Store
from recommender.sim.harness import store_of
from recommender.sim.worlds import world


def search_all(store: Store, queries: Sequence[NDArray[np.float32]]) -> None:
    for q in queries:
        store.search_many([q], 10, with_vectors=True)


def count_until(stop: threading.Event, out: list[int]) -> None:
    n = 0
    while not stop.is_set():
        n += 1
    out.append(n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", default="default")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    corpus = world(args.world).make_corpus(args.items, 0)
    rng = np.random.default_rng(0)
    queries = list(corpus.vectors[rng.integers(0, len(corpus.vectors), args.queries)])
    with store_of(corpus) as store:
        search_all(store, queries[:50])  # warm
        for r in range(args.rounds):
            t = time.perf_counter()
            search_all(store, queries)
            serial = time.perf_counter() - t

            threads = [threading.Thread(target=search_all, args=(store, queries[i::2]))
                       for i in range(2)]
            t = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            parallel = time.perf_counter() - t

            stop, beside = threading.Event(), list[int]()
            counter = threading.Thread(target=count_until, args=(stop, beside))
            counter.start()
            t = time.perf_counter()
            search_all(store, queries)
            with_counter = time.perf_counter() - t
            stop.set()
            counter.join()
            stop, alone = threading.Event(), list[int]()
            counter = threading.Thread(target=count_until, args=(stop, alone))
            counter.start()
            time.sleep(with_counter)
            stop.set()
            counter.join()
            print(f"round {r + 1}: {args.queries} searches one after the other {serial:.2f} s, "
                  f"over two threads {parallel:.2f} s ({serial / parallel:.2f}x as fast); "
                  f"beside a counting thread {with_counter:.2f} s, the counter at "
                  f"{beside[0] / alone[0]:.0%} of its pace alone")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
