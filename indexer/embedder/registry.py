"""Which CLIP makes the vectors: model configs and where the weights come from.

Everything here is cheap: it reads open_clip's JSON configs straight from disk instead of
importing open_clip (about six seconds of imports), so ``sumo index`` on an unchanged folder
can check the collection's model and finish without ever loading torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from indexer.errors import SumoError, WeightsMissing
from indexer.settings import CorpusSettings
from indexer.store.base import CollectionSpec

log = logging.getLogger(__name__)

# Small real open_clip architectures shipped with SUMO (``sumo-tiny`` for tests).
SHIPPED_CONFIGS = Path(__file__).resolve().parent.parent / "model_configs"

# Values of ``pretrained`` that mean "random weights" (tests and benchmarks only).
RANDOM_WORDS = frozenset({"none", "random", ""})
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


class UnknownModel(SumoError):
    """The model name or pretrained tag is not one open_clip (or SUMO) knows."""


class WeightsKind(StrEnum):
    TAG = "tag"  # an open_clip pretrained tag, resolved through its caches
    FILE = "file"  # a local checkpoint file
    RANDOM = "none"  # seeded random init: real architecture, meaningless vectors


@dataclass(frozen=True)
class ModelChoice:
    model: str
    kind: WeightsKind
    weights: str  # the tag, the absolute checkpoint path, or "none"

    @property
    def name(self) -> str:
        """Identifies the vector space: same name, same vectors for the same image."""
        if self.kind is WeightsKind.FILE:
            return f"{self.model}/file:{file_digest(self.weights)}"
        if self.kind is WeightsKind.RANDOM:
            return f"{self.model}/{WeightsKind.RANDOM}"
        return f"{self.model}/{self.weights}"


def has_random_weights(name: str) -> bool:
    """Whether a model name (``ModelChoice.name``, a collection's model) means random
    weights, whose vectors and labels mean nothing."""
    return name.endswith(f"/{WeightsKind.RANDOM}")


def _open_clip_config_dir() -> Path | None:
    spec = importlib.util.find_spec("open_clip")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model_configs"


@cache
def model_config(model: str) -> dict[str, Any]:
    """The open_clip architecture config of ``model`` (SUMO's shipped ones first)."""
    stem = model.replace("/", "-")
    for folder in (SHIPPED_CONFIGS, _open_clip_config_dir()):
        if folder is not None and (folder / f"{stem}.json").is_file():
            cfg: dict[str, Any] = json.loads((folder / f"{stem}.json").read_text())
            return cfg
    raise UnknownModel(
        f"unknown CLIP model {model!r}: not an open_clip architecture nor one shipped in "
        f"{SHIPPED_CONFIGS}. `python -c 'import open_clip; print(open_clip.list_models())'` "
        "lists the names."
    )


@cache
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()[:16]


def file_digest(path: str) -> str:
    """Content hash of a checkpoint, so the same weights under another name match."""
    st = os.stat(path)
    return _digest(path, st.st_size, st.st_mtime_ns)


def choose(settings: CorpusSettings) -> ModelChoice:
    """Interpret ``model`` and ``pretrained`` (tag, checkpoint file, or ``none``)."""
    model = settings.model.strip()
    model_config(model)  # unknown names fail here, before any store work
    raw = settings.pretrained.strip()
    if raw.lower() in RANDOM_WORDS:
        return ModelChoice(model, WeightsKind.RANDOM, "none")
    looks_like_file = os.sep in raw or "/" in raw or raw.lower().endswith(CHECKPOINT_SUFFIXES)
    if looks_like_file or os.path.exists(raw):
        path = os.path.abspath(os.path.expanduser(raw))
        if not os.path.isfile(path):
            raise WeightsMissing(
                f"checkpoint file {path} (SUMO_PRETRAINED / --pretrained) does not exist. "
                f"Pass an existing open_clip checkpoint for {model} (.pt, .bin or .safetensors), "
                "a pretrained tag, or `none` for random weights (testing only)."
            )
        return ModelChoice(model, WeightsKind.FILE, path)
    return ModelChoice(model, WeightsKind.TAG, raw)


def model_spec(settings: CorpusSettings) -> CollectionSpec:
    """The collection spec these settings would produce, without loading the model."""
    choice = choose(settings)
    return CollectionSpec(dim=int(model_config(choice.model)["embed_dim"]), model=choice.name)


S = TypeVar("S", bound=CorpusSettings)


def settings_for(spec: CollectionSpec, settings: S) -> S:
    """``settings`` with the model that made ``spec``'s vectors, so that a text query is
    embedded in the collection's space whatever SUMO_MODEL / SUMO_PRETRAINED say.

    The spec names the model as ``ModelChoice.name`` does: ``MODEL/TAG``, ``MODEL/none``
    (random weights) or ``MODEL/file:DIGEST``. A checkpoint file cannot be found from its
    digest, so the configured ``pretrained`` must be that file (``WeightsMissing``
    otherwise). Imported vectors and specs not written by SUMO leave the settings as
    they are.
    """
    if spec.imported or "/" not in spec.model:
        return settings
    model, weights = spec.model.rsplit("/", 1)
    if weights.startswith("file:"):
        try:
            if choose(settings).name == spec.model:
                return settings
        except SumoError:
            pass
        raise WeightsMissing(
            f"the collection was made by {model} with a local checkpoint "
            f"(sha256 {weights.removeprefix('file:')}...); pass that file with --pretrained "
            f"(SUMO_PRETRAINED)"
        )
    if (settings.model, settings.pretrained) != (model, weights):
        log.info("loading %s, the model that made the collection (not the configured %s/%s)",
                 spec.model, settings.model, settings.pretrained)
    return settings.model_copy(update={"model": model, "pretrained": weights})
