"""The gap filler runs the real diffusers SDXL code path on a tiny, randomly initialised
SDXL pipeline built here from small configs (no download), through the same functions
``sumo fill-gaps`` uses, and the closed-loop check is computed for the generated images."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.errors import WeightsMissing
from indexer.ingest import index_into
from indexer.settings import CorpusSettings
from indexer.store.edge import EdgeStore
from recommender.gaps import generate as gen
from recommender.gaps.report import GapOptions, build_report
from recommender.gaps.supply import SupplyOptions
from recommender.state import UserState
from sumo.cli import run as sumo

pytest.importorskip("diffusers")
pytest.importorskip("transformers")


def tiny_tokenizer(folder: Path) -> Any:
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase + string.digits + ",.-'!?":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    vocab.update({"th": len(vocab), "the</w>": len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\nt h\nth e</w>\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                         pad_token="<|endoftext|>", model_max_length=77)


def tiny_sdxl(folder: Path) -> Any:
    """SDXL's architecture (two CLIP text encoders, text_time UNet, KL VAE), tiny widths."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    tok = tiny_tokenizer(folder / "tok")
    cfg = CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, vocab_size=len(tok.get_vocab()),
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        projection_dim=32, hidden_act="gelu", max_position_embeddings=77,
    )
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # 6 time ids + pooled text
        cross_attention_dim=64, norm_num_groups=8,  # both text encoders' hidden states
    )
    vae = AutoencoderKL(
        block_out_channels=[16, 32], in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        norm_num_groups=8, sample_size=32,
    )
    # SDXL-Turbo's scheduler: Euler ancestral with trailing timesteps.
    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        timestep_spacing="trailing",
    )
    return StableDiffusionXLPipeline(
        vae=vae, text_encoder=CLIPTextModel(cfg), text_encoder_2=CLIPTextModelWithProjection(cfg),
        tokenizer=tok, tokenizer_2=tok, unet=unet, scheduler=scheduler,
    )


@pytest.fixture(scope="module")
def tiny_pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-sdxl")
    tiny_sdxl(folder / "build").save_pretrained(folder / "pipe")
    return folder / "pipe"


@pytest.fixture()
def indexed(tmp_path: Path, tiny_settings: CorpusSettings, tiny_embedder: Any,
            make_images: Any) -> Path:
    """A collection of 16 pictures indexed with the tiny CLIP, and 8 users' targets."""
    with EdgeStore(tiny_settings.data) as store:
        index_into(store, tiny_settings, [tmp_path / "photos"] if make_images(
            tmp_path / "photos", 16) else [], embedder=tiny_embedder, progress=False)
        vecs = np.stack([it.vector for it in store.scroll(with_vectors=True)
                         if it.vector is not None])
        rng = np.random.default_rng(0)
        centre = vecs[:4].mean(axis=0) + 0.5 * rng.standard_normal(vecs.shape[1]) / 8
        for i in range(8):
            t = centre + 0.05 * rng.standard_normal(vecs.shape[1])
            st = UserState(f"u{i}", "sumo", target=(t / np.linalg.norm(t)).astype(np.float32),
                           events=30, engagement=100.0, last_active=1.0)
            store.put_document("users", st.user_id, st.to_dict(), expected_version=0)
    return tmp_path


def test_generate_runs_the_sdxl_pipeline(tmp_path: Path, tiny_pipeline_dir: Path) -> None:
    pipe = gen.load_pipeline(tiny_pipeline_dir, device="cpu")  # a local diffusers folder
    assert type(pipe).__name__ == "StableDiffusionXLPipeline"
    opts = gen.GenerateOptions(per_prompt=2, steps=2, size=64, seed=3)
    saved = gen.generate(pipe, {"r1": "watercolor painting of a lighthouse"}, tmp_path, opts)
    assert [p.name for p in saved["r1"]] == ["r1-s3-0.png", "r1-s3-1.png"]
    from PIL import Image

    with Image.open(saved["r1"][0]) as im:
        assert im.size == (64, 64) and im.mode == "RGB"
        first = np.asarray(im)
    again = gen.generate(pipe, {"r1": "watercolor painting of a lighthouse"},
                         tmp_path / "again", opts)
    with Image.open(again["r1"][0]) as im:
        assert np.array_equal(np.asarray(im), first)  # one seed, one picture
    with pytest.raises(ValueError, match="steps"):
        gen.GenerateOptions(steps=5)


def test_fill_closes_the_loop(indexed: Path, tiny_settings: CorpusSettings, tiny_embedder: Any,
                              tiny_pipeline_dir: Path) -> None:
    with EdgeStore(tiny_settings.data) as store:
        before = store.count()
        report = build_report(store, GapOptions(supply=SupplyOptions(calibration_items=16)),
                              encoder=tiny_embedder)
        region = report.regions[0]
        assert region.labels and region.prompt  # the tiny CLIP's text side labels it
        target = gen.Target(region.id, region.prompt, region.centroid, region.supply.nearest)
        results = gen.fill(store, tiny_settings, [target], str(tiny_pipeline_dir),
                           tmp_out := indexed / "generated",
                           gen.GenerateOptions(per_prompt=2, steps=1, size=64),
                           embedder=tiny_embedder, device="cpu")
        assert store.count() == before + 2
        (r,) = results
        assert len(r.images) == 2 and all(Path(p).parent == tmp_out / region.id for p in r.paths)
        assert r.nearest_before == pytest.approx(region.supply.nearest)
        assert np.isfinite(r.best_new)
        assert r.filled == (r.best_new > r.nearest_before)
        # Indexed: the nearest item to the centroid now is at least as near as before.
        assert r.nearest_after >= max(r.nearest_before, r.best_new) - 1e-5
        assert set(r.to_dict()) >= {"region", "filled", "best_new", "nearest_before"}




def test_fill_gaps_command(indexed: Path, tiny_settings: CorpusSettings,
                           tiny_pipeline_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = sumo(["fill-gaps", "--data", str(tiny_settings.data), "--model", "sumo-tiny",
                 "--pretrained", "none", "--device", "cpu", "--include-served",
                 "--regions", "1", "--per-region", "1", "--size", "64", "--json",
                 "--generator-model", str(tiny_pipeline_dir), "--out", str(indexed / "gen")])
    assert code == 0
    (r,) = json.loads(capsys.readouterr().out)
    assert len(r["images"]) == 1 and isinstance(r["filled"], bool)


def test_missing_weights_fail_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsMissing) as err:
        gen.load_pipeline(gen.MODEL_ID, device="cpu")
    msg = str(err.value)
    assert gen.MODEL_ID in msg and "empty-cache" in msg and "--generator-model" in msg
    with pytest.raises(WeightsMissing, match="does not hold a diffusers pipeline"):
        gen.load_pipeline(tmp_path, device="cpu")


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gen, "available", lambda: False)
    with pytest.raises(gen.GeneratorUnavailable, match=r"pip install .*sumo\[generate\]"):
        gen.require_extra()
