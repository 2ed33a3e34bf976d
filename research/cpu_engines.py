"""Image-tower throughput of each CPU engine SUMO could use, in one process, as ratios to
torch fp32 (the basis for ``SUMO_ENGINE=auto``'s rule in indexer/embedder/engine.py).

    python research/cpu_engines.py --model ViT-B-32-256 --seconds 8

Random weights (an architecture's cost does not depend on its weights); batch 32; threads =
the cores this process may use. Cosine: the minimum over the batch against torch fp32.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.embedder import cpu_count, load_embedder  # noqa: E402
from indexer.embedder import engine as eng  # noqa: E402
from indexer.settings import CorpusSettings  # noqa: E402


def rate(fn, x, seconds: float) -> float:  # type: ignore[no-untyped-def]
    fn(x)
    done, t0 = 0, time.perf_counter()
    while True:
        fn(x)
        done += len(x)
        if time.perf_counter() - t0 >= seconds and done >= 2 * len(x):
            return done / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="ViT-B-32-256")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    emb = load_embedder(CorpusSettings(model=args.model, pretrained="none", device="cpu",
                                       engine="torch"))
    threads = cpu_count()
    flags = eng.cpu_flags()
    print(f"{emb.name}, batch {args.batch}, {threads} threads, VNNI "
          f"{'avx512_vnni' in flags or 'avx_vnni' in flags}, bf16 {'avx512_bf16' in flags}, "
          f"AMX {'amx_bf16' in flags}", flush=True)
    x = eng.check_inputs(emb.image_size, emb.normalize)
    x = x.repeat((args.batch + len(x) - 1) // len(x), 1, 1, 1)[: args.batch].numpy()
    import torch

    ref = emb.encode_tensors(torch.from_numpy(x))
    runs = {"torch fp32": lambda a: emb.encode_tensors(torch.from_numpy(a))}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        eng.export_onnx(emb.model.visual, emb.image_size, fp32)
        eng.quantize_int8(fp32, int8)
        runs["ORT fp32"] = eng.ort_session(fp32, threads)
        runs["ORT int8 (MatMul/Gemm)"] = eng.ort_session(int8, threads)
        runs["OpenVINO f32"] = eng.openvino_model(fp32, threads, "f32")
        if "avx512_bf16" in flags or "amx_bf16" in flags:
            runs["OpenVINO bf16"] = eng.openvino_model(fp32, threads, "bf16")
        runs["OpenVINO on the ORT int8 model"] = eng.openvino_model(int8, threads, "f32")
        base = 0.0
        for name, fn in runs.items():
            r = rate(fn, x, args.seconds)
            base = base or r
            cos = eng.min_cosine(fn(x), ref)
            print(f"| {name} | {r:.1f} img/s | {r / base:.2f}x | cosine {cos:.5f} |",
                  flush=True)
        # torch again: drift of a shared machine shows up here
        r = rate(runs["torch fp32"], x, args.seconds)
        print(f"| torch fp32 (again) | {r:.1f} img/s | {r / base:.2f}x | |", flush=True)


if __name__ == "__main__":
    main()
