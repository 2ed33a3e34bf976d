"""Shared fixtures: generated image folders and a tiny real CLIP (random weights)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.settings import CorpusSettings

# Engines exported during tests (ONNX files) go to a temporary folder, not the user's cache;
# subprocesses (`python -m sumo`) inherit it.
os.environ.setdefault("SUMO_ENGINE_CACHE", tempfile.mkdtemp(prefix="sumo-test-engines-"))

TINY_MODEL = "sumo-tiny"  # a real open_clip architecture shipped in indexer/model_configs


def textured_image(seed: int, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A distinct RGB picture per seed: gradient, noise and a block (not a flat colour)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(0, 255, 3).astype(np.float32)
    slope = rng.uniform(-1.5, 1.5, (3, 2)).astype(np.float32)
    img = np.stack([base[c] + slope[c, 0] * x + slope[c, 1] * y for c in range(3)], axis=-1)
    img += rng.normal(0, 12, img.shape).astype(np.float32)
    x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
    img[y0:y0 + h // 3, x0:x0 + w // 3] = rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


MakeImages = Callable[..., list[Path]]


@pytest.fixture
def textured() -> Callable[..., Image.Image]:
    """``textured(seed, size=(160, 120))``: one distinct generated RGB picture."""
    return textured_image


@pytest.fixture
def make_images() -> MakeImages:
    """``make_images(folder, n, start=0, fmt="JPEG"|"PNG"|"mixed", size=(160, 120))``.

    Writes ``n`` distinct images named ``img_<seed>.<ext>``; seeds start at ``start`` so
    two calls with different starts never collide in content.
    """

    def make(folder: Path, n: int, *, start: int = 0, fmt: str = "mixed",
             size: tuple[int, int] = (160, 120)) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for seed in range(start, start + n):
            kind = fmt if fmt != "mixed" else ("JPEG", "PNG")[seed % 2]
            path = folder / f"img_{seed:05d}.{'jpg' if kind == 'JPEG' else 'png'}"
            textured_image(seed, size).save(path, kind)
            out.append(path)
        return out

    return make


@pytest.fixture
def tiny_settings(tmp_path: Path) -> CorpusSettings:
    """Settings for an embedded store in a temporary folder with the tiny random model."""
    return CorpusSettings(
        data=tmp_path / "sumo-data", qdrant_url=None, model=TINY_MODEL, pretrained="none",
        batch_size=8, workers=2, device="cpu",
    )


@pytest.fixture(scope="session")
def tiny_embedder():  # -> indexer.embedder.Embedder, loaded once per test session
    from indexer.embedder import load_embedder

    return load_embedder(
        CorpusSettings(model=TINY_MODEL, pretrained="none", qdrant_url=None, device="cpu")
    )
