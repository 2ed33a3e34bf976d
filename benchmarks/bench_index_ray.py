"""``sumo index --ray`` throughput beside the local path's, in one process.

On the same photo-sized JPEGs, model and batch size, each into a fresh store
(qdrant-client local mode, written from this process in both cases):

  (a) local: ``index_into`` with decoder threads and one model using every core;
  (b) Ray: ``index_into(..., embed_step=RayEmbedStep(workers=W))`` on a local Ray instance with
      ``--cpus`` CPUs: W actors, each with its own model and an equal share of the CPUs.

(a) runs before and after (b) and is averaged, so drift in a shared machine's load shows up
as a spread. Reported for (b): end to end, and without the fixed cost of a run (starting
the actors: processes, torch, the model), measured as a Ray run over one batch of other
files just before (what a long run converges to). A first one-batch run warms Ray up
(worker processes, file caches) and is not counted.

    python benchmarks/bench_index_ray.py --n 300                # ViT-B-32, random weights
    python benchmarks/bench_index_ray.py --n 100 --model sumo-tiny   # quick run
    python benchmarks/bench_index_ray.py --catalog-items 200000     # driver memory only

``--catalog-items N`` only measures the driver's in-memory catalog (one entry per item, as
a first run over N new files builds it), in bytes per item, for the 100M arithmetic in
deploy/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_images import DEFAULT_DIR, ensure_images  # noqa: E402

from indexer.distributed import RayEmbedStep  # noqa: E402
from indexer.embedder import Embedder, cpu_count, load_embedder  # noqa: E402
from indexer.ingest import Catalog, IndexReport, index_into  # noqa: E402
from indexer.scan import FileStat  # noqa: E402
from indexer.settings import CorpusSettings  # noqa: E402
from indexer.store.server import ServerStore  # noqa: E402


def run(settings: CorpusSettings, paths: list[Path], emb: Embedder,
        step: RayEmbedStep | None) -> tuple[IndexReport, float]:
    with ServerStore(":memory:") as store:
        t0 = time.perf_counter()
        report = index_into(store, settings, paths, embedder=emb, progress=False, embed_step=step)
        return report, time.perf_counter() - t0


def catalog_bytes_per_item(n: int) -> float:
    """Python heap per catalog entry: a 32-hex id, one ~70-character path, size and mtime."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    cat = Catalog()
    for i in range(n):
        stat = FileStat(f"/mnt/photos/2024/2024-06-{i % 30:02d}/IMG_{i:08d}_holiday_beach.jpg",
                        2_500_000 + i, 1_717_000_000_000_000_000 + i)
        cat.create(f"{i:032x}", stat, 4032, 3024)
    cat.dirty.clear()
    for e in cat.items.values():  # as after its batch was written
        e.stored, e.new, e.extra = dict(e.want), False, {}
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used / n


def main() -> None:
    ap = argparse.ArgumentParser(description="sumo index: Ray (W workers) vs local images/s")
    ap.add_argument("--n", type=int, default=300, help="JPEGs to index (default 300)")
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="image cache folder")
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--pretrained", default="none")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2, help="Ray actors (default 2)")
    ap.add_argument("--cpus", type=int, default=0, help="Ray CPUs (default: this machine's)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--catalog-items", type=int, default=0,
                    help="only measure the driver catalog's bytes per item over N items")
    args = ap.parse_args()
    if args.catalog_items:
        per = catalog_bytes_per_item(args.catalog_items)
        print(f"catalog: {per:.0f} bytes per item over {args.catalog_items} items "
              f"({per * 100e6 / 2**30:.0f} GiB for 100M)")
        return
    import ray

    paths = ensure_images(args.dir.expanduser(), args.n)
    settings = CorpusSettings(model=args.model, pretrained=args.pretrained, device="cpu",
                              batch_size=args.batch, qdrant_url=None)
    emb = load_embedder(settings)
    cpus = args.cpus or cpu_count()
    print(f"{emb.name}: batch {args.batch}, {len(paths)} JPEGs, {cpu_count()} cores; "
          f"Ray: {args.workers} workers on {cpus} CPUs", flush=True)

    local1, t_local1 = run(settings, paths, emb, None)
    print(f"(a) local, before: {local1.indexed / t_local1:.2f} img/s ({t_local1:.1f}s)",
          flush=True)
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        step = RayEmbedStep(workers=args.workers)
        extra = ensure_images(args.dir.expanduser(), args.n + 2 * args.batch)[args.n:]
        _, t_warm = run(settings, extra[args.batch:], emb, step)
        print(f"(b) Ray, warm-up run: {t_warm:.1f}s", flush=True)
        _, t_fixed = run(settings, extra[:args.batch], emb, step)
        print(f"(b) Ray, one batch ({args.batch} files): {t_fixed:.1f}s", flush=True)
        dist, t_ray = run(settings, paths, emb, step)
    finally:
        ray.shutdown()
    local2, t_local2 = run(settings, paths, emb, None)
    print(f"(a) local, after:  {local2.indexed / t_local2:.2f} img/s ({t_local2:.1f}s)",
          flush=True)
    assert dist.indexed == local1.indexed == local2.indexed, "the runs indexed different sets"
    stats = step.stats or {}
    local = (local1.indexed / t_local1 + local2.indexed / t_local2) / 2
    e2e = dist.indexed / t_ray
    steady = dist.indexed / (t_ray - t_fixed) if t_ray > t_fixed else float("nan")
    print(f"(b) Ray, {args.workers} workers x {stats.get('cpus_per_worker', 0):.0f} CPU: "
          f"{e2e:.2f} img/s end to end ({t_ray:.1f}s), {steady:.2f} img/s without the "
          f"one-batch run's {t_fixed:.1f}s")
    print(f"local (mean of before/after): {local:.2f} img/s")
    print(f"ratio Ray/local: end to end {e2e / local:.3f}, without the fixed cost "
          f"{steady / local:.3f}")
    if args.json:
        args.json.write_text(json.dumps({
            "model": emb.name, "batch": args.batch, "n": dist.indexed, "cores": cpu_count(),
            "ray_cpus": cpus, "workers": args.workers, "local_before": local1.indexed / t_local1,
            "local_after": local2.indexed / t_local2, "ray_end_to_end": e2e,
            "ray_steady": steady, "ray_fixed_s": t_fixed,
        }, indent=1))


if __name__ == "__main__":
    main()
