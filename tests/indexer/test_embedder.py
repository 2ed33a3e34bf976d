"""The CLIP embedder: real open_clip architectures, random or local weights, clear failures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from indexer.embedder import (
    Embedder,
    UnknownModel,
    WeightsMissing,
    load_embedder,
    model_spec,
)
from indexer.settings import CorpusSettings


def _settings(**kw: object) -> CorpusSettings:
    base: dict[str, object] = {"model": "sumo-tiny", "pretrained": "none", "device": "cpu",
                               "qdrant_url": None}
    return CorpusSettings(**{**base, **kw})


def test_encodes_unit_float32_vectors(tiny_embedder: Embedder,
                                      textured: Callable[..., Image.Image]) -> None:
    images = [textured(i, (120 + 10 * i, 90)) for i in range(5)]
    v = tiny_embedder.encode_images(images)
    assert v.shape == (5, tiny_embedder.dim) == (5, 64) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    assert sims[np.triu_indices(5, 1)].max() < 0.9999  # distinct images, distinct vectors
    t = tiny_embedder.encode_texts(["a red barn", "a cat on a sofa"])
    assert t.shape == (2, 64) and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    assert tiny_embedder.encode_images([]).shape == (0, 64)
    # encode_images is exactly preprocess + encode_tensors (what the indexer uses)
    batch = torch.stack([tiny_embedder.preprocess(im) for im in images])
    np.testing.assert_allclose(tiny_embedder.encode_tensors(batch), v, atol=1e-6)


def test_random_weights_are_reproducible_and_named(
    tiny_embedder: Embedder, textured: Callable[..., Image.Image]
) -> None:
    # "none" is a seeded init, so two processes index into the same (meaningless) space.
    again = load_embedder(_settings())
    img = [textured(7)]
    np.testing.assert_array_equal(again.encode_images(img), tiny_embedder.encode_images(img))
    assert again.name == "sumo-tiny/none"
    assert again.spec() == model_spec(_settings())  # the cheap spec agrees with the model
    assert torch.get_num_threads() >= 1


def test_local_checkpoint_file(tmp_path: Path, tiny_embedder: Embedder,
                               textured: Callable[..., Image.Image]) -> None:
    ckpt = tmp_path / "tiny.pt"
    state = {k: v * 1.5 if v.is_floating_point() else v
             for k, v in tiny_embedder.model.state_dict().items()}
    torch.save(state, ckpt)
    emb = load_embedder(_settings(pretrained=str(ckpt)))
    assert emb.name.startswith("sumo-tiny/file:") and len(emb.name) == len("sumo-tiny/file:") + 16
    assert model_spec(_settings(pretrained=str(ckpt))) == emb.spec()
    img = [textured(3)]
    assert not np.allclose(emb.encode_images(img), tiny_embedder.encode_images(img))
    # Loading the same weights gives the same vectors.
    torch.save(tiny_embedder.model.state_dict(), ckpt)
    same = load_embedder(_settings(pretrained=str(ckpt)))
    np.testing.assert_allclose(same.encode_images(img), tiny_embedder.encode_images(img),
                               atol=1e-6)


def test_missing_published_weights_fail_with_one_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(WeightsMissing) as exc:
        load_embedder(_settings(model="ViT-B-32", pretrained="laion2b_s34b_b79k"))
    msg = str(exc.value)
    for needle in ("ViT-B-32", "laion2b_s34b_b79k", str(tmp_path / "hub"), "SUMO_PRETRAINED=",
                   "none"):
        assert needle in msg
    # The cheap spec needs no weights: an unchanged folder can be re-checked offline.
    assert model_spec(_settings(model="ViT-B-32", pretrained="laion2b_s34b_b79k")).dim == 512


def test_missing_checkpoint_and_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissing, match="does not exist"):
        load_embedder(_settings(pretrained=str(tmp_path / "nope.safetensors")))
    with pytest.raises(UnknownModel, match="laion2b_s34b_b79k"):  # lists the valid tags
        load_embedder(_settings(model="ViT-B-32", pretrained="no-such-tag"))
    with pytest.raises(UnknownModel, match="no-such-model"):
        model_spec(_settings(model="no-such-model"))
