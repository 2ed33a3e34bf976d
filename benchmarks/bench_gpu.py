"""The checks SUMO can only do on a CUDA GPU, in one process, printing the figures.

1. **Embedding throughput** (random weights, ``pretrained=none``: an architecture's cost does
   not depend on its weights): images/s of the CLIP image tower at each batch size and
   precision with the batch already on the GPU (the model alone), of
   ``Embedder.encode_tensors`` on a preprocessed fp32 batch in host memory (how ``sumo
   index`` fed the GPU before), and of ``Embedder.encode_prepared`` on uint8 arrays (how it
   does now: pinned uint8 copied, normalised on the GPU); numpy vectors out, fp32, the
   embedder's only precision. Also how far CUDA vectors are from CPU vectors of the same
   seeded model (float and uint8 paths), and fp16 from fp32.
2. **Indexing end to end** on generated photo-sized JPEGs into a fresh embedded (Edge)
   store with the embedder on the GPU, as a ratio to ``encode_tensors`` on the same batch
   size in the same process (``benchmarks/bench_index.py``'s measure, which is CPU-only),
   for the current path (decoder processes, fp16 image tower) and, in the same process,
   the earlier ones (``VARIANTS``); plus the reader threads alone (read, hash, decode,
   resize). Target: 1,500 img/s end to end with ViT-B-32-256 on one H100/H200.
3. **The gap filler's diffusers SDXL path**: ``tests/recommender/test_generate.py`` run
   in-process with the generator's device forced to the GPU (those tests pin ``cpu``), then
   the tiny random SDXL pipeline from that file timed on the CPU and on the GPU (fp16 there,
   as ``recommender.gaps.generate.pick_device`` chooses).

    python benchmarks/bench_gpu.py --require-cuda --json gpu.json     # on a GPU machine
    python benchmarks/bench_gpu.py --model sumo-tiny --n 40 --seconds 0.5   # CPU smoke run

Without a GPU everything runs on the CPU (``--device auto``), which only checks the script.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

# indexer.embedder first: it sets OMP_WAIT_POLICY before torch is imported, as `sumo` does.
from indexer.embedder import Embedder, cpu_count, load_embedder  # noqa: E402
from indexer.embedder.model import pick_device  # noqa: E402
from indexer.settings import CorpusSettings  # noqa: E402

DTYPES = ("fp32", "fp32-tf32", "fp16")


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def rate(fn: Callable[[], Any], per_call: int, seconds: float, device: str,
         warmup: int = 2) -> float:
    """Items/s of ``fn`` (``per_call`` items each) over at least ``seconds``, after warm-up."""
    for _ in range(warmup):
        fn()
    sync(device)
    done, t0 = 0, time.perf_counter()
    while True:
        fn()
        sync(device)
        done += per_call
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and done >= 3 * per_call:
            return done / elapsed


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    import torch

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled or saved[1]
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def environment(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "python": sys.version.split()[0], "torch": torch.__version__, "device": device,
        "cores": cpu_count(), "torch_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        env.update(card=props.name, sms=props.multi_processor_count,
                   memory_gib=round(props.total_memory / 2**30, 1),
                   capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda)
    else:
        env["card"] = "none (CPU)"
    return env


# 1. Embedding throughput ------------------------------------------------------------------

def forward_figures(emb: Embedder, device: str, batches: list[int], dtypes: list[str],
                    seconds: float) -> list[dict[str, Any]]:
    import torch

    rows: list[dict[str, Any]] = []
    half = copy.deepcopy(emb.model).half() if "fp16" in dtypes else None
    for b in batches:
        host = torch.randn(b, 3, *emb.image_size)  # a preprocessed batch, as emb.batch makes
        for dtype in dtypes:
            model = half if dtype == "fp16" else emb.model
            x = host.to(device, torch.float16 if dtype == "fp16" else torch.float32)

            def forward(model: Any = model, x: Any = x) -> Any:
                with torch.inference_mode():
                    return model.encode_image(x, normalize=True)

            with tf32(dtype == "fp32-tf32"):
                r = rate(forward, b, seconds, device)
            rows.append({"what": "model forward, batch on device", "batch": b, "dtype": dtype,
                         "img_s": r})
            print(f"  batch {b:4d} {dtype:9s} model forward (batch on {device}): "
                  f"{r:9.1f} img/s", flush=True)

        def record(what: str, label: str, fn: Any, b: int = b) -> None:
            r = rate(fn, b, seconds, device)
            rows.append({"what": what, "batch": b, "dtype": "fp32", "img_s": r})
            print(f"  batch {b:4d} fp32      {label}: {r:9.1f} img/s", flush=True)

        pixels = random_pixels(emb, b)
        record("encode_tensors, host fp32 batch -> numpy",
               "encode_tensors (host fp32 batch in, numpy out)",
               lambda host=host: emb.encode_tensors(host))
        record("encode_prepared, host uint8 HWC arrays -> numpy",
               "encode_prepared (uint8 arrays in, as sumo index)",
               lambda pixels=pixels: emb.encode_prepared(pixels))
    del half
    return rows


def random_pixels(emb: Embedder, n: int, seed: int = 0) -> list[Any]:
    """``n`` images as ``Embedder.prepare`` returns them: uint8 (H, W, 3) arrays."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*emb.image_size, 3), dtype=np.uint8) for _ in range(n)]


def parity(emb: Embedder, settings: CorpusSettings, pixels: list[Any]) -> dict[str, float]:
    """Cosine of CUDA vs CPU vectors (same seeded random model), and fp16 vs fp32; and of
    the indexer's uint8 path on the device (``encode_prepared``) vs the CPU's float path."""
    import numpy as np
    import torch

    torch.manual_seed(1)
    x = torch.randn(8, 3, *emb.image_size)
    on_dev = emb.encode_tensors(x)
    threads = torch.get_num_threads()  # process-wide: the CPU model must not change it
    try:
        cpu = load_embedder(settings.model_copy(update={"device": "cpu"}))
    finally:
        torch.set_num_threads(threads)
    on_cpu = cpu.encode_tensors(x)
    half = copy.deepcopy(emb.model).half()
    with torch.inference_mode():
        h = half.encode_image(x.to(emb.device, torch.float16), normalize=True).float().cpu()
    u8_dev = emb.encode_prepared(pixels)
    float_cpu = cpu.encode_tensors(cpu.batch(pixels))  # the CPU path, float32 on the host
    float_dev = emb.encode_tensors(emb.batch(pixels))  # the old device path
    out = {
        "cos_device_vs_cpu_min": float(np.min(np.sum(on_dev * on_cpu, axis=1))),
        "cos_fp16_vs_fp32_min": float(np.min(np.sum(h.numpy() * on_dev, axis=1))),
        "cos_uint8_device_vs_float_cpu_min": float(np.min(np.sum(u8_dev * float_cpu, axis=1))),
        "cos_uint8_device_vs_float_device_min": float(
            np.min(np.sum(u8_dev * float_dev, axis=1))),
        "same_space_name": float(cpu.name == emb.name),
    }
    print(f"  vectors {emb.device} vs cpu: min cosine {out['cos_device_vs_cpu_min']:.6f}; "
          f"fp16 vs fp32 on {emb.device}: min cosine {out['cos_fp16_vs_fp32_min']:.6f}",
          flush=True)
    print(f"  {len(pixels)} images, uint8 path on {emb.device} vs float path: min cosine "
          f"{out['cos_uint8_device_vs_float_cpu_min']:.7f} (cpu), "
          f"{out['cos_uint8_device_vs_float_device_min']:.7f} ({emb.device})", flush=True)
    return out


# 2. Indexing end to end -------------------------------------------------------------------

# How ``sumo index`` feeds the model, earlier paths included; run in the same process as
# the current code so before/after come from one machine. All: uint8 pinned batches
# normalised on the device, capped torch threads.
VARIANTS = {
    "threads-fp32": "decoder threads, fp32 image tower (before)",
    "processes-fp32": "decoder processes, fp32 image tower",
    "default": "decoder processes, fp16 image tower checked against fp32 (SUMO_ENGINE=auto)",
}


@contextlib.contextmanager
def variant(emb: Embedder, name: str) -> Iterator[dict[str, Any]]:
    """Put ``emb`` in the variant's precision; yields the settings the variant changes."""
    from indexer.embedder import engine as engines
    from indexer.embedder.model import use_fp16

    if name == "default" and emb.engine is None:
        x = engines.check_inputs(emb.image_size, emb.normalize)
        use_fp16(emb, x, emb.encode_tensors(x))  # as load_embedder does on CUDA
    try:
        yield {"decode": "threads" if name == "threads-fp32" else "processes"}
    finally:
        emb.model.visual.float()


def index_figures(emb: Embedder, settings: CorpusSettings, paths: list[Path], folder: Path,
                  seconds: float, repeat: int, variants: list[str],
                  worker_counts: list[int]) -> dict[str, Any]:
    from bench_index import decode_only, decode_rate, forward_rate

    from indexer.images import decode
    from indexer.ingest import decode_workers, index_into
    from indexer.store.edge import EdgeStore

    prepared = [emb.prepare(decode(p, draft_size=emb.image_size)[0])
                for p in paths[: settings.batch_size]]
    prepared = (prepared * (settings.batch_size // len(prepared) + 1))[: settings.batch_size]
    batch = emb.batch(prepared)
    sample = paths[: min(40, len(paths))]
    dec_draft = decode_rate(emb, sample, draft=True)
    counts = [w or decode_workers(settings, emb.device) for w in worker_counts]
    print(f"  {len(paths)} JPEGs, batch {settings.batch_size}, decoder threads {counts}; "
          f"decode+preprocess 1 thread (draft): {dec_draft:.1f} img/s", flush=True)
    readers = {w: decode_only(emb, folder, w, 0, settings.batch_size) for w in counts}
    for w, r in readers.items():
        print(f"  readers alone (read, hash, decode, resize), {w} threads: {r:.1f} img/s",
              flush=True)

    def ceilings() -> tuple[float, float]:
        with variant(emb, "processes-fp32"):
            u8 = rate(lambda: emb.encode_prepared(prepared), len(prepared), seconds,
                      emb.device)
        return forward_rate(emb, batch, seconds), u8

    fp32_before, u8_before = ceilings()
    plan = [(v, counts[0]) for v in variants if v != "default"]
    plan += [("default", w) for w in counts] if "default" in variants else []
    runs: list[dict[str, Any]] = []
    for i in range(repeat):  # interleaved, so drift in the machine's load hits all alike
        for name, workers in plan:
            with tempfile.TemporaryDirectory() as tmp, variant(emb, name) as changes:
                run_settings = settings.model_copy(update={"workers": workers, **changes})
                store = EdgeStore(Path(tmp) / "data")
                try:
                    t0 = time.perf_counter()
                    report = index_into(store, run_settings, [folder], embedder=emb,
                                        progress=False)
                    elapsed = time.perf_counter() - t0
                finally:
                    store.close()
            batches = -(-report.indexed // settings.batch_size)
            runs.append({"variant": name, "engine": report.engine, "workers": workers,
                         "seconds": elapsed,
                         "img_s": report.indexed / elapsed,
                         "model_busy_s": report.embed_seconds,
                         "model_ms_per_batch": 1000 * report.embed_seconds / max(1, batches)})
            print(f"  (b) {name:17s} {workers:2d} decoders, run {i + 1}: {report.indexed} "
                  f"images in {elapsed:.2f}s = {report.indexed / elapsed:7.1f} img/s (model "
                  f"busy {report.embed_seconds:.2f}s, {runs[-1]['model_ms_per_batch']:.1f} "
                  f"ms/batch)", flush=True)
    fp32_after, u8_after = ceilings()
    fp32 = (fp32_before + fp32_after) / 2
    u8 = (u8_before + u8_after) / 2
    best: dict[str, float] = {}
    for run in runs:
        key = (run["variant"] if run["workers"] == counts[0]
               else f"{run['variant']}@{run['workers']}")
        best[key] = max(best.get(key, 0.0), run["img_s"])
    print(f"  (a) encode_tensors, fp32 host batch: {fp32_before:.1f} / {fp32_after:.1f} img/s; "
          f"encode_prepared, uint8 arrays: {u8_before:.1f} / {u8_after:.1f} img/s "
          f"(before/after)", flush=True)
    for key, e2e in best.items():
        print(f"  best {key:20s} {e2e:7.1f} img/s: ratio to fp32 encode_tensors "
              f"{e2e / fp32:.3f}, to uint8 encode_prepared {e2e / u8:.3f}, to readers alone "
              f"{e2e / readers[counts[0]]:.3f}", flush=True)
    head = best.get("default", max(best.values()) if best else 0.0)
    return {"n": len(paths), "batch": settings.batch_size, "decoder_threads": counts[0],
            "decode_draft_1thread": dec_draft, "decode_only": readers,
            "forward_before": fp32_before, "forward_after": fp32_after,
            "encode_prepared_before": u8_before, "encode_prepared_after": u8_after,
            "variants": {v: VARIANTS[v] for v in variants}, "runs": runs, "best": best,
            "end_to_end": head, "ratio": head / fp32, "ratio_uint8": head / u8,
            "ratios": {k: v / fp32 for k, v in best.items()}}


# 3. The diffusers SDXL path ---------------------------------------------------------------

def generate_tests(target: str) -> dict[str, Any]:
    """tests/recommender/test_generate.py with every pipeline it loads put on ``target``."""
    import pytest
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from recommender.gaps import generate as gen

    # Their loggers make a stderr handler on first use: make it now, on the real stderr,
    # not on pytest's capture file (closed once pytest.main returns).
    diffusers_logging.get_verbosity()
    transformers_logging.get_verbosity()
    original = gen.pick_device
    seen: list[str] = []

    def forced(device: str = "auto") -> tuple[str, Any]:
        dev, dtype = original(target)
        seen.append(f"{dev}/{str(dtype).removeprefix('torch.')}")
        return dev, dtype

    gen.pick_device = forced
    try:
        code = pytest.main([str(ROOT / "tests" / "recommender" / "test_generate.py"), "-q",
                            "-p", "no:cacheprovider", "--disable-warnings", "-rfE",
                            "--rootdir", str(ROOT)])
    finally:
        gen.pick_device = original
    out = {"exit_code": int(code), "passed": int(code) == 0, "pipelines_on": sorted(set(seen)),
           "pipelines_loaded": len(seen)}
    print(f"  pytest exit {int(code)}; pipelines loaded: {len(seen)} on {sorted(set(seen))}",
          flush=True)
    return out


def generate_timing(device: str, size: int, steps: int, per_prompt: int,
                    seconds: float) -> list[dict[str, Any]]:
    import numpy as np
    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from recommender.gaps import generate as gen

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    spec = importlib.util.spec_from_file_location(
        "sumo_test_generate", ROOT / "tests" / "recommender" / "test_generate.py")
    assert spec is not None and spec.loader is not None
    tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tests.tiny_sdxl(Path(tmp) / "build").save_pretrained(Path(tmp) / "pipe")
        for dev in dict.fromkeys(["cpu", device]):
            pipe = gen.load_pipeline(Path(tmp) / "pipe", device=dev)
            where = f"{pipe.device}/{str(pipe.unet.dtype).removeprefix('torch.')}"

            def call(pipe: Any = pipe) -> Any:
                g = torch.Generator("cpu").manual_seed(0)
                with torch.inference_mode():
                    return pipe(prompt="watercolor painting of a lighthouse",
                                num_inference_steps=steps, guidance_scale=0.0, height=size,
                                width=size, num_images_per_prompt=per_prompt, generator=g,
                                output_type="np").images

            images = call()
            finite = bool(np.isfinite(images).all())
            r = rate(call, per_prompt, seconds, dev, warmup=1)
            t0 = time.perf_counter()
            saved = gen.generate(pipe, {"r1": "a red bicycle"}, Path(tmp) / f"out-{dev}",
                                 gen.GenerateOptions(per_prompt=per_prompt, steps=steps,
                                                     size=size))
            wall = time.perf_counter() - t0
            rows.append({"pipeline_on": where, "size": size, "steps": steps,
                         "per_prompt": per_prompt, "pipe_img_s": r, "finite": finite,
                         "generate_call_s": wall, "saved": len(saved["r1"])})
            print(f"  tiny SDXL on {where:14s} {size}px {steps} steps x{per_prompt}: "
                  f"pipeline {r:8.2f} img/s; gen.generate (incl. PNG writes) {wall:.2f}s; "
                  f"output finite: {finite}", flush=True)
            del pipe
    if len(rows) == 2:
        print(f"  GPU/CPU speed-up of the tiny pipeline: "
              f"x{rows[1]['pipe_img_s'] / rows[0]['pipe_img_s']:.1f}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description="SUMO's GPU checks: embedding, indexing, SDXL path")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cuda, cpu")
    ap.add_argument("--require-cuda", action="store_true", help="fail unless CUDA is used")
    ap.add_argument("--model", default=CorpusSettings.model_fields["model"].default)
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    ap.add_argument("--seconds", type=float, default=3.0, help="per throughput figure")
    ap.add_argument("--n", type=int, default=600, help="JPEGs to index (0: skip indexing)")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "sumo-bench-gpu")
    ap.add_argument("--index-batch", type=int, default=64)
    ap.add_argument("--workers", type=int, nargs="+", default=[0],
                    help="decoder threads (0: auto); the first for every variant, the "
                         "others for 'default' only")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                    help="how the indexer feeds the model (see VARIANTS)")
    ap.add_argument("--repeat", type=int, default=2, help="indexing runs (best is used)")
    ap.add_argument("--gen-size", type=int, default=256)
    ap.add_argument("--gen-steps", type=int, default=4)
    ap.add_argument("--gen-per-prompt", type=int, default=2)
    ap.add_argument("--skip-generate", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    device = pick_device(args.device)
    if args.require_cuda and not device.startswith("cuda"):
        sys.exit(f"--require-cuda: device resolved to {device!r}")
    paths: list[Path] = []
    if args.n > 0:  # before any model is on the GPU: the generator forks worker processes
        from make_images import ensure_images

        t0 = time.perf_counter()
        paths = ensure_images(args.dir, args.n)
        print(f"{len(paths)} JPEGs ready in {time.perf_counter() - t0:.1f}s", flush=True)
    figures: dict[str, Any] = {"env": environment(device), "model": f"{args.model}/none"}
    print(json.dumps(figures["env"]), flush=True)

    # engine=torch: fp32 as loaded, so section 1's "fp32" is fp32; the "default" indexing
    # variant applies the fp16 tower as SUMO_ENGINE=auto does on CUDA.
    settings = CorpusSettings(model=args.model, pretrained="none", device=args.device,
                              batch_size=args.index_batch, workers=args.workers[0],
                              qdrant_url=None, engine="torch")
    t0 = time.perf_counter()
    emb = load_embedder(settings)
    assert emb.device == device, (emb.device, device)
    print(f"\n[1] {emb.name} on {emb.device} (loaded in {time.perf_counter() - t0:.1f}s), "
          f"input {emb.image_size[0]}px, torch CPU threads {torch_threads()}", flush=True)
    figures["forward"] = forward_figures(emb, device, args.batches, args.dtypes, args.seconds)
    if paths:
        from indexer.images import decode

        pixels = [emb.prepare(decode(p, draft_size=emb.image_size)[0]) for p in paths[:16]]
    else:
        pixels = random_pixels(emb, 16)
    figures["parity"] = parity(emb, settings, pixels)

    if paths:
        print(f"\n[2] sumo index end to end on {device}", flush=True)
        figures["index"] = index_figures(emb, settings, paths, args.dir, args.seconds,
                                         args.repeat, args.variants, args.workers)
    del emb
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()

    if not args.skip_generate:
        print(f"\n[3] diffusers SDXL path: tests/recommender/test_generate.py on {device}",
              flush=True)
        figures["generate_tests"] = generate_tests(device)
        figures["generate_timing"] = generate_timing(
            device, args.gen_size, args.gen_steps, args.gen_per_prompt, args.seconds)

    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    ok = figures.get("generate_tests", {}).get("passed", True)
    print(f"\ndone: {'all checks passed' if ok else 'test_generate.py FAILED'}", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
