"""CLIP embedder (open_clip): loads once, encodes images and texts to unit float32 vectors.

``model_spec(settings)`` answers which collection spec the settings produce without loading
anything heavy; ``load_embedder(settings)`` builds the model (``WeightsMissing`` when the
weights are not on this machine).
"""

from indexer.embedder.model import Embedder, cpu_count, load_embedder
from indexer.embedder.registry import ModelChoice, UnknownModel, WeightsKind, choose, model_spec
from indexer.errors import WeightsMissing

__all__ = [
    "Embedder", "ModelChoice", "UnknownModel", "WeightsKind", "WeightsMissing", "choose",
    "cpu_count", "load_embedder", "model_spec",
]
