"""Filling a gap: SDXL-Turbo draws the suggested prompts, SUMO indexes the images back and
checks whether they landed nearer the gap's centroid than any existing item did.

Optional extra ``generate`` (diffusers, transformers, accelerate): without it the command
says how to install it. Weights are never downloaded implicitly: without them the error
names the model id, the Hugging Face cache folder looked in, and how to point at a local
folder (``--generator-model DIR`` or ``SUMO_GENERATOR_MODEL``). CPU works (fp32, slowly);
a CUDA GPU is used when present (fp16).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import SumoError, WeightsMissing
from indexer.settings import CorpusSettings
from indexer.store.base import Store

MODEL_ID = "stabilityai/sdxl-turbo"
INSTALL = 'pip install "sumo[generate]"  (or: pip install diffusers transformers accelerate)'
MAX_STEPS = 4  # SDXL-Turbo is distilled for 1-4 steps at guidance 0


class GeneratorUnavailable(SumoError):
    """The optional ``generate`` extra (diffusers, transformers) is not installed."""


def available() -> bool:
    """Whether the ``generate`` extra is importable (like open_clip's availability flags)."""
    return all(importlib.util.find_spec(m) is not None for m in ("diffusers", "transformers"))


def require_extra() -> None:
    if not available():
        raise GeneratorUnavailable(f"filling gaps needs the optional 'generate' extra: {INSTALL}")


def hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return home / "hub"


def pick_device(device: str = "auto") -> tuple[str, Any]:
    """(device, dtype): fp16 on CUDA, fp32 on CPU (fp16 convolutions are slow or missing)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return device, (torch.float16 if device.startswith("cuda") else torch.float32)


def load_pipeline(model: str | os.PathLike[str] = MODEL_ID, *, device: str = "auto") -> Any:
    """A text-to-image pipeline from a local folder or the local Hugging Face cache."""
    require_extra()
    from diffusers import AutoPipelineForText2Image

    dev, dtype = pick_device(device)
    local = Path(model).expanduser()
    source = str(local) if local.is_dir() else str(model)
    attempts: list[dict[str, Any]] = [{}]
    if dtype != _fp32():
        attempts.insert(0, {"variant": "fp16"})  # the hub's half-size files, if cached
    error: Exception | None = None
    for extra in attempts:
        try:
            pipe = AutoPipelineForText2Image.from_pretrained(
                source, torch_dtype=dtype, local_files_only=True, **extra)
            break
        except (OSError, ValueError) as exc:  # not cached / not a pipeline folder
            error = exc
    else:
        where = (f"the folder {local} does not hold a diffusers pipeline" if local.is_dir()
                 else f"not in the Hugging Face cache {hf_cache_dir()}")
        raise WeightsMissing(
            f"generator weights {source!r} are not on this machine ({where}). Download them "
            f"where there is network (huggingface-cli download {MODEL_ID}) and copy the cache "
            "folder here, or pass a local diffusers folder with --generator-model DIR "
            f"(or SUMO_GENERATOR_MODEL). Cause: {error}"
        ) from error
    pipe.to(dev)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _fp32() -> Any:
    import torch

    return torch.float32


@dataclass(frozen=True)
class GenerateOptions:
    per_prompt: int = 4
    steps: int = 1
    size: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be 1-{MAX_STEPS} for SDXL-Turbo, not {self.steps}")
        if self.size % 8 or self.size < 64:
            raise ValueError(f"size must be a multiple of 8, at least 64, not {self.size}")
        if self.per_prompt < 1:
            raise ValueError("per_prompt must be at least 1")


def generate(
    pipeline: Any, prompts: Mapping[str, str], out_dir: str | os.PathLike[str],
    options: GenerateOptions = GenerateOptions(), *, device: str = "auto",
) -> dict[str, list[Path]]:
    """Draw ``per_prompt`` images for each ``{name: prompt}`` into ``out_dir/<name>/``.

    ``pipeline`` is a loaded diffusers pipeline, or a model id / local folder to load.
    Guidance is 0 (SDXL-Turbo is trained without classifier-free guidance).
    """
    require_extra()
    import torch

    pipe = load_pipeline(pipeline, device=device) if isinstance(pipeline, str | os.PathLike) \
        else pipeline
    out = Path(out_dir)
    saved: dict[str, list[Path]] = {}
    for k, (name, prompt) in enumerate(prompts.items()):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        # A CPU generator gives the same images on any device for one seed.
        gen = torch.Generator("cpu").manual_seed(options.seed + k)
        with torch.inference_mode():
            images = pipe(
                prompt=prompt, num_inference_steps=options.steps, guidance_scale=0.0,
                height=options.size, width=options.size,
                num_images_per_prompt=options.per_prompt, generator=gen,
            ).images
        paths = []
        for j, img in enumerate(images):
            p = folder / f"{name}-s{options.seed + k}-{j}.png"
            img.convert("RGB").save(p)
            paths.append(p)
        saved[name] = paths
    return saved


@dataclass
class FillResult:
    region: str
    prompt: str
    images: list[str]  # item ids of the generated images, as indexed
    nearest_before: float  # the region's nearest existing item (from the report)
    best_new: float  # the generated image nearest the centroid
    nearest_after: float  # nearest item to the centroid once indexed
    filled: bool  # a new image landed nearer the centroid than any item before
    paths: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region, "prompt": self.prompt, "images": self.images,
            "paths": self.paths, "nearest_before": round(self.nearest_before, 4),
            "best_new": round(self.best_new, 4), "nearest_after": round(self.nearest_after, 4),
            "filled": self.filled,
        }


@dataclass(frozen=True)
class Target:
    """What to fill: a region's id, prompt, centroid and its nearest item before."""

    region: str
    prompt: str
    centroid: np.ndarray
    nearest_before: float


def fill(
    store: Store, settings: CorpusSettings, targets: Sequence[Target], pipeline: Any,
    out_dir: str | os.PathLike[str], options: GenerateOptions = GenerateOptions(), *,
    embedder: Any = None, device: str = "auto",
) -> list[FillResult]:
    """Generate for each target, index the folder into ``store``, and close the loop."""
    from indexer.ingest import content_id, index_into

    saved = generate(pipeline, {t.region: t.prompt for t in targets}, out_dir, options,
                     device=device)
    index_into(store, settings, [Path(out_dir)], embedder=embedder, progress=False)
    results = []
    for t in targets:
        paths = saved.get(t.region, [])
        ids = [content_id(p.read_bytes()) for p in paths]
        items = [it for it in store.retrieve(ids, with_vectors=True) if it.vector is not None]
        c = np.asarray(t.centroid, np.float32)
        c = c / np.linalg.norm(c)
        sims = [float(np.dot(np.asarray(it.vector, np.float32), c)
                      / np.linalg.norm(np.asarray(it.vector, np.float32))) for it in items]
        best = max(sims) if sims else float("nan")
        after = store.search(c, 1)
        results.append(FillResult(
            region=t.region, prompt=t.prompt, images=[it.id for it in items],
            paths=[str(p) for p in paths], nearest_before=t.nearest_before, best_new=best,
            nearest_after=after[0].score if after else float("nan"),
            filled=bool(sims) and best > t.nearest_before,
        ))
    return results
