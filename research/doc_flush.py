"""What one flush of the Edge documents shard costs, by how much was written since the last.

``EdgeStore`` flushes its documents shard itself every ``FLUSH_BYTES`` of document bodies
(docs/store.md): the flush runs in the writer that crosses the mark, on the service's one
event loop, so every request that arrives meanwhile waits for it. This writes user-sized
documents (18 KB, a 60-view user) over 200 keys into a fresh store, N MB between flushes,
and times each flush (three per size). The service-level effect is ``bench_load``'s p99,
run from two checkouts that differ only in ``FLUSH_BYTES`` (docs/store.md).

    PYTHONPATH=. python research/doc_flush.py
    PYTHONPATH=. python research/doc_flush.py --sizes 1,4,32 --rounds 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import indexer.store.edge as edge
from indexer.store.edge import EdgeStore

BODY = {"record": "x" * 18_000}
KEYS = 200


def flush_ms(store: EdgeStore, megabytes: float) -> float:
    """Write ``megabytes`` of documents, then time one flush; the documents are deleted
    (and flushed away) after, so every round starts alike."""
    versions: dict[str, int] = {}
    for i in range(int(megabytes * (1 << 20)) // len(BODY["record"])):
        key = f"u{i % KEYS}"
        versions[key] = store.put_document("users", key, BODY,
                                           expected_version=versions.get(key, 0)).version
    start = time.perf_counter()
    with store._write:  # as the writer that crosses the mark holds it
        store._flush_documents()
    took = (time.perf_counter() - start) * 1e3
    for key in versions:
        store.delete_document("users", key)
    with store._write:
        store._flush_documents()
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,2,4,8,16,32", help="MB between flushes")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    edge.FLUSH_BYTES = 1 << 40  # only this script's flushes
    with tempfile.TemporaryDirectory() as folder, EdgeStore(Path(folder)) as store:
        for mb in (float(x) for x in args.sizes.split(",")):
            took = [flush_ms(store, mb) for _ in range(args.rounds)]
            print(f"{mb:g} MB written since the last flush: "
                  f"{', '.join(f'{t:.1f}' for t in took)} ms per flush, "
                  f"{min(took) / mb:.2f} ms per MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
