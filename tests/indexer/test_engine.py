"""The image tower's CPU engines (ONNX Runtime int8, OpenVINO) and the fp16 tower.

Built from the shipped ``sumo-tiny`` architecture with its seeded random weights: exported
to ONNX at load, cached per weights hash, and checked against torch fp32 before use.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from indexer.embedder import Embedder, load_embedder
from indexer.embedder import engine as engines
from indexer.embedder import model as model_mod
from indexer.settings import CorpusSettings

TINY = dict(model="sumo-tiny", pretrained="none", qdrant_url=None, device="cpu")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "engines"
    monkeypatch.setenv("SUMO_ENGINE_CACHE", str(folder))
    return folder


def _load(engine: str) -> Embedder:
    return load_embedder(CorpusSettings(**TINY, engine=engine))  # type: ignore[arg-type]


def _images(textured: Callable[..., Image.Image], n: int = 8) -> list[Image.Image]:
    return [textured(i, (90 + 13 * i, 70 + 9 * (i % 4))) for i in range(n)]


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1)))


def test_engine_setting_and_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUMO_ENGINE", "openvino")
    assert CorpusSettings().engine == "openvino"
    monkeypatch.setenv("SUMO_ENGINE", "tensorrt")
    with pytest.raises(ValidationError):
        CorpusSettings()
    assert CorpusSettings(engine="auto").engine == "auto"
    # The stated rule: ONNX Runtime int8 on a CPU when installed, torch otherwise.
    assert engines.resolve("auto", "cpu") == "onnx"
    assert engines.resolve("auto", "cuda") == "torch"
    assert engines.resolve("torch", "cpu") == "torch"
    with pytest.raises(engines.EngineUnavailable, match="CPU only"):
        engines.resolve("onnx", "cuda")
    monkeypatch.setattr(engines, "HAS_ONNXRUNTIME", False)
    assert engines.resolve("auto", "cpu") == "torch"


def test_onnx_int8_vectors_match_torch_and_the_export_is_cached(
    cache: Path, textured: Callable[..., Image.Image]
) -> None:
    ref = _load("torch")
    assert ref.engine is None and ref.engine_name == "torch-fp32"
    first = _load("onnx")
    assert first.engine is not None and first.engine_name == "onnx-int8"
    assert first.engine.exported and first.engine.min_cosine >= engines.MIN_COSINE
    files = sorted(cache.rglob("*.onnx"))
    assert [f.name for f in files] == ["image-fp32.onnx", "image-int8.onnx"]
    stamps = [f.stat().st_mtime_ns for f in files]

    images = _images(textured)
    want = ref.encode_images(images)
    got = first.encode_images(images)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert _min_cosine(got, want) >= 0.995
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # Different pictures stay apart: agreement above is not a constant vector.
    assert (got @ got.T)[np.triu_indices(len(images), 1)].max() < 0.9999
    # Texts stay on torch: the same text vectors as the torch embedder.
    np.testing.assert_array_equal(first.encode_texts(["a cat"]), ref.encode_texts(["a cat"]))

    second = _load("auto")  # auto picks the same engine here, from the cache
    assert second.engine is not None and not second.engine.exported
    assert [f.stat().st_mtime_ns for f in sorted(cache.rglob("*.onnx"))] == stamps
    np.testing.assert_allclose(second.encode_images(images), got, atol=1e-6)


def test_cache_key_follows_the_weights(tiny_embedder: Embedder) -> None:
    visual = copy.deepcopy(tiny_embedder.model.visual)
    before = model_mod.weights_hash(visual)
    assert model_mod.weights_hash(visual) == before
    with torch.no_grad():
        next(visual.parameters()).add_(1e-3)
    after = model_mod.weights_hash(visual)
    assert after != before
    size = tiny_embedder.image_size
    assert engines.cache_key("m/none", before, size) != engines.cache_key("m/none", after, size)
    assert engines.cache_key("m/none", before, size) == engines.cache_key("m/none", before, size)


def test_failed_check_keeps_torch_with_a_warning(
    cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(engines, "MIN_COSINE", 1.5)  # no engine can pass this
    with caplog.at_level(logging.WARNING, logger="indexer.embedder.model"):
        emb = _load("onnx")
    assert emb.engine is None and emb.engine_name == "torch-fp32"
    assert any("stays on torch" in r.getMessage() and "onnx-int8" in r.getMessage()
               for r in caplog.records)


def test_missing_runtime_is_an_error_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "HAS_ONNXRUNTIME", False)
    with pytest.raises(engines.EngineUnavailable, match="pip install"):
        _load("onnx")
    assert _load("auto").engine is None  # auto just keeps torch


@pytest.mark.skipif(not engines.HAS_OPENVINO, reason=engines.INSTALL_HINT)
def test_openvino_vectors_match_torch(cache: Path, textured: Callable[..., Image.Image]) -> None:
    emb = _load("openvino")
    assert emb.engine is not None and emb.engine_name.startswith("openvino-")
    images = _images(textured)
    assert _min_cosine(emb.encode_images(images), _load("torch").encode_images(images)) >= 0.995


def test_fp16_tower_is_checked_against_fp32(
    tiny_embedder: Embedder, textured: Callable[..., Image.Image],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CUDA path (``SUMO_ENGINE=auto`` on a GPU), run here on the CPU."""
    emb = copy.copy(tiny_embedder)
    emb.model = copy.deepcopy(tiny_embedder.model)
    emb.engine = None
    x = engines.check_inputs(emb.image_size, emb.normalize)
    reference = emb.encode_tensors(x)
    model_mod.use_fp16(emb, x, reference)
    assert emb.engine_name == "torch-fp16"
    images = _images(textured)
    half = emb.encode_images(images)
    assert half.dtype == np.float32
    emb.model.visual.float()
    full = emb.encode_images(images)
    assert _min_cosine(half, full) >= model_mod.FP16_MIN_COSINE
    assert not np.array_equal(half, full)  # fp16 really ran
    monkeypatch.setattr(model_mod, "FP16_MIN_COSINE", 1.5)
    model_mod.use_fp16(emb, x, reference)
    assert emb.engine_name == "torch-fp32"  # refused: back to fp32
