"""Faster engines for the image tower on a CPU: ONNX Runtime int8 and OpenVINO.

The image tower is exported from the loaded open_clip model to ONNX once per model and
weights (cached on disk, keyed by both), quantized, and checked at every load against the
torch model on a few inputs: below ``MIN_COSINE`` the indexer keeps torch and says so. The
text tower always stays torch (queries are single texts; the model is loaded anyway).

Which engine ``auto`` picks is a rule from ``research/cpu_engines.py``'s measurements
(docs/indexing.md, "Engines"): ONNX Runtime with int8 MatMul/Gemm was the fastest engine,
at cosine 0.9996 to torch fp32.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexer.errors import SumoError

log = logging.getLogger(__name__)

ENGINES = ("torch", "onnx", "openvino", "auto")
# Bump when the export or quantization changes: cached files of an older recipe are rebuilt.
RECIPE_VERSION = 1
OPSET = 17
MIN_COSINE = 0.995  # an engine whose vectors are further from torch fp32 is refused
CHECK_IMAGES = 4  # inputs compared with torch at load
# Only the matrix products: cosine 0.9996 to fp32 (docs/indexing.md); other op types add
# little speed for more error.
QUANTIZED_OPS = ("MatMul", "Gemm")

HAS_ONNXRUNTIME = importlib.util.find_spec("onnxruntime") is not None
HAS_ONNX = importlib.util.find_spec("onnx") is not None
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
ORT_HINT = "pip install onnxruntime onnx  (dependencies of sumo)"
INSTALL_HINT = "pip install 'sumo[openvino]'"

Vectors = NDArray[np.float32]


class EngineUnavailable(SumoError):
    """The engine asked for cannot run here (package missing, export failed, check failed)."""


@dataclass(frozen=True)
class Engine:
    """A compiled image tower: float32 (N, 3, H, W) model input -> (N, dim) unit vectors."""

    name: str  # "onnx-int8", "openvino-fp32", ...: shown in logs and the summary
    run: Callable[[NDArray[np.float32]], Vectors]
    min_cosine: float  # measured against torch fp32 at load
    exported: bool  # False when the cached file was reused

    def __call__(self, x: NDArray[np.float32]) -> Vectors:
        out = self.run(np.ascontiguousarray(x, dtype=np.float32))
        return np.ascontiguousarray(out, dtype=np.float32)


def cache_root() -> Path:
    """``$SUMO_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/sumo/engines`` (``~/.cache/...``)."""
    if env := os.environ.get("SUMO_ENGINE_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "sumo" / "engines"


def cache_key(model_name: str, weights_id: str, image_size: tuple[int, int]) -> str:
    """Folder name for one model + weights + export recipe."""
    raw = json.dumps([model_name, weights_id, list(image_size), RECIPE_VERSION, OPSET,
                      list(QUANTIZED_OPS)])
    stem = model_name.split("/")[0].replace(os.sep, "_")
    return f"{stem}-{hashlib.sha256(raw.encode()).hexdigest()[:16]}"


def _atomic_write(target: Path, produce: Callable[[Path], object]) -> None:
    """Build ``target`` in a temporary file beside it, then rename: concurrent loads and a
    killed export never leave a half-written model behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        produce(Path(tmp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export_onnx(visual: Any, image_size: tuple[int, int], target: Path) -> None:
    """The image tower (with the final L2 normalisation) as ONNX, batch size dynamic."""
    import torch

    class Tower(torch.nn.Module):
        def __init__(self, visual: Any) -> None:
            super().__init__()
            self.visual = visual

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.normalize(self.visual(x), dim=-1)

    dummy = torch.zeros(2, 3, *image_size)

    def produce(tmp: Path) -> None:
        # The TorchScript exporter: no onnxscript dependency, and it handles open_clip's
        # towers as they are. Its deprecation warning is not the user's concern. Gradients
        # stay enabled so nn.MultiheadAttention takes its plain path: its no-grad fast path
        # is one fused op that ONNX has no translation for.
        with warnings.catch_warnings(), torch.inference_mode(False), torch.enable_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Tower(visual).eval(), (dummy,), str(tmp), input_names=["pixels"],
                output_names=["vectors"], opset_version=OPSET, dynamo=False,
                dynamic_axes={"pixels": {0: "n"}, "vectors": {0: "n"}},
            )

    _atomic_write(target, produce)


def quantize_int8(fp32: Path, target: Path) -> None:
    """Dynamic int8 quantization of the matrix products (weights int8 per tensor,
    activations quantized per batch at run time). ``reduce_range`` (7-bit weights) avoids
    the int16 saturation of AVX2's VPMADDUBSW; with VNNI it costs nothing measurable."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def produce(tmp: Path) -> None:
        # The quantizer advises pre-processing on the root logger; the check at load is what
        # decides whether the result is good enough.
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(str(fp32), str(tmp), op_types_to_quantize=list(QUANTIZED_OPS),
                             reduce_range=True, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)

    _atomic_write(target, produce)


def ort_session(path: Path, threads: int) -> Callable[[NDArray[np.float32]], Vectors]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads sleep instead of spinning, so decoder threads get the gaps (the
    # OMP_WAIT_POLICY=PASSIVE of the torch path).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(x: NDArray[np.float32]) -> Vectors:
        out: Vectors = sess.run(["vectors"], {"pixels": x})[0]
        return out

    return run


def openvino_model(path: Path, threads: int, precision: str
                   ) -> Callable[[NDArray[np.float32]], Vectors]:
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": precision}
    compiled = core.compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()

    def run(x: NDArray[np.float32]) -> Vectors:
        request.infer({0: x})
        out: Vectors = np.array(request.get_output_tensor(0).data, copy=True)
        return out

    return run


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def openvino_precision() -> str:
    """bf16 where the CPU computes it natively (AVX-512 BF16 or AMX), else f32."""
    flags = cpu_flags()
    return "bf16" if {"avx512_bf16", "amx_bf16"} & flags else "f32"


def resolve(requested: str, device: str) -> str:
    """The engine to build: ``auto`` is ONNX Runtime int8 on a CPU when installed, else
    torch; on a GPU always torch (see ``attach_engine`` for its fp16)."""
    if requested not in ENGINES:
        raise EngineUnavailable(f"unknown engine {requested!r} (SUMO_ENGINE): one of "
                                f"{', '.join(ENGINES)}")
    if requested == "auto":
        return "onnx" if device == "cpu" and HAS_ONNXRUNTIME and HAS_ONNX else "torch"
    if requested != "torch" and device != "cpu":
        raise EngineUnavailable(f"engine {requested} runs on the CPU only, the model is on "
                                f"{device}; use SUMO_ENGINE=torch or auto")
    return requested


def build(kind: str, visual: Any, image_size: tuple[int, int], model_name: str,
          weights_id: str, threads: int) -> tuple[str, Callable[[NDArray[np.float32]], Vectors],
                                                   bool]:
    """(engine name, runner, whether it was exported now) for ``onnx`` or ``openvino``."""
    if not HAS_ONNX or (kind == "onnx" and not HAS_ONNXRUNTIME):
        raise EngineUnavailable(f"engine {kind} needs onnx and onnxruntime: {ORT_HINT}")
    if kind == "openvino" and not HAS_OPENVINO:
        raise EngineUnavailable(f"engine openvino needs openvino: {INSTALL_HINT}")
    folder = cache_root() / cache_key(model_name, weights_id, image_size)
    fp32, int8 = folder / "image-fp32.onnx", folder / "image-int8.onnx"
    exported = False
    try:
        if not fp32.is_file():
            log.info("exporting the image tower of %s to %s (once per model)", model_name,
                     folder)
            export_onnx(visual, image_size, fp32)
            about = json.dumps({"model": model_name, "weights": weights_id,
                                "recipe": RECIPE_VERSION})
            _atomic_write(folder / "model.json", lambda tmp: tmp.write_text(about))
            exported = True
        if kind == "onnx":
            if not int8.is_file():
                quantize_int8(fp32, int8)
                exported = True
            return "onnx-int8", ort_session(int8, threads), exported
        precision = openvino_precision()
        return f"openvino-{precision}", openvino_model(fp32, threads, precision), exported
    except EngineUnavailable:
        raise
    except Exception as exc:  # exporters and runtimes raise anything; torch still works
        raise EngineUnavailable(f"engine {kind} could not be built: {exc}") from exc


def min_cosine(a: Vectors, b: Vectors) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.min(np.sum(a * b, axis=1)))


def check_inputs(image_size: tuple[int, int], normalize: Callable[[Any], Any]) -> Any:
    """A few deterministic photo-like model inputs: smooth colour fields with noise and
    edges, through the model's own normalisation (pure noise is not what CLIP sees)."""
    import torch

    rng = np.random.default_rng(0)
    h, w = image_size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    images = []
    for _ in range(CHECK_IMAGES):
        coef = rng.uniform(-200, 200, (3, 3)).astype(np.float32)
        img = np.stack([coef[c, 0] * x + coef[c, 1] * y + coef[c, 2] * x * y
                        for c in range(3)], axis=-1) + rng.uniform(0, 255, 3)
        img += rng.normal(0, 10, img.shape)
        r0, c0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        img[r0:r0 + h // 3, c0:c0 + w // 3] = rng.uniform(0, 255, 3)
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    return normalize(torch.from_numpy(np.stack(images)))
