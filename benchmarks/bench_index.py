"""Indexing throughput of ``sumo index`` as a ratio to the model's forward-only throughput.

In one process, with the same embedder, threads and batch size:

  (a) forward only: ``encode_tensors`` on already-preprocessed batches (the ceiling);
  (b) end to end: ``index_into`` on a folder of photo-sized JPEGs into a fresh Edge store
      (scan, read, sha256, draft-mode decode, resize, inference, upserts, HNSW build);

and prints (b)/(a). Target >= 0.85. (a) is measured before and after (b) and averaged, so
drift in a shared machine's load shows up as a spread instead of a wrong ratio. Also
reports single-thread decode+preprocess rates with and without JPEG draft mode.

    python benchmarks/bench_index.py --n 500          # ViT-B-32, random weights
    python benchmarks/bench_index.py --n 100 --model sumo-tiny   # quick smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_images import DEFAULT_DIR, ensure_images  # noqa: E402

from indexer import ingest  # noqa: E402
from indexer.embedder import Embedder, cpu_count, load_embedder  # noqa: E402
from indexer.images import decode  # noqa: E402
from indexer.ingest import decode_workers, index_into  # noqa: E402
from indexer.settings import CorpusSettings  # noqa: E402
from indexer.store.edge import EdgeStore  # noqa: E402


def forward_rate(emb: Embedder, batch: Any, seconds: float) -> float:
    """Images/s of the model alone on a preprocessed batch, after one warm-up batch."""
    emb.encode_tensors(batch)
    done, t0 = 0, time.perf_counter()
    while True:
        emb.encode_tensors(batch)
        done += len(batch)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and done >= 2 * len(batch):
            return done / elapsed


def decode_rate(emb: Embedder, paths: list[Path], draft: bool) -> float:
    """Single-thread read + decode + resize/crop images/s."""
    t0 = time.perf_counter()
    for p in paths:
        image, _ = decode(p.read_bytes(), draft_size=emb.image_size if draft else None)
        emb.prepare(image)
    return len(paths) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description="sumo index images/s vs forward-only images/s")
    ap.add_argument("--n", type=int, default=500, help="JPEGs to index (default 500)")
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="image cache folder")
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--pretrained", default="none")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0, help="decoder threads (0: auto)")
    ap.add_argument("--forward-seconds", type=float, default=15.0)
    ap.add_argument("--decoder-nice", type=int, default=None,
                    help="niceness of decoder threads (default: the indexer's)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    # torch is imported after indexer.embedder, which sets OMP_WAIT_POLICY as `sumo` does.
    import torch

    if args.decoder_nice is not None:
        ingest.DECODER_NICE = args.decoder_nice
    paths = ensure_images(args.dir.expanduser(), args.n)
    settings = CorpusSettings(model=args.model, pretrained=args.pretrained, device="cpu",
                              batch_size=args.batch, workers=args.workers, qdrant_url=None)
    emb = load_embedder(settings)
    batch = emb.batch([emb.prepare(decode(p, draft_size=emb.image_size)[0])
                       for p in paths[: args.batch]])
    workers = decode_workers(settings, emb.device)
    print(f"{emb.name}: batch {args.batch}, torch threads {torch.get_num_threads()}, "
          f"cores {cpu_count()}, decoder threads {workers} (nice {ingest.DECODER_NICE}), "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, {len(paths)} JPEGs",
          flush=True)

    sample = paths[: min(40, len(paths))]
    dec_full = decode_rate(emb, sample, draft=False)
    dec_draft = decode_rate(emb, sample, draft=True)
    print(f"decode+preprocess, 1 thread: full {dec_full:.1f} img/s, draft {dec_draft:.1f} img/s",
          flush=True)

    fwd_before = forward_rate(emb, batch, args.forward_seconds)
    print(f"(a) forward only, before: {fwd_before:.2f} img/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeStore(Path(tmp) / "data")
        try:
            t0 = time.perf_counter()
            report = index_into(store, settings, [args.dir.expanduser()], embedder=emb,
                                progress=False)
            elapsed = time.perf_counter() - t0
        finally:
            store.close()
    e2e = report.indexed / elapsed
    fwd_after = forward_rate(emb, batch, args.forward_seconds)
    print(f"(a) forward only, after:  {fwd_after:.2f} img/s", flush=True)
    fwd = (fwd_before + fwd_after) / 2
    ratio = e2e / fwd
    print(f"(b) sumo index end to end: {report.indexed} images in {elapsed:.1f}s = "
          f"{e2e:.2f} img/s (model busy {report.embed_seconds:.1f}s of it)")
    print(f"ratio (b)/(a) = {ratio:.3f}  (target >= 0.85)")
    if args.json:
        args.json.write_text(json.dumps({
            "model": emb.name, "batch": args.batch, "threads": torch.get_num_threads(),
            "decoder_threads": workers, "n": report.indexed, "decode_full": dec_full,
            "decode_draft": dec_draft, "forward_before": fwd_before, "forward_after": fwd_after,
            "end_to_end": e2e, "ratio": ratio, "seconds": elapsed,
        }, indent=1))


if __name__ == "__main__":
    main()
