"""Indexing throughput of ``sumo index`` with the chosen CPU engine, against the torch path,
the model alone and the decoders alone, all in one process.

With the same folder, batch size and threads:

  (a) forward only: ``encode_tensors`` on an already-preprocessed batch, for torch fp32 and
      for the engine ``SUMO_ENGINE=auto`` picks on this machine (or ``--engine``);
  (d) decode only: the indexer's reader pool alone (read, sha256, draft-mode decode,
      resize/crop) over the same files, with the indexer's decoder threads and with one
      per core;
  (b) end to end: ``index_into`` on the folder into a fresh Edge store (scan, read, hash,
      decode, resize, inference, upserts, HNSW build), torch path and engine path;

and prints engine/torch end to end (target >= 1.5), engine end to end / decode only, end
to end / forward only, and the minimum cosine between the two runs' stored vectors over
every image (target >= 0.995).

    python benchmarks/bench_index.py                  # 500 JPEGs, ViT-B-32-256, random weights
    python benchmarks/bench_index.py --n 60 --model sumo-tiny --forward-seconds 1  # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from make_images import DEFAULT_DIR, ensure_images  # noqa: E402

from indexer import ingest  # noqa: E402
from indexer.embedder import Embedder, cpu_count, load_embedder  # noqa: E402
from indexer.embedder.engine import cpu_flags  # noqa: E402
from indexer.embedder.engine import min_cosine as row_min_cosine  # noqa: E402
from indexer.images import decode  # noqa: E402
from indexer.ingest import Reader, _lower_priority, _ordered, decode_workers, index_into  # noqa: E402
from indexer.scan import scan  # noqa: E402
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
    """Single-thread read + decode + resize images/s."""
    t0 = time.perf_counter()
    for p in paths:
        image, _ = decode(p.read_bytes(), draft_size=emb.image_size if draft else None)
        emb.prepare(image)
    return len(paths) / (time.perf_counter() - t0)


def decode_only(emb: Embedder, folder: Path, workers: int, nice: int, batch: int) -> float:
    """Images/s of the indexer's reader pool alone over the folder (nothing known)."""
    todo = list(scan([folder]).files.values())
    reader = Reader(emb.prepare, emb.image_size, lambda _: False)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers, initializer=_lower_priority(nice)) as pool:
        n = sum(1 for _ in _ordered(pool, reader, todo, max(2 * batch, 4 * workers)))
    return n / (time.perf_counter() - t0)


def end_to_end(emb: Embedder, settings: CorpusSettings, folder: Path
               ) -> tuple[float, Any, dict[str, np.ndarray]]:
    """(images/s, report, item id -> vector) of ``index_into`` into a fresh Edge store."""
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeStore(Path(tmp) / "data")
        try:
            t0 = time.perf_counter()
            report = index_into(store, settings, [folder], embedder=emb, progress=False)
            elapsed = time.perf_counter() - t0
            vectors = {it.id: np.asarray(it.vector, dtype=np.float32)
                       for it in store.scroll(with_vectors=True, with_payload=False)}
        finally:
            store.close()
    return report.indexed / elapsed, report, vectors


def min_cosine(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """The lowest cosine between the two runs' vectors of the same item."""
    ids = sorted(a.keys() & b.keys())
    return row_min_cosine(np.stack([a[i] for i in ids]), np.stack([b[i] for i in ids]))


def main() -> None:
    ap = argparse.ArgumentParser(description="sumo index: CPU engine vs torch vs decoding")
    ap.add_argument("--n", type=int, default=500, help="JPEGs to index (default 500)")
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="image cache folder")
    ap.add_argument("--model", default="ViT-B-32-256")
    ap.add_argument("--pretrained", default="none")
    ap.add_argument("--engine", default="auto", help="the engine to compare with torch")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0, help="decoder threads (0: auto)")
    ap.add_argument("--forward-seconds", type=float, default=8.0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    import torch

    folder = args.dir.expanduser()
    paths = ensure_images(folder, args.n)
    common = dict(model=args.model, pretrained=args.pretrained, device="cpu",
                  batch_size=args.batch, workers=args.workers, qdrant_url=None)
    torch_settings = CorpusSettings(**common, engine="torch")  # type: ignore[arg-type]
    engine_settings = CorpusSettings(**common, engine=args.engine)  # type: ignore[arg-type]
    ref = load_embedder(torch_settings)
    emb = load_embedder(engine_settings)
    workers = decode_workers(engine_settings, emb.device)
    flags = cpu_flags()
    print(f"{emb.name}: engine {emb.engine_name} (CPU: VNNI "
          f"{bool({'avx512_vnni', 'avx_vnni'} & flags)}, AVX-512 BF16 "
          f"{'avx512_bf16' in flags}), batch {args.batch}, threads {torch.get_num_threads()}, "
          f"cores {cpu_count()}, decoder threads {workers} (nice {ingest.DECODER_NICE}), "
          f"{len(paths)} JPEGs in {folder}", flush=True)

    batch = ref.batch([ref.prepare(decode(p, draft_size=ref.image_size)[0])
                       for p in paths[: args.batch]])
    fig: dict[str, float] = {}
    fig["forward_torch"] = forward_rate(ref, batch, args.forward_seconds)
    fig["forward_engine"] = forward_rate(emb, batch, args.forward_seconds)
    print(f"(a) forward only: torch {fig['forward_torch']:.1f} img/s, {emb.engine_name} "
          f"{fig['forward_engine']:.1f} img/s", flush=True)
    fig["decode"] = decode_only(emb, folder, workers, ingest.DECODER_NICE, args.batch)
    fig["decode_all_cores"] = decode_only(emb, folder, cpu_count(), 0, args.batch)
    print(f"(d) decode only: {fig['decode']:.1f} img/s with {workers} decoder thread(s), "
          f"{fig['decode_all_cores']:.1f} img/s with {cpu_count()}", flush=True)

    # engine, torch, engine: drift of a shared machine shows up as a spread between the two
    # engine runs instead of as a wrong ratio.
    e1, report, vec_engine = end_to_end(emb, engine_settings, folder)
    print(f"(b) end to end, {emb.engine_name}: {report.indexed} images, {e1:.1f} img/s "
          f"(model busy {report.embed_seconds:.1f}s)", flush=True)
    t, treport, vec_torch = end_to_end(ref, torch_settings, folder)
    print(f"(b) end to end, torch-fp32: {treport.indexed} images, {t:.1f} img/s "
          f"(model busy {treport.embed_seconds:.1f}s)", flush=True)
    e2, _, _ = end_to_end(emb, engine_settings, folder)
    print(f"(b) end to end, {emb.engine_name} again: {e2:.1f} img/s", flush=True)
    fig.update(end_to_end_torch=t, end_to_end_engine=(e1 + e2) / 2,
               min_cosine=min_cosine(vec_engine, vec_torch))
    e = fig["end_to_end_engine"]
    print(f"engine / torch end to end = {e / t:.2f}  (target >= 1.5)")
    print(f"engine end to end / decode only = {e / fig['decode']:.2f} with "
          f"{workers} decoder thread(s), {e / fig['decode_all_cores']:.2f} against all cores "
          f"(target >= 0.8 on a VNNI CPU)")
    print(f"end to end / forward only: torch {t / fig['forward_torch']:.2f}, "
          f"engine {e / fig['forward_engine']:.2f}")
    print(f"vectors: min cosine engine vs torch over {len(vec_torch)} images = "
          f"{fig['min_cosine']:.5f}  (target >= 0.995)")
    if args.json:
        args.json.write_text(json.dumps({
            "model": emb.name, "engine": emb.engine_name, "batch": args.batch,
            "cores": cpu_count(), "decoder_threads": workers, "n": report.indexed,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), **fig,
        }, indent=1))


if __name__ == "__main__":
    main()
