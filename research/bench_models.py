"""Which CLIP should SUMO default to? CPU cost measured here, quality as published.

Measures forward-only image-tower throughput on this CPU (random weights: the cost of an
architecture does not depend on its weights), batch 32, after a warm-up batch, with the
same loader ``sumo index`` uses (MobileCLIP towers re-parameterised). Prints a table next to
published zero-shot figures so that "retrieval quality per CPU-second" can be judged.

    python research/bench_models.py                    # all candidates, ~10 s each
    python research/bench_models.py --models ViT-B-32 MobileCLIP-S2 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from indexer.embedder import cpu_count, load_embedder
from indexer.settings import CorpusSettings

# name: (tag, ImageNet-1k zero-shot top-1 %, average over the 38 DataComp datasets %, source)
# Sources: open_clip docs/openclip_results.csv (mlfoundations/open_clip) for the open_clip
# trained models; apple/ml-mobileclip README and the MobileCLIP2 model cards on Hugging Face
# for MobileCLIP and MobileCLIP2.
PUBLISHED: dict[str, tuple[str, float, float, str]] = {
    "ViT-B-32": ("laion2b_s34b_b79k", 66.6, 56.9, "openclip_results.csv"),
    "ViT-B-32-256": ("datacomp_s34b_b86k", 72.8, 60.9, "openclip_results.csv"),
    "ViT-B-16": ("datacomp_xl_s13b_b90k", 73.5, 61.5, "openclip_results.csv"),
    "MobileCLIP-S1": ("datacompdr", 72.6, 61.3, "ml-mobileclip README"),
    "MobileCLIP-S2": ("datacompdr", 74.4, 63.7, "ml-mobileclip README"),
    "MobileCLIP2-S0": ("dfndr2b", 71.5, 59.7, "MobileCLIP2 model card"),
    "MobileCLIP2-S2": ("dfndr2b", 77.2, 64.1, "MobileCLIP2 model card"),
}


def forward_rate(model_name: str, batch: int, seconds: float) -> tuple[float, tuple[int, int]]:
    emb = load_embedder(CorpusSettings(model=model_name, pretrained="none", device="cpu",
                                       qdrant_url=None))
    x = torch.randn(batch, 3, *emb.image_size)
    emb.encode_tensors(x)  # warm-up
    done, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds or done < 2 * batch:
        emb.encode_tensors(x)
        done += batch
    return done / elapsed, emb.image_size


def main() -> None:
    ap = argparse.ArgumentParser(description="CPU throughput of candidate CLIP image towers")
    ap.add_argument("--models", nargs="*", default=list(PUBLISHED))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_count()} cores, "
          f"batch {args.batch}, random weights")
    rows = []
    base = None
    for name in args.models:
        rate, size = forward_rate(name, args.batch, args.seconds)
        tag, in1k, avg38, src = PUBLISHED.get(name, ("?", float("nan"), float("nan"), "-"))
        base = base or rate
        rows.append({"model": name, "tag": tag, "input": size[0], "img_s": rate,
                     "rel_speed": rate / base, "imagenet": in1k, "avg38": avg38,
                     "source": src})
        print(f"{name:16} {tag:22} {size[0]:>4}px {rate:7.2f} img/s  x{rate / base:4.2f}  "
              f"IN1k {in1k:4.1f}  avg38 {avg38:4.1f}  ({src})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
