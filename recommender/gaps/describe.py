"""Words for a region: CLIP's text encoder over a vocabulary shipped with the package.

``concepts.txt`` holds a few thousand everyday nouns, scenes and styles, one per line, in
sections (``# nouns``, ``# scenes``, ``# styles``). Each concept is embedded once per model:
kept in-process, and on disk (``$SUMO_CACHE_DIR``, default ``~/.cache/sumo``) for models
whose weights are fixed, so a restart does not encode the vocabulary again. A region's
labels are the concepts whose text embedding points most along the region's *distinctive*
direction: its centroid minus the mean item vector, so a concept that matches every
image (hubness, the shared CLIP component) does not win everywhere. The suggested prompt
combines the best style, noun and scene.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexer.embedder.registry import has_random_weights
from indexer.embedder.text import TextEmbedder
from indexer.store.base import IMPORT_PREFIX, CollectionSpec

CONCEPTS_FILE = Path(__file__).with_name("concepts.txt")
log = logging.getLogger(__name__)
TEMPLATES = {"noun": "a photo of {}", "scene": "a photo of {}", "style": "{}"}


class ConceptKind(StrEnum):
    NOUN = "noun"
    SCENE = "scene"
    STYLE = "style"


@dataclass(frozen=True)
class Concept:
    text: str
    kind: ConceptKind


@dataclass(frozen=True)
class Label:
    text: str
    kind: ConceptKind
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "kind": self.kind.value, "score": round(self.score, 4)}


def load_concepts(path: Path = CONCEPTS_FILE) -> list[Concept]:
    """Concepts in file order, deduplicated (first section wins)."""
    kind = ConceptKind.NOUN
    seen: set[str] = set()
    out: list[Concept] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            word = line.lstrip("#").strip().rstrip("s").lower()
            if word in {k.value for k in ConceptKind}:
                kind = ConceptKind(word)
            continue
        key = line.lower()
        if key not in seen:
            seen.add(key)
            out.append(Concept(line, kind))
    return out


# Keyed by the encoder object too: "<model>/none" names random weights, which differ per load.
_CACHE: dict[tuple[str, int, str], NDArray[np.float32]] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path:
    return Path(os.environ.get("SUMO_CACHE_DIR") or Path.home() / ".cache" / "sumo")


def _disk_path(model: str, digest: str) -> Path | None:
    """Where a model's vocabulary embeddings are kept, or None for models whose weights are
    not fixed by their name (random init) or that are no CLIP model (imported vectors)."""
    if has_random_weights(model) or model.startswith(IMPORT_PREFIX):
        return None
    key = hashlib.sha1(f"{model}\n{digest}".encode()).hexdigest()[:24]
    return cache_dir() / "labels" / f"{key}.npy"


def concept_matrix(
    encoder: TextEmbedder, concepts: Sequence[Concept],
    progress: Callable[[int, int], None] | None = None,
) -> NDArray[np.float32]:
    """Unit text embeddings of the concepts (their templated prompts), cached per model in
    the process and on disk. ``progress(done, total)`` hears about each encoded chunk."""
    prompts = [TEMPLATES[c.kind.value].format(c.text) for c in concepts]
    digest = hashlib.sha1("\n".join(prompts).encode()).hexdigest()
    key = (encoder.name, id(encoder), digest)
    if key in _CACHE:
        return _CACHE[key]
    with _LOCK:  # the start-up warm-up and a first report must not both encode
        if key not in _CACHE:
            _CACHE[key] = _load_or_encode(encoder, prompts, digest, progress)
        return _CACHE[key]


def _load_or_encode(
    encoder: TextEmbedder, prompts: list[str], digest: str,
    progress: Callable[[int, int], None] | None,
) -> NDArray[np.float32]:
    path = _disk_path(encoder.name, digest)
    if path is not None and path.is_file():
        try:
            m = np.load(path)
            if m.shape[0] == len(prompts):
                return np.asarray(m, dtype=np.float32)
        except (OSError, ValueError) as exc:
            log.warning("label cache %s unreadable (%s): encoding again", path, exc)
    chunks = []
    for i in range(0, len(prompts), 256):
        chunks.append(encoder.encode_texts(prompts[i : i + 256]))
        if progress is not None:
            progress(min(i + 256, len(prompts)), len(prompts))
    m = np.concatenate(chunks).astype(np.float32)
    m = m / np.linalg.norm(m, axis=1, keepdims=True)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, m)
            tmp.replace(path)  # whole or absent: another process may read it now
        except OSError as exc:
            log.warning("label cache not written to %s: %s", path, exc)
    return m


class Describer:
    def __init__(
        self, encoder: TextEmbedder, mean_item: NDArray[np.float32] | None = None,
        concepts: Sequence[Concept] | None = None,
    ) -> None:
        self.concepts = list(concepts) if concepts is not None else load_concepts()
        self.matrix = concept_matrix(encoder, self.concepts)
        self.mean_item = mean_item
        self.kinds = np.array([c.kind.value for c in self.concepts])

    def scores(self, centroid: NDArray[np.float32]) -> NDArray[np.float32]:
        d = centroid - self.mean_item if self.mean_item is not None else centroid
        out: NDArray[np.float32] = self.matrix @ d.astype(np.float32)
        return out

    def labels(self, centroid: NDArray[np.float32], k: int = 3) -> list[Label]:
        s = self.scores(centroid)
        order = np.argsort(-s)[:k]
        return [Label(self.concepts[i].text, self.concepts[i].kind, float(s[i])) for i in order]

    def best(self, centroid: NDArray[np.float32], kind: ConceptKind) -> Label | None:
        s = self.scores(centroid)
        idx = np.flatnonzero(self.kinds == kind.value)
        if idx.size == 0:
            return None
        i = int(idx[np.argmax(s[idx])])
        return Label(self.concepts[i].text, kind, float(s[i]))

    def prompt_for(self, centroid: NDArray[np.float32]) -> str:
        """"<style> of <noun>, <scene>, highly detailed": what a generator should draw."""
        noun = self.best(centroid, ConceptKind.NOUN)
        scene = self.best(centroid, ConceptKind.SCENE)
        style = self.best(centroid, ConceptKind.STYLE)
        parts = [f"{style.text} of {noun.text}" if style and noun else
                 (noun.text if noun else "")]
        if scene:
            parts.append(scene.text)
        parts.append("highly detailed")
        return ", ".join(p for p in parts if p)

    def prompt(self, labels: Sequence[Label]) -> str:
        """Fallback prompt from labels alone (when no centroid is at hand)."""
        return ", ".join(lb.text for lb in labels) + ", highly detailed"


def text_encoder_note(spec: CollectionSpec | None, encoder: TextEmbedder | None) -> str | None:
    """Why labels cannot be computed for this collection, or None when they can."""
    if spec is None:
        return "no collection yet"
    if encoder is not None and encoder.name == spec.model:
        return None  # the encoder that made the vectors (a simulation's, for imported ones)
    if spec.imported:
        return (f"no labels: the collection holds imported vectors ({spec.model}) with no "
                "matching text encoder")
    if encoder is None:
        return f"no labels: the text encoder for {spec.model} could not be loaded"
    return (f"no labels: the loaded model {encoder.name} did not make this collection "
            f"({spec.model})")
