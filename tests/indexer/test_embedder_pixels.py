"""The uint8 input path (what the indexer sends to a GPU) gives the float path's vectors.

On a GPU the indexer copies uint8 pixels and normalises them there (``pixel_batch`` +
``encode_tensors``); on a CPU it keeps stacking and normalising float32 on the host
(``batch``). The same image must land on the same vector either way, or a collection
indexed on one machine would not match queries embedded on another. Checked here on the
CPU with the shipped ``sumo-tiny`` architecture and its seeded random weights; the same
comparison against the GPU runs in ``benchmarks/bench_gpu.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from indexer.embedder import Embedder
from indexer.embedder.model import GPU_TORCH_THREADS, cpu_count, torch_threads


def _prepared(emb: Embedder, textured: Callable[..., Image.Image], n: int = 6) -> list:
    # Odd sizes and aspect ratios, so the resize and crop steps really do something.
    return [emb.prepare(textured(i, (97 + 23 * i, 61 + 17 * (i % 3)))) for i in range(n)]


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1)))


def test_uint8_batches_give_the_float_path_vectors(
    tiny_embedder: Embedder, textured: Callable[..., Image.Image]
) -> None:
    prepared = _prepared(tiny_embedder, textured)
    assert all(p.dtype == np.uint8 and p.shape == (64, 64, 3) for p in prepared)
    float_path = tiny_embedder.encode_tensors(tiny_embedder.batch(prepared))

    pixels = tiny_embedder.pixel_batch(prepared)
    assert pixels.dtype == torch.uint8 and tuple(pixels.shape) == (6, 64, 64, 3)
    hwc = tiny_embedder.encode_tensors(pixels)
    chw = tiny_embedder.encode_tensors(pixels.permute(0, 3, 1, 2).contiguous())
    assert hwc.dtype == np.float32 and hwc.shape == (6, tiny_embedder.dim)
    assert _min_cosine(hwc, float_path) > 0.9999
    assert _min_cosine(chw, float_path) > 0.9999
    # Distinct images stay distinct: the check above is not passed by a constant vector.
    sims = hwc @ hwc.T
    assert sims[np.triu_indices(6, 1)].max() < 0.9999


def test_normalised_input_matches_preprocess(
    tiny_embedder: Embedder, textured: Callable[..., Image.Image]
) -> None:
    images = [textured(i, (120, 90 + 10 * i)) for i in range(3)]
    reference = torch.stack([tiny_embedder.preprocess(im) for im in images])
    pixels = tiny_embedder.pixel_batch([tiny_embedder.prepare(im) for im in images])
    x = tiny_embedder.normalize(pixels)
    assert x.dtype == torch.float32 and x.shape == reference.shape
    torch.testing.assert_close(x, reference, atol=1e-6, rtol=0)
    torch.testing.assert_close(tiny_embedder.normalize(pixels.permute(0, 3, 1, 2)), x)
    with pytest.raises(ValueError, match="pixels"):
        tiny_embedder.normalize(pixels[0])


def test_cpu_indexing_path_is_unchanged(
    tiny_embedder: Embedder, textured: Callable[..., Image.Image]
) -> None:
    # On a CPU, encode_prepared is exactly the float path (same ops, bit for bit).
    prepared = _prepared(tiny_embedder, textured, 4)
    np.testing.assert_array_equal(
        tiny_embedder.encode_prepared(prepared),
        tiny_embedder.encode_tensors(tiny_embedder.batch(prepared)),
    )
    assert tiny_embedder.encode_prepared([]).shape == (0, tiny_embedder.dim)
    assert not tiny_embedder.pixel_batch(prepared).is_pinned()  # no CUDA: plain memory


def test_torch_threads_leave_the_cores_to_decoders_on_a_gpu() -> None:
    cores = cpu_count()
    assert torch_threads("cpu") == cores
    assert torch_threads("cuda") == torch_threads("cuda:0") == min(cores, GPU_TORCH_THREADS)
