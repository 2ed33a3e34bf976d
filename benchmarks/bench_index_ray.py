"""``sumo index --ray`` throughput beside the local path's, in one process.

On the same photo-sized JPEGs, model and batch size, each into a fresh store
(qdrant-client local mode, written from this process in both cases):

  (a) local: ``index_into`` with decoder threads and one model using every core;
  (b) Ray: ``index_into(..., engine=RayEngine(workers=W))`` on a local Ray instance with
      ``--cpus`` CPUs: W actors, each with its own model and an equal share of the CPUs.

(a) runs before and after (b) and is averaged, so drift in a shared machine's load shows up
as a spread. Reported for (b): end to end (actor start-up included), and the steady rate
after the first batch arrived (what a long run converges to).

    python benchmarks/bench_index_ray.py --n 300                # ViT-B-32, random weights
    python benchmarks/bench_index_ray.py --n 100 --model sumo-tiny   # quick run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_images import DEFAULT_DIR, ensure_images  # noqa: E402

from indexer.distributed import RayEngine  # noqa: E402
from indexer.embedder import Embedder, cpu_count, load_embedder  # noqa: E402
from indexer.ingest import IndexReport, index_into  # noqa: E402
from indexer.settings import CorpusSettings  # noqa: E402
from indexer.store.server import ServerStore  # noqa: E402


def run(settings: CorpusSettings, paths: list[Path], emb: Embedder,
        engine: RayEngine | None) -> tuple[IndexReport, float]:
    with ServerStore(":memory:") as store:
        t0 = time.perf_counter()
        report = index_into(store, settings, paths, embedder=emb, progress=False, engine=engine)
        return report, time.perf_counter() - t0


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
    args = ap.parse_args()
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
        engine = RayEngine(workers=args.workers)
        dist, t_ray = run(settings, paths, emb, engine)
    finally:
        ray.shutdown()
    local2, t_local2 = run(settings, paths, emb, None)
    print(f"(a) local, after:  {local2.indexed / t_local2:.2f} img/s ({t_local2:.1f}s)",
          flush=True)
    assert dist.indexed == local1.indexed == local2.indexed, "the runs indexed different sets"
    stats = engine.stats or {}
    local = (local1.indexed / t_local1 + local2.indexed / t_local2) / 2
    e2e = dist.indexed / t_ray
    first, pipeline = stats.get("first_batch_s", 0.0), stats.get("pipeline_s", t_ray)
    steady = (dist.indexed - args.batch) / (pipeline - first) if pipeline > first else 0.0
    print(f"(b) Ray, {args.workers} workers x {stats.get('cpus_per_worker', 0):.0f} CPU: "
          f"{e2e:.2f} img/s end to end ({t_ray:.1f}s, of which {first:.1f}s until the first "
          f"batch), {steady:.2f} img/s after the first batch")
    print(f"ratio Ray/local: end to end {e2e / local:.3f}, steady {steady / local:.3f}")
    if args.json:
        args.json.write_text(json.dumps({
            "model": emb.name, "batch": args.batch, "n": dist.indexed, "cores": cpu_count(),
            "ray_cpus": cpus, "workers": args.workers, "local_before": local1.indexed / t_local1,
            "local_after": local2.indexed / t_local2, "ray_end_to_end": e2e,
            "ray_steady": steady, "ray_first_batch_s": first,
        }, indent=1))


if __name__ == "__main__":
    main()
